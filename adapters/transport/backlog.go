package transport

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/onboard/onboard/adapters/watermillsql"
)

// OutboxGroup is the forwarder's consumer group on the outbox.
const OutboxGroup = "forwarder"

// HandlerTopic is a handler (its consumer group, or its queue's suffix on
// amqp) and the topic it reads, without the namespace.
type HandlerTopic struct{ Handler, Topic string }

// BacklogConfig configures NewBacklogCollector.
type BacklogConfig struct {
	// Transport carries the handlers' messages: on sql their queues are
	// tables of DB, on amqp RabbitMQ queues, on nats JetStream consumers, on
	// redis consumer groups of streams; gochannel keeps them in memory only,
	// and has no backlog to read.
	Transport *Transport
	// DB holds the outbox and the retry queue.
	DB       *sql.DB
	Handlers []HandlerTopic
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

// The sources of a reading, the source label of onboard_backlog_up.
const (
	sourceOutbox   = "outbox"
	sourceHandlers = "handlers"
	sourceRetries  = "retry_queue"
	sourcePoison   = "poison_queue"
)

// BacklogCollector is a prometheus.Collector of what waits: the outbox,
// each handler's queue, the retry queue and the poison queue, read from
// where they are kept at scrape time. A source that cannot be read leaves
// its series out of that scrape and counts an error; the scrape goes on.
type BacklogCollector struct {
	cfg                               BacklogConfig
	outbox, outboxAge                 *prometheus.Desc
	handlerBacklog, handlerBacklogAge *prometheus.Desc
	retries, retriesAge               *prometheus.Desc
	poisoned                          *prometheus.Desc
	up, scrapeErrors                  *prometheus.Desc

	mu      sync.Mutex
	readAt  time.Time
	last    []prometheus.Metric
	errors  map[string]int
	failing map[string]bool
}

// NewBacklogCollector returns the collector; register it on a registry.
func NewBacklogCollector(cfg BacklogConfig) (*BacklogCollector, error) {
	cfg.setDefaults()
	if cfg.Transport == nil || cfg.DB == nil {
		return nil, errors.New("backlog: a transport and a database are required")
	}
	handler := []string{"handler"}
	return &BacklogCollector{
		cfg: cfg,
		outbox: prometheus.NewDesc("onboard_outbox_pending_messages",
			"Outbox rows not yet forwarded to the transport.", nil, nil),
		outboxAge: prometheus.NewDesc("onboard_outbox_oldest_age_seconds",
			"Age of the oldest outbox row not yet forwarded; 0 when none.", nil, nil),
		handlerBacklog: prometheus.NewDesc("onboard_handler_backlog_messages",
			"Messages waiting for a handler (sql: on its queue, not acked yet; amqp: ready on its queue, plus those this process's consumers hold unacked; nats: on its durable consumer, not acked yet; redis: not read yet by its group, plus read and not acked; googlecloud: those this process's handlers hold, as Pub/Sub counts the rest in Cloud Monitoring only; sqs: on its queue, waiting or received and not acked).", handler, nil),
		handlerBacklogAge: prometheus.NewDesc("onboard_handler_backlog_oldest_age_seconds",
			"Age of the oldest message waiting for a handler; 0 when none (amqp, googlecloud, sqs: of those this process holds; nats: since the stream stored it).", handler, nil),
		retries: prometheus.NewDesc("onboard_retry_queue_messages",
			"Messages refused for themselves alone, waiting in the retry queue for their next attempt, by handler.", handler, nil),
		retriesAge: prometheus.NewDesc("onboard_retry_queue_oldest_age_seconds",
			"Time since the first failure of the oldest message in the retry queue; 0 when none.", handler, nil),
		poisoned: prometheus.NewDesc("onboard_poison_queue_messages",
			"Poisoned messages kept for operators (one copy per handler that failed).", nil, nil),
		up: prometheus.NewDesc("onboard_backlog_up",
			"1 if the last reading of the source succeeded, else 0.", []string{"source"}, nil),
		scrapeErrors: prometheus.NewDesc("onboard_backlog_scrape_errors_total",
			"Readings of a backlog source that failed.", []string{"source"}, nil),
		errors:  map[string]int{},
		failing: map[string]bool{},
	}, nil
}

// Describe sends every series' description.
func (c *BacklogCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.outbox, c.outboxAge, c.handlerBacklog, c.handlerBacklogAge,
		c.retries, c.retriesAge, c.poisoned, c.up, c.scrapeErrors} {
		ch <- d
	}
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

// reading gathers the series of one reading.
type reading struct{ metrics []prometheus.Metric }

func (r *reading) gauge(desc *prometheus.Desc, value float64, labels ...string) {
	r.metrics = append(r.metrics, prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, value, labels...))
}

func (c *BacklogCollector) read(ctx context.Context) []prometheus.Metric {
	r := &reading{}
	c.source(ctx, r, sourceOutbox, func(ctx context.Context, r *reading) error {
		b, err := watermillsql.GroupBacklog(ctx, c.cfg.DB, OutboxTopic, OutboxGroup)
		r.gauge(c.outbox, float64(b.Messages))
		r.gauge(c.outboxAge, b.OldestAge.Seconds())
		return err
	})
	c.source(ctx, r, sourceRetries, c.readRetries)
	switch c.cfg.Transport.kind {
	case KindSQL:
		c.source(ctx, r, sourceHandlers, c.readSQLHandlers)
		c.source(ctx, r, sourcePoison, func(ctx context.Context, r *reading) error {
			b, err := watermillsql.GroupBacklog(ctx, c.cfg.DB, c.cfg.Transport.Topic(PoisonTopic), PoisonGroup)
			r.gauge(c.poisoned, float64(b.Messages))
			return err
		})
	case KindRedis:
		c.source(ctx, r, sourceHandlers, c.readRedisHandlers)
		c.source(ctx, r, sourcePoison, c.readRedisPoison)
	case KindAMQP:
		c.source(ctx, r, sourceHandlers, c.readAMQPHandlers)
		c.source(ctx, r, sourcePoison, func(ctx context.Context, r *reading) error {
			depths, err := c.cfg.Transport.queueDepths(ctx, c.cfg.Transport.Topic(PoisonTopic))
			if err == nil {
				r.gauge(c.poisoned, float64(depths[0]))
			}
			return err
		})
	case KindSQS:
		c.source(ctx, r, sourceHandlers, c.readSQSHandlers)
		c.source(ctx, r, sourcePoison, c.readSQSPoison)
	case KindGoogleCloud:
		c.source(ctx, r, sourceHandlers, c.readHeldHandlers)
	case KindNATS:
		c.source(ctx, r, sourceHandlers, c.readNATSHandlers)
		c.source(ctx, r, sourcePoison, func(ctx context.Context, r *reading) error {
			n, err := c.cfg.Transport.nats.poisoned(ctx)
			if err == nil {
				r.gauge(c.poisoned, float64(n))
			}
			return err
		})
	}
	for source, n := range c.errors {
		r.metrics = append(r.metrics, prometheus.MustNewConstMetric(c.scrapeErrors, prometheus.CounterValue, float64(n), source))
	}
	return r.metrics
}

// source runs one source's reading: its series are kept if it succeeds,
// dropped if it fails. A source that starts failing is logged once, at
// WARN; its error names tables or queues, never a message's content.
func (c *BacklogCollector) source(ctx context.Context, r *reading, name string, read func(context.Context, *reading) error) {
	own := &reading{}
	err := read(ctx, own)
	if err == nil {
		r.metrics = append(r.metrics, own.metrics...)
		r.gauge(c.up, 1, name)
		if c.failing[name] {
			c.cfg.Logger.Info("metrics: the backlog source reads again", "source", name)
			c.failing[name] = false
		}
		return
	}
	r.gauge(c.up, 0, name)
	c.errors[name]++
	if !c.failing[name] {
		c.cfg.Logger.Warn("metrics: cannot read a backlog source; its series are left out until it reads again",
			"source", name, "error", err)
		c.failing[name] = true
	}
}

func (c *BacklogCollector) readSQLHandlers(ctx context.Context, r *reading) error {
	for _, h := range c.cfg.Handlers {
		b, err := watermillsql.GroupBacklog(ctx, c.cfg.DB, c.cfg.Transport.Topic(h.Topic), h.Handler)
		if err != nil {
			return err
		}
		r.gauge(c.handlerBacklog, float64(b.Messages), h.Handler)
		r.gauge(c.handlerBacklogAge, b.OldestAge.Seconds(), h.Handler)
	}
	return nil
}

// readAMQPHandlers reads the ready messages of each handler's queue and
// adds those this process's handlers hold, unacked. RabbitMQ tells no
// message's age without handing it out, so the oldest age is that of the
// oldest held: with one delivery per consumer at a time, the head of the
// queue is held whenever a consumer runs.
func (c *BacklogCollector) readAMQPHandlers(ctx context.Context, r *reading) error {
	queues := make([]string, len(c.cfg.Handlers))
	for i, h := range c.cfg.Handlers {
		queues[i] = wamqp.GenerateQueueNameTopicNameWithSuffix(h.Handler)(c.cfg.Transport.Topic(h.Topic))
	}
	depths, err := c.cfg.Transport.queueDepths(ctx, queues...)
	if err != nil {
		return err
	}
	now := time.Now()
	for i, h := range c.cfg.Handlers {
		count, age := c.cfg.Transport.held.backlog(h.Handler, now)
		r.gauge(c.handlerBacklog, float64(depths[i]+count), h.Handler)
		r.gauge(c.handlerBacklogAge, age, h.Handler)
	}
	return nil
}

// readRetries counts the retry queue's messages by handler, every known
// handler included, and the age of each one's oldest first failure.
func (c *BacklogCollector) readRetries(ctx context.Context, r *reading) error {
	type waiting struct {
		count       int64
		firstFailed int64 // Unix ms
	}
	byHandler := map[string]waiting{}
	for _, h := range c.cfg.Handlers {
		byHandler[h.Handler] = waiting{}
	}
	rows, err := c.cfg.DB.QueryContext(ctx,
		`SELECT handler, COUNT(*), MIN(first_failed_ms) FROM message_retries GROUP BY handler`)
	if err != nil {
		return fmt.Errorf("read the retry queue: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var (
			handler string
			w       waiting
		)
		if err := rows.Scan(&handler, &w.count, &w.firstFailed); err != nil {
			return fmt.Errorf("read the retry queue: %w", err)
		}
		byHandler[handler] = w
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the retry queue: %w", err)
	}
	handlers := make([]string, 0, len(byHandler))
	for h := range byHandler {
		handlers = append(handlers, h)
	}
	sort.Strings(handlers)
	now := time.Now()
	for _, h := range handlers {
		w := byHandler[h]
		age := 0.0
		if w.count > 0 {
			age = max(0, now.Sub(time.UnixMilli(w.firstFailed)).Seconds())
		}
		r.gauge(c.retries, float64(w.count), h)
		r.gauge(c.retriesAge, age, h)
	}
	return nil
}

// queueDepths reads the ready messages of RabbitMQ queues by a passive
// declare each, on a channel of its own.
func (t *Transport) queueDepths(ctx context.Context, queues ...string) ([]int, error) {
	conn := t.amqpConn.Connection()
	if !t.amqpConn.IsConnected() || conn == nil {
		return nil, errors.New("RabbitMQ connection is down")
	}
	type result struct {
		depths []int
		err    error
	}
	done := make(chan result, 1)
	go func() { // amqp091 takes no context: a broker that hangs is waited for here
		ch, err := conn.Channel()
		if err != nil {
			done <- result{err: fmt.Errorf("open a channel: %w", err)}
			return
		}
		defer func() { _ = ch.Close() }()
		depths := make([]int, len(queues))
		for i, q := range queues {
			info, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
			if err != nil {
				done <- result{err: fmt.Errorf("queue %s: %w", q, err)}
				return
			}
			depths[i] = info.Messages
		}
		done <- result{depths: depths}
	}()
	select {
	case r := <-done:
		return r.depths, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("read RabbitMQ queues: %w", ctx.Err())
	}
}
