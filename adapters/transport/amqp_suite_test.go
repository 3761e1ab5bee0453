package transport_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/testenv"
)

// amqpTestConfig is the amqp transport on TEST_AMQP_URL, in a namespace of
// the test's own.
func amqpTestConfig(t testing.TB) transport.Config {
	return transport.Config{Kind: transport.KindAMQP, AMQPURL: testenv.URL(t, testenv.AMQPURLVar),
		Namespace: testNamespace(t, transport.KindAMQP)}
}

// TestAMQPPubSub runs tests of Watermill's universal pub/sub suite on the
// amqp transport as the service builds it: its confirming publisher, whose
// publishes share one channel, and HandlerConcurrency consumers of a
// group's durable queue, in a namespace of the test's own.
//
// Left out, besides those the nats and redis suites skip (order, TestNoAck,
// old messages for a new group, TestReconnect): TestSubscribeCtx.
// watermill-amqp v3.0.2's subscriber keeps the deliveries its consumers
// hold when a subscription's context ends without its Close (3 of 20 there,
// with its own publisher as with this one); the service's subscriptions end
// with Close.
func TestAMQPPubSub(t *testing.T) {
	cfg := amqpTestConfig(t)
	features := tests.Features{ConsumerGroups: true, Persistent: true, ForceShort: true}
	newPubSub := func(t *testing.T) (message.Publisher, message.Subscriber) {
		tr := newTransportOf(t, cfg)
		sub, err := tr.GroupSubscriber("suite")
		require.NoError(t, err)
		return tr.Publisher, sub
	}
	for name, test := range map[string]func(*testing.T, tests.TestContext, tests.PubSubConstructor){
		"PublishSubscribe":                  tests.TestPublishSubscribe,
		"ConcurrentSubscribe":               tests.TestConcurrentSubscribe,
		"ConcurrentSubscribeMultipleTopics": tests.TestConcurrentSubscribeMultipleTopics,
		"ResendOnError":                     tests.TestResendOnError,
		"ContinueAfterSubscribeClose":       tests.TestContinueAfterSubscribeClose,
		"ConcurrentClose":                   tests.TestConcurrentClose,
		"ContinueAfterErrors":               tests.TestContinueAfterErrors,
		"PublisherClose":                    tests.TestPublisherClose,
		"Topic":                             tests.TestTopic,
		"MessageCtx":                        tests.TestMessageCtx,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, tests.TestContext{TestID: tests.NewTestID(), Features: features}, newPubSub)
		})
	}
}

// A publishing channel that RabbitMQ closed is opened again at the next
// publish, and a closed publisher refuses to publish.
func TestAMQPPublisher_OpensItsChannelAgain(t *testing.T) {
	tr := newTransportOf(t, amqpTestConfig(t))
	received := subscribe(t, subscriber(t, tr, "reopen", "events.Reopen"), "events.Reopen")
	receive := func() string {
		select {
		case msg := <-received:
			msg.Ack()
			return msg.UUID
		case <-testenv.Context(t).Done():
			return "nothing before the test's deadline"
		}
	}

	first := message.NewMessage(watermill.NewUUID(), []byte(`{}`))
	require.NoError(t, tr.Publisher.Publish("events.Reopen", first))
	assert.Equal(t, first.UUID, receive())

	require.NoError(t, tr.CloseAMQPChannel())
	second := message.NewMessage(watermill.NewUUID(), []byte(`{}`))
	require.NoError(t, tr.Publisher.Publish("events.Reopen", second), "a new channel")
	assert.Equal(t, second.UUID, receive())

	require.NoError(t, tr.Publisher.Close())
	assert.Error(t, tr.Publisher.Publish("events.Reopen", message.NewMessage(watermill.NewUUID(), []byte(`{}`))))
}
