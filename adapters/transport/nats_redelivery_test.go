//go:build !nonats

package transport_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/internal/testenv"
)

// A handler working longer than AckWait signals progress: its message is
// not delivered again meanwhile, to another of its subscribers or replicas.
func TestNATS_LongHandlerKeepsItsMessage(t *testing.T) {
	cfg := natsConfig(t)
	cfg.NATSAckWait = time.Second
	tr := newTransportOf(t, cfg)
	replica := newTransportOf(t, cfg)
	topic := testenv.Name("events")
	messages := subscribe(t, subscriber(t, tr, "Slow", topic), topic)
	other := subscribe(t, subscriber(t, replica, "Slow", topic), topic)

	require.NoError(t, tr.Publisher.Publish(topic, newTestMessage("slow")))
	var held *message.Message
	select {
	case held = <-messages:
	case held = <-other:
	case <-time.After(transportWait):
		t.Fatal("the message was not delivered")
	}
	select { // held three times AckWait
	case m := <-messages:
		t.Fatalf("delivered again while held: %s", m.Payload)
	case m := <-other:
		t.Fatalf("delivered again to the other replica while held: %s", m.Payload)
	case <-time.After(3 * cfg.NATSAckWait):
	}
	js := natsJetStream(t)
	info := natsConsumer(t, js, cfg.Namespace, "Slow", topic)
	assert.Zero(t, info.NumRedelivered)
	assert.Equal(t, 1, info.NumAckPending)
	held.Ack()
	require.Eventually(t, func() bool { return natsConsumer(t, js, cfg.Namespace, "Slow", topic).NumAckPending == 0 },
		transportWait, 20*time.Millisecond, "acked at last")
}

// A replica that dies holding a message never acks it: JetStream delivers
// it again after AckWait.
func TestNATS_UnackedMessageComesBackAfterAckWait(t *testing.T) {
	cfg := natsConfig(t)
	cfg.NATSAckWait = time.Second
	tr := newTransportOf(t, cfg)
	topic := testenv.Name("events")
	sub := subscriber(t, tr, "H", topic)
	require.NoError(t, tr.Publisher.Publish(topic, newTestMessage("orphan")))

	// A replica about to die pulls it, and never answers.
	js := natsJetStream(t)
	consumer, err := js.Consumer(testenv.Context(t), cfg.Namespace+"_messages",
		cfg.Namespace+"_"+topic+"_H")
	require.NoError(t, err)
	pulled, err := consumer.Next(jetstream.FetchMaxWait(transportWait))
	require.NoError(t, err)
	assert.Equal(t, "orphan", string(pulled.Data()))
	pulledAt := time.Now()

	got := receive(t, subscribe(t, sub, topic), "the message again")
	assert.Equal(t, "orphan", string(got.Payload))
	assert.GreaterOrEqual(t, time.Since(pulledAt), cfg.NATSAckWait-100*time.Millisecond, "after AckWait")
	assert.Equal(t, 1, natsConsumer(t, js, cfg.Namespace, "H", topic).NumRedelivered, "a redelivery")
	got.Ack()
}

// A subscriber that closes with a message not acked hands it back: another
// replica gets it at once, not after AckWait.
func TestNATS_ClosedSubscriberHandsBackItsMessage(t *testing.T) {
	cfg := natsConfig(t)
	cfg.NATSAckWait = time.Minute
	leaving := newTransportOf(t, cfg)
	staying := newTransportOf(t, cfg)
	topic := testenv.Name("events")
	leavingSub, err := leaving.Subscriber("H", topic)
	require.NoError(t, err)
	messages := subscribe(t, leavingSub, topic)
	require.NoError(t, leaving.Publisher.Publish(topic, newTestMessage("handed back")))
	receive(t, messages, "the message") // and never acked
	require.NoError(t, leavingSub.Close())

	start := time.Now()
	got := receive(t, subscribe(t, subscriber(t, staying, "H", topic), topic), "the message on the other replica")
	got.Ack()
	assert.Equal(t, "handed back", string(got.Payload))
	assert.Less(t, time.Since(start), cfg.NATSAckWait/2, "well before AckWait")
}

// A subscription whose consumer goes away (an operator deletes it, a
// server comes back without it) is answered "409 Consumer Deleted", after
// which nats.go stops pulling: the subscriber subscribes again, with the
// consumer made anew, rather than go quiet for good.
func TestNATS_SubscriptionOutlivesItsConsumer(t *testing.T) {
	cfg := natsConfig(t)
	tr := newTransportOf(t, cfg)
	topic := testenv.Name("events")
	messages := subscribe(t, subscriber(t, tr, "H", topic), topic)
	require.NoError(t, tr.Publisher.Publish(topic, newTestMessage("before")))
	receive(t, messages, "the message before").Ack()

	js := natsJetStream(t)
	name := cfg.Namespace + "_" + topic + "_H"
	require.NoError(t, js.DeleteConsumer(testenv.Context(t), cfg.Namespace+"_messages", name))
	// The consumer is back once a subscription made it anew; a message
	// published before that has no consumer to wait for, and is not kept.
	require.Eventually(t, func() bool {
		_, err := js.Consumer(testenv.Context(t), cfg.Namespace+"_messages", name)
		return err == nil
	}, transportWait, 20*time.Millisecond, "the consumer made anew")
	require.NoError(t, tr.Publisher.Publish(topic, newTestMessage("after")))
	got := receive(t, messages, "the message after the consumer was deleted")
	assert.Equal(t, "after", string(got.Payload))
	got.Ack()
}
