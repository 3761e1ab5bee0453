package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsTimeout bounds a call to NATS of the harness.
const natsTimeout = 10 * time.Second

// NATSStreams are the JetStream streams of a namespace: its messages' and
// its poison queue's.
func NATSStreams(namespace string) []string {
	return []string{namespace + "_messages", namespace + "_poison"}
}

// DeleteNATSNamespace deletes the streams of a namespace, and with them
// their consumers, those missing included. It logs what it cannot delete,
// so that it may run in a cleanup.
func DeleteNATSNamespace(t testing.TB, natsURL, namespace string) {
	t.Helper()
	conn, err := nats.Connect(natsURL, nats.Timeout(natsTimeout))
	if err != nil {
		t.Logf("delete the NATS namespace %s: %v", namespace, err)
		return
	}
	defer conn.Close()
	js, err := jetstream.New(conn)
	if err != nil {
		t.Logf("delete the NATS namespace %s: %v", namespace, err)
		return
	}
	for _, stream := range NATSStreams(namespace) {
		ctx, cancel := context.WithTimeout(context.Background(), natsTimeout)
		if err := js.DeleteStream(ctx, stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Logf("delete NATS stream %s: %v", stream, err)
		}
		cancel()
	}
}
