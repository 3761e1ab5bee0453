package e2e

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/testenv"
)

// TapGoogleCloud subscribes a tap to each topic of a namespace on the
// Pub/Sub emulator, through the transport as the service makes it (a
// subscription "<topic>.<group>": taps of different groups each get every
// message), until the test ends: a copy of every message published from
// now on, its attributes as headers.
func TapGoogleCloud(t testing.TB, emulator, namespace, group string, topics ...string) *Tap {
	t.Helper()
	tr, err := transport.NewTransport(transport.TransportConfig{
		Kind: transport.TransportGoogleCloud, GoogleCloudProject: testenv.GoogleCloudProject,
		PubSubEmulatorHost: emulator, Namespace: namespace,
	})
	require.NoError(t, err, "connect to %s", testenv.PubSubEmulatorVar)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); _ = tr.Close() })
	tap := &Tap{}
	for _, topic := range topics {
		sub, err := tr.Subscriber(group, topic)
		require.NoError(t, err, "tap %s", topic)
		t.Cleanup(func() { _ = sub.Close() })
		messages, err := sub.Subscribe(ctx, topic)
		require.NoError(t, err, "tap %s", topic)
		go func() {
			for msg := range messages {
				headers := map[string]any{}
				for k, v := range msg.Metadata {
					headers[k] = v
				}
				tap.add(TappedMessage{Headers: headers, Body: msg.Payload})
				msg.Ack()
			}
		}()
	}
	return tap
}
