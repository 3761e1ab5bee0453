package transport_test

import (
	"slices"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"
)

// BenchmarkAMQPHop times one message at a time through the amqp transport
// as the service builds it (a durable queue, persistent messages, publisher
// confirms): from the start of its publish to its delivery to the
// consumer, and to the publisher's confirm. The messages go 20 ms apart,
// as under a load well below the bcrypt bound, where the broker and the
// consumer wait idle between them. Run with -benchtime 200x.
func BenchmarkAMQPHop(b *testing.B) {
	tr := newTransportOf(b, amqpTestConfig(b))
	received := subscribe(b, subscriber(b, tr, "hop", "events.Hop"), "events.Hop")
	delivered := make([]time.Duration, 0, b.N)
	confirmed := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		published := make(chan error, 1)
		go func() {
			published <- tr.Publisher.Publish("events.Hop", message.NewMessage(watermill.NewUUID(), []byte(`{}`)))
		}()
		msg := <-received
		delivered = append(delivered, time.Since(start))
		msg.Ack()
		require.NoError(b, <-published)
		confirmed = append(confirmed, time.Since(start))
		b.StopTimer()
		time.Sleep(20 * time.Millisecond) // the gap between two messages
		b.StartTimer()
	}
	for name, durations := range map[string][]time.Duration{"delivered": delivered, "confirmed": confirmed} {
		slices.Sort(durations)
		b.ReportMetric(float64(durations[len(durations)/2].Microseconds())/1000, name+"-p50-ms")
		b.ReportMetric(float64(durations[len(durations)*99/100].Microseconds())/1000, name+"-p99-ms")
	}
}
