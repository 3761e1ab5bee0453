package adapters

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the stores' and the hasher's series, registered once on the
// service's registry. A nil *Metrics, or an adapter built without one,
// records nothing.
type Metrics struct {
	// HashWaits observes each wait for a turn to hash or compare a
	// password, rejections included (BcryptHasherConfig.Waits).
	HashWaits prometheus.Histogram
	// claimsTakenOver counts, by handler, the claims of the deduplicator
	// taken over once their lease ran out: their holder crashed or hung.
	claimsTakenOver *prometheus.CounterVec
	// pointsGranted counts, by reason, the ledger entries written; a
	// redelivered grant writes nothing and is not counted.
	pointsGranted *prometheus.CounterVec
	reg           prometheus.Registerer
}

// NewMetrics registers the adapters' series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		reg: reg,
		HashWaits: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "onboard_password_hash_wait_seconds",
			Help: "Time a password hash or comparison waited for a turn of the bcrypt hasher, rejections included.",
			// Up to DefaultHashMaxWait, after which a caller is answered overloaded.
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
	}
	for _, c := range []prometheus.Collector{m.HashWaits, m.claimsTakenOver, m.pointsGranted} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// CountHashCPU registers onboard_password_hash_cpu_seconds_total, the CPU
// time of h's hashes and comparisons (BcryptHasher.CPU).
func (m *Metrics) CountHashCPU(h *BcryptHasher) error {
	if m == nil {
		return nil
	}
	return m.reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "onboard_password_hash_cpu_seconds_total",
		Help: "CPU time the bcrypt hashes and comparisons took, read from the clocks of the threads that ran them.",
	}, func() float64 { return h.CPU().Seconds() }))
}

// WithMetrics returns the ledger counting its grants in m.
func (l PointsLedger) WithMetrics(m *Metrics) PointsLedger {
	if m != nil {
		l.grants = m.pointsGranted
	}
	return l
}

// WithMetrics returns the deduplicator counting its take-overs in m.
func (d Deduplicator) WithMetrics(m *Metrics) Deduplicator {
	if m != nil {
		d.takenOver = m.claimsTakenOver
	}
	return d
}

func (l PointsLedger) countGrant(reason string) {
	if l.grants != nil {
		l.grants.WithLabelValues(reason).Inc()
	}
}

func (d Deduplicator) countTakeOver(handler string) {
	if d.takenOver != nil {
		d.takenOver.WithLabelValues(handler).Inc()
	}
}

// observeWait records a wait for a turn that began at start.
func (h *BcryptHasher) observeWait(start time.Time) {
	h.cfg.Waits.Observe(time.Since(start).Seconds())
}
