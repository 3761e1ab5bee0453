package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/testenv"
)

// natsTimeout bounds a call to NATS of the harness.
const natsTimeout = 10 * time.Second

// NATSStreams are the JetStream streams of a namespace: its messages' and
// its poison queue's.
func NATSStreams(namespace string) []string {
	return []string{namespace + "_messages", namespace + "_poison"}
}

// DeleteNATSNamespace deletes the streams of a namespace, and with them
// their consumers, as `onboard transport teardown -force` does. It logs
// what it cannot delete, so that it may run in a cleanup.
func DeleteNATSNamespace(t testing.TB, natsURL, namespace string) {
	t.Helper()
	TeardownNamespace(t, transport.Config{Kind: transport.KindNATS, NATSURL: natsURL, Namespace: namespace})
}

// TapNATS copies what the service stores in a namespace on NATS: the
// messages on subject, or with subject "" every message of both its
// streams, which it makes as the service does when missing. An ordered
// consumer acks nothing, so it holds no message back from the stream.
func TapNATS(t testing.TB, natsURL, namespace, subject string) *Tap {
	t.Helper()
	tr, err := transport.NewTransport(transport.Config{
		Kind: transport.KindNATS, NATSURL: natsURL, Namespace: namespace,
	})
	require.NoError(t, err, "make the NATS streams of %s", namespace)
	require.NoError(t, tr.Close())
	conn, err := nats.Connect(natsURL, nats.Timeout(natsTimeout))
	require.NoError(t, err, "connect to %s", testenv.NATSURLVar)
	t.Cleanup(conn.Close)
	js, err := jetstream.New(conn)
	require.NoError(t, err)
	tap := &Tap{}
	streams := NATSStreams(namespace)
	var filter []string
	if subject != "" {
		streams, filter = streams[:1], []string{subject}
	}
	for _, stream := range streams {
		ctx, cancel := context.WithTimeout(context.Background(), natsTimeout)
		consumer, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: filter})
		cancel()
		require.NoError(t, err, "tap %s", stream)
		consuming, err := consumer.Consume(func(msg jetstream.Msg) {
			headers := map[string]any{}
			for k, v := range msg.Headers() {
				headers[k] = strings.Join(v, ",")
			}
			tap.add(TappedMessage{Headers: headers, Body: msg.Data()})
		})
		require.NoError(t, err, "tap %s", stream)
		t.Cleanup(consuming.Stop)
	}
	return tap
}

// NATSPoisoned counts the messages of a namespace's poison stream, 0 if
// it is missing.
func NATSPoisoned(t testing.TB, natsURL, namespace string) int {
	t.Helper()
	conn, err := nats.Connect(natsURL, nats.Timeout(natsTimeout))
	require.NoError(t, err, "connect to %s", testenv.NATSURLVar)
	defer conn.Close()
	js, err := jetstream.New(conn)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), natsTimeout)
	defer cancel()
	stream, err := js.Stream(ctx, NATSStreams(namespace)[1])
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0
	}
	require.NoError(t, err, "the poison stream of %s", namespace)
	return int(stream.CachedInfo().State.Msgs)
}
