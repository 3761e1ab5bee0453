package messages

import (
	"time"

	"github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// MetricsNamespace prefixes Watermill's series: onboard_handler_execution_time_seconds,
// onboard_subscriber_messages_received_total, onboard_publish_time_seconds.
const MetricsNamespace = "onboard"

// metricsBuilder is Watermill's Prometheus metrics on reg.
func metricsBuilder(reg prometheus.Registerer) metrics.PrometheusMetricsBuilder {
	return metrics.NewPrometheusMetricsBuilder(reg, MetricsNamespace, "")
}

// InstrumentPublisher times each publish of pub on reg
// (onboard_publish_time_seconds, by success).
func InstrumentPublisher(reg prometheus.Registerer, pub message.Publisher) (message.Publisher, error) {
	return metricsBuilder(reg).DecoratePublisher(pub)
}

// instrument counts, on the router of the handlers, the messages each
// handler receives by ack or nack, and returns the middleware that times
// each delivery, its quick retries included; without a registry, it
// returns a middleware that does nothing.
func (p port) instrument(router *message.Router) message.HandlerMiddleware {
	if p.cfg.Metrics == nil {
		return func(h message.HandlerFunc) message.HandlerFunc { return h }
	}
	b := metricsBuilder(p.cfg.Metrics)
	b.HandlerBuckets = handlerBuckets(p.cfg.Retry)
	router.AddSubscriberDecorators(b.DecorateSubscriber)
	return b.NewRouterMiddleware().Middleware
}

// handlerBuckets are the buckets of a delivery's time: from a millisecond
// to well past the policy's longest wait for quick retries, so that a
// delivery that spent its retries (and each attempt's own time, such as an
// SMTP timeout) still falls in a finite bucket.
func handlerBuckets(retry RetryPolicy) []float64 {
	buckets := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
	budget := retry.MaxTotalWait().Seconds()
	for last := buckets[len(buckets)-1]; last < 4*budget; {
		last *= 2
		buckets = append(buckets, last)
	}
	return buckets
}

// MaxTotalWait is the longest the quick retries of one delivery wait in
// all, every wait at its longest (the randomization added), the attempts'
// own time aside.
func (r RetryPolicy) MaxTotalWait() time.Duration {
	r.setDefaults()
	var total, wait time.Duration
	wait = r.InitialInterval
	for range r.MaxRetries {
		total += time.Duration(float64(wait) * (1 + r.RandomizationFactor))
		wait = min(time.Duration(float64(wait)*r.Multiplier), r.MaxInterval)
	}
	return total
}
