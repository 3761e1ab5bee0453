package telemetry

import (
	"database/sql"
	"errors"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every series: onboard_http_requests_total, and
// Watermill's onboard_handler_execution_time_seconds,
// onboard_subscriber_messages_received_total, onboard_publish_time_seconds.
const Namespace = "onboard"

// Metrics are the service's series, on one registry. Its methods are the
// hooks, decorators and middleware that feed them; on a nil *Metrics each
// records nothing (a decorator returns what it was given), so that a part
// built without metrics needs no check of its own.
type Metrics struct {
	registry *prometheus.Registry

	hashWaits       prometheus.Histogram
	claimsTakenOver *prometheus.CounterVec // handler
	pointsGranted   *prometheus.CounterVec // reason
	emailsSent      *prometheus.CounterVec // handler
	emailsFailed    *prometheus.CounterVec // handler, class
	http            httpSeries
}

// NewMetrics registers the service's series on a registry of their own,
// with the Go runtime's and the process's.
func NewMetrics() (*Metrics, error) {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		hashWaits: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "onboard_password_hash_wait_seconds",
			Help: "Time a password hash or comparison waited for a turn of the bcrypt hasher, rejections included.",
			// Up to the hasher's longest wait, after which a caller is answered overloaded.
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		claimsTakenOver: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onboard_dedup_claims_taken_over_total",
			Help: "Claims of an effect (an email) taken over after their lease ran out, by handler.",
		}, []string{"handler"}),
		pointsGranted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onboard_points_grants_total",
			Help: "Points ledger entries written, by reason; a repeated grant is not counted.",
		}, []string{"reason"}),
		emailsSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onboard_emails_sent_total",
			Help: "Emails the mail server accepted (or the log took), by handler.",
		}, []string{"handler"}),
		emailsFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onboard_emails_failed_total",
			Help: "Failed sends of an email, by handler and class: outage, transient, permanent or interrupted.",
		}, []string{"handler", "class"}),
		http: newHTTPSeries(),
	}
	err := m.Register(collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.hashWaits, m.claimsTakenOver, m.pointsGranted, m.emailsSent, m.emailsFailed)
	if err != nil {
		return nil, err
	}
	if err := m.http.register(m.registry); err != nil {
		return nil, err
	}
	return m, nil
}

// Registry is the registry of the series, for tests to gather.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Register adds collectors to the registry.
func (m *Metrics) Register(cs ...prometheus.Collector) error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, m.registry.Register(c))
	}
	return errors.Join(errs...)
}

// Handler serves the registry (GET /metrics). A collector that fails
// leaves its series out, logged, and the scrape goes on.
func (m *Metrics) Handler(logger *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.registry,
	})
}

// ObserveHashWait records a wait for a turn to hash or compare a password,
// a rejection's included.
func (m *Metrics) ObserveHashWait(wait time.Duration) {
	if m != nil {
		m.hashWaits.Observe(wait.Seconds())
	}
}

// CountHashCPU registers onboard_password_hash_cpu_seconds_total, read from
// cpu: the CPU time the hasher's hashes and comparisons took.
func (m *Metrics) CountHashCPU(cpu func() time.Duration) error {
	if m == nil {
		return nil
	}
	return m.registry.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "onboard_password_hash_cpu_seconds_total",
		Help: "CPU time the bcrypt hashes and comparisons took, read from the clocks of the threads that ran them.",
	}, func() float64 { return cpu().Seconds() }))
}

// CountClaimTakenOver counts a claim of handler's effect taken over once its
// lease ran out: its holder crashed or hung.
func (m *Metrics) CountClaimTakenOver(handler string) {
	if m != nil {
		m.claimsTakenOver.WithLabelValues(handler).Inc()
	}
}

// CountPointsGrant counts a ledger entry written for reason; a redelivered
// grant writes nothing and is not counted.
func (m *Metrics) CountPointsGrant(reason string) {
	if m != nil {
		m.pointsGranted.WithLabelValues(reason).Inc()
	}
}

// TimePublishes times each publish of pub (onboard_publish_time_seconds,
// by success).
func (m *Metrics) TimePublishes(pub message.Publisher) (message.Publisher, error) {
	if m == nil {
		return pub, nil
	}
	return m.watermill().DecoratePublisher(pub)
}

// InstrumentRouter counts, on router, the messages each handler receives by
// ack or nack, and returns the middleware that times each delivery, its
// quick retries included (which wait retryBudget at most in all).
func (m *Metrics) InstrumentRouter(router *message.Router, retryBudget time.Duration) message.HandlerMiddleware {
	if m == nil {
		return func(h message.HandlerFunc) message.HandlerFunc { return h }
	}
	b := m.watermill()
	b.HandlerBuckets = HandlerBuckets(retryBudget)
	router.AddSubscriberDecorators(b.DecorateSubscriber)
	return b.NewRouterMiddleware().Middleware
}

// watermill is Watermill's Prometheus metrics on the registry.
func (m *Metrics) watermill() metrics.PrometheusMetricsBuilder {
	return metrics.NewPrometheusMetricsBuilder(m.registry, Namespace, "")
}

// HandlerBuckets are the buckets of a delivery's time: from a millisecond
// to well past retryBudget, the longest the quick retries wait in all, so
// that a delivery that spent its retries (and each attempt's own time, such
// as an SMTP timeout) still falls in a finite bucket.
func HandlerBuckets(retryBudget time.Duration) []float64 {
	buckets := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
	for last := buckets[len(buckets)-1]; last < 4*retryBudget.Seconds(); {
		last *= 2
		buckets = append(buckets, last)
	}
	return buckets
}

// DBStats are the connection pool's series of db, labelled db_name=name.
func DBStats(db *sql.DB, name string) prometheus.Collector {
	return collectors.NewDBStatsCollector(db, name)
}

// BuildInfo is onboard_build_info: 1, labelled with the build's version,
// commit and Go version, and the transport and database it runs on.
func BuildInfo(pubsub, database string) prometheus.Collector {
	version, revision := "unknown", "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		version = info.Main.Version
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value[:min(12, len(s.Value))]
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "onboard_build_info",
		Help: "Always 1; the labels describe the build and what it runs on.",
		ConstLabels: prometheus.Labels{
			"version": version, "revision": revision, "goversion": runtime.Version(),
			"transport": pubsub, "database": database,
		},
	})
	g.Set(1)
	return g
}
