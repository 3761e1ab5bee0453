package e2e

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
)

// TapTransport subscribes a tap to each topic of a namespace through the
// transport of cfg as the service makes it (on googlecloud a subscription
// "<topic>.<group>", on sqs a queue "<topic>_<group>": taps of different
// groups each get every message), until the test ends: a copy of every
// message published from now on, its metadata as headers.
func TapTransport(t testing.TB, cfg transport.Config, group string, topics ...string) *Tap {
	t.Helper()
	tr, err := transport.NewTransport(cfg)
	require.NoError(t, err, "connect the tap to %s", cfg.Kind)
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
