package telemetry

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/onboard/onboard/adapters/transport"
)

// BacklogConfig configures NewBacklogCollector.
type BacklogConfig struct {
	// Reader reads the backlogs: transport.BacklogReader. Required.
	Reader interface {
		Read(ctx context.Context) []transport.BacklogSource
	}
	// Logger gets one warning when a source starts failing, and a line
	// when it reads again.
	Logger *slog.Logger
	// CacheFor: a scrape within this long of a reading gets it again;
	// 1 s by default.
	CacheFor time.Duration
	// Timeout bounds a reading; 3 s by default.
	Timeout time.Duration
}

func (c *BacklogConfig) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.CacheFor == 0 {
		c.CacheFor = time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 3 * time.Second
	}
}

// BacklogCollector is a prometheus.Collector of what waits: the outbox,
// each handler's queue, the retry queue and the poison queue, read at
// scrape time. A source that cannot be read leaves its series out of that
// scrape and counts an error; the scrape goes on.
type BacklogCollector struct {
	cfg              BacklogConfig
	series           map[transport.BacklogSeries]*prometheus.Desc
	up, scrapeErrors *prometheus.Desc

	mu      sync.Mutex
	readAt  time.Time
	last    []prometheus.Metric
	errors  map[string]int
	failing map[string]bool
}

// NewBacklogCollector returns the collector of cfg.Reader's readings.
func NewBacklogCollector(cfg BacklogConfig) *BacklogCollector {
	cfg.setDefaults()
	handler := []string{"handler"}
	return &BacklogCollector{
		cfg: cfg,
		series: map[transport.BacklogSeries]*prometheus.Desc{
			transport.OutboxMessages: prometheus.NewDesc("onboard_outbox_pending_messages",
				"Outbox rows not yet forwarded to the transport.", nil, nil),
			transport.OutboxOldestAge: prometheus.NewDesc("onboard_outbox_oldest_age_seconds",
				"Age of the oldest outbox row not yet forwarded; 0 when none.", nil, nil),
			transport.HandlerMessages: prometheus.NewDesc("onboard_handler_backlog_messages",
				"Messages waiting for a handler (sql: on its queue, not acked yet; amqp: ready on its queue, plus those this process's consumers hold unacked; nats: on its durable consumer, not acked yet; redis: not read yet by its group, plus read and not acked; googlecloud: those this process's handlers hold, as Pub/Sub counts the rest in Cloud Monitoring only; sqs: on its queue, waiting or received and not acked).", handler, nil),
			transport.HandlerOldestAge: prometheus.NewDesc("onboard_handler_backlog_oldest_age_seconds",
				"Age of the oldest message waiting for a handler; 0 when none (amqp, googlecloud, sqs: of those this process holds; nats: since the stream stored it).", handler, nil),
			transport.RetryMessages: prometheus.NewDesc("onboard_retry_queue_messages",
				"Messages refused for themselves alone, waiting in the retry queue for their next attempt, by handler.", handler, nil),
			transport.RetryOldestAge: prometheus.NewDesc("onboard_retry_queue_oldest_age_seconds",
				"Time since the first failure of the oldest message in the retry queue; 0 when none.", handler, nil),
			transport.PoisonedMessages: prometheus.NewDesc("onboard_poison_queue_messages",
				"Poisoned messages kept for operators (one copy per handler that failed).", nil, nil),
		},
		up: prometheus.NewDesc("onboard_backlog_up",
			"1 if the last reading of the source succeeded, else 0.", []string{"source"}, nil),
		scrapeErrors: prometheus.NewDesc("onboard_backlog_scrape_errors_total",
			"Readings of a backlog source that failed.", []string{"source"}, nil),
		errors:  map[string]int{},
		failing: map[string]bool{},
	}
}

// Describe sends every series' description.
func (c *BacklogCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.series {
		ch <- d
	}
	ch <- c.up
	ch <- c.scrapeErrors
}

// Collect reads the backlogs, or sends the last reading if it is recent.
func (c *BacklogCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil || time.Since(c.readAt) >= c.cfg.CacheFor {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
		c.last = c.read(ctx)
		cancel()
		c.readAt = time.Now()
	}
	for _, m := range c.last {
		ch <- m
	}
}

// read takes a reading: each source's series when it read, its up series,
// and the count of failed readings of every source that failed. A source
// that starts failing is logged once, at WARN.
func (c *BacklogCollector) read(ctx context.Context) []prometheus.Metric {
	var metrics []prometheus.Metric
	gauge := func(desc *prometheus.Desc, value float64, labels ...string) {
		metrics = append(metrics, prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, value, labels...))
	}
	for _, source := range c.cfg.Reader.Read(ctx) {
		if source.Err != nil {
			gauge(c.up, 0, source.Name)
			c.errors[source.Name]++
			if !c.failing[source.Name] {
				c.cfg.Logger.Warn("metrics: cannot read a backlog source; its series are left out until it reads again",
					"source", source.Name, "error", source.Err)
				c.failing[source.Name] = true
			}
			continue
		}
		for _, v := range source.Values {
			if v.Handler == "" {
				gauge(c.series[v.Series], v.Value)
			} else {
				gauge(c.series[v.Series], v.Value, v.Handler)
			}
		}
		gauge(c.up, 1, source.Name)
		if c.failing[source.Name] {
			c.cfg.Logger.Info("metrics: the backlog source reads again", "source", source.Name)
			c.failing[source.Name] = false
		}
	}
	for source, n := range c.errors {
		metrics = append(metrics, prometheus.MustNewConstMetric(c.scrapeErrors, prometheus.CounterValue, float64(n), source))
	}
	return metrics
}
