//go:build !nonats

package transport_test

import (
	"testing"
)

// TestNATSPubSub runs Watermill's universal pub/sub suite on the nats
// transport as the service builds it: namespaced, HandlerConcurrency
// pulls per subscriber, durable consumers in a namespace of the suite's
// own. The suite skips, by these features:
//   - TestNoAck and TestPublishSubscribeInOrder: no order is kept, as a
//     subscriber works on HandlerConcurrency messages at once;
//   - TestNewSubscriberReceivesOldMessages: a new consumer starts at the
//     messages published after it, as a new queue would;
//   - TestReconnect: it restarts the broker (RestartServiceCommand), which
//     the other tests share.
//
// ExactlyOnceDelivery is false: an ack lost, a subscriber closed holding
// a message or a handler past AckWait brings a message again; the
// handlers are idempotent.
func TestNATSPubSub(t *testing.T) {
	// The suite's volumes at their short size, on a CI machine of 2 cores.
	runPubSubSuite(t, natsConfig(t), true, newSuiteSubscriber)
}
