package messages_test

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/telemetry"
	"github.com/onboard/onboard/ports/messages"
)

type everyUser struct{}

func (everyUser) HoldsUser(context.Context, string) (bool, error) { return true, nil }

// One delivery is one observation of the handler's time, its quick retries
// included; the subscriber counts it acked once, and the publish is timed.
func TestNewRouter_MetricsTimeADeliveryWithItsRetries(t *testing.T) {
	const handler = "CountOnUserRegistered"
	metrics, err := telemetry.NewMetrics()
	require.NoError(t, err)
	registry := metrics.Registry()
	tr, err := transport.NewTransport(transport.Config{Kind: transport.KindGoChannel})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, tr.Close()) })
	tr.Publisher, err = metrics.TimePublishes(tr.Publisher)
	require.NoError(t, err)
	retries, err := transport.NewRetryQueue(transport.RetryQueueConfig{DB: sharedDB(t), Publisher: tr.Publisher})
	require.NoError(t, err)

	var attempts atomic.Int32
	stopping, stop := context.WithCancel(context.Background())
	router, err := messages.NewRouter(messages.RouterConfig{
		Transport: tr, Retries: retries, Users: everyUser{}, DeploymentID: "test", Events: domain.Events,
		Stopping: stopping, Logger: slog.New(slog.DiscardHandler), Metrics: metrics,
		Retry: messages.RetryPolicy{InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond},
	}, []cqrs.EventHandler{cqrs.NewEventHandler(handler, func(context.Context, *domain.UserRegistered) error {
		if attempts.Add(1) < 3 {
			return outage("not yet")
		}
		return nil
	})}, nil)
	require.NoError(t, err)
	runRouter(t, router, stop)

	msg, err := transport.NewMarshaler(domain.Events).Marshal(&domain.UserRegistered{UserID: uuid.NewString()})
	require.NoError(t, err)
	// gochannel returns once the handler acked.
	require.NoError(t, transport.StampOrigin(tr.Publisher, "test").Publish(transport.EventTopic("UserRegistered"), msg))

	assert.Equal(t, int32(3), attempts.Load(), "two quick retries")
	// Watermill's subscriber metrics count the ack once they see it, apart
	// from the publish returning.
	var received error
	assert.Eventually(t, func() bool {
		received = testutil.GatherAndCompare(registry, strings.NewReader(`
# HELP onboard_subscriber_messages_received_total The total number of messages received by the subscriber
# TYPE onboard_subscriber_messages_received_total counter
onboard_subscriber_messages_received_total{acked="acked",handler_name="`+handler+`",subscriber_name="transport.namespacedSubscriber"} 1
`), "onboard_subscriber_messages_received_total")
		return received == nil
	}, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, received)
	count := func(name string) int {
		n, err := testutil.GatherAndCount(registry, name)
		require.NoError(t, err)
		return n
	}
	assert.Equal(t, 1, count("onboard_handler_execution_time_seconds"), "one series: the handler, success")
	assert.Equal(t, 1, count("onboard_publish_time_seconds"))
	families, err := registry.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == "onboard_handler_execution_time_seconds" {
			h := f.GetMetric()[0].GetHistogram()
			assert.Equal(t, uint64(1), h.GetSampleCount(), "one delivery, one observation")
		}
	}
}

// The handlers' time has buckets past the longest the quick retries wait.
func TestRetryPolicy_MaxTotalWaitUnderTheLastBucket(t *testing.T) {
	d := messages.DefaultRetryPolicy()
	// 0.1 + 0.2 + 0.4 + 0.8 + 1.6 + 2 s, each up to 20 % longer.
	assert.Equal(t, 6120*time.Millisecond, d.MaxTotalWait())
	buckets := telemetry.HandlerBuckets(d.MaxTotalWait())
	assert.Greater(t, buckets[len(buckets)-1], 4*d.MaxTotalWait().Seconds())
	long := messages.RetryPolicy{MaxRetries: 20, InitialInterval: time.Second, MaxInterval: time.Minute}
	buckets = telemetry.HandlerBuckets(long.MaxTotalWait())
	assert.Greater(t, buckets[len(buckets)-1], long.MaxTotalWait().Seconds(), "a longer policy gets longer buckets")
	assert.IsIncreasing(t, buckets)
}
