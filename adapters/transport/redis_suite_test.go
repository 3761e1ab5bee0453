//go:build !noredis

package transport_test

import (
	"testing"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/testenv"
)

// TestRedisTransport_PubSubSuite runs Watermill's universal pub/sub suite on
// the redis transport as the service builds it: its publisher, and for a
// group the HandlerConcurrency consumers that Subscriber makes, in a
// namespace of the test's own.
//
// What the suite skips, and why:
//   - TestPublishSubscribeInOrder and TestNoAck: no order is kept, as
//     HandlerConcurrency consumers of a group work at once.
//   - TestNewSubscriberReceivesOldMessages: a group starts at its stream's
//     end, and what it acked is not read again (Persistent still holds:
//     what a group has not acked stays for it, see
//     TestContinueAfterSubscribeClose).
//   - TestReconnect: it would restart the server the other tests share;
//     the restart of a server of its own is cmd/app's fault suite.
func TestRedisTransport_PubSubSuite(t *testing.T) {
	redisURL, ns := testenv.RedisNamespace(t)
	// ExactlyOnceDelivery is false: a handler that ran and whose XACK did
	// not reach Redis sees its message again.
	runPubSubSuite(t, transport.Config{Kind: transport.KindRedis, RedisURL: redisURL, Namespace: ns}, false,
		(*transport.Transport).GroupSubscriber)
}
