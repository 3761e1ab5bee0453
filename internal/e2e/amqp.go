package e2e

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/ports/messages"
)

// EventsExchange is the exchange (the topic) of UserRegistered in a namespace.
func EventsExchange(namespace string) string {
	return transport.NamespacedTopic(namespace, transport.EventTopic("UserRegistered"))
}

// PoisonQueue is the poison topic of a namespace: its exchange and its queue.
func PoisonQueue(namespace string) string {
	return transport.NamespacedTopic(namespace, transport.PoisonTopic)
}

// Topology lists the service's durable queues and exchanges on RabbitMQ in
// a namespace, from the service's topology: an exchange per topic (every
// registered event's, the command's, the poison topic's), a queue per
// topic and handler (topic_handler), and the poison queue.
func Topology(namespace string) (queues, exchanges []string) {
	tp := messages.Topology()
	for _, h := range tp.Handlers {
		queues = append(queues, transport.NamespacedTopic(namespace, h.Topic)+"_"+h.Handler)
	}
	for _, topic := range tp.Topics {
		exchanges = append(exchanges, transport.NamespacedTopic(namespace, topic))
	}
	return append(queues, PoisonQueue(namespace)), append(exchanges, PoisonQueue(namespace))
}

// DeleteNamespace deletes the service's queues and exchanges of a namespace,
// as `onboard transport teardown -force` does. It logs what it cannot
// delete, so that it may run in a cleanup.
func DeleteNamespace(t testing.TB, amqpURL, namespace string) {
	t.Helper()
	TeardownNamespace(t, transport.Config{Kind: transport.KindAMQP, AMQPURL: amqpURL, Namespace: namespace})
}

// TeardownNamespace removes what a namespace holds on cfg's transport, as
// `onboard transport teardown -force` does, even while a service of it
// runs. It logs what it cannot remove, so that it may run in a cleanup.
func TeardownNamespace(t testing.TB, cfg transport.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := transport.Teardown(ctx, cfg, transport.TeardownOptions{Topology: messages.Topology(), Force: true})
	if err != nil {
		t.Logf("tear down the %s namespace %s: %v", cfg.Kind, cfg.Namespace, err)
	}
}

// QueueDepth counts the ready messages of a durable queue, 0 if it is missing.
func QueueDepth(t testing.TB, amqpURL, queue string) int {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	require.NoError(t, err, "connect to %s", testenv.AMQPURLVar)
	defer func() { _ = conn.Close() }()
	ch, err := conn.Channel()
	require.NoError(t, err)
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound {
		return 0
	}
	require.NoError(t, err, "inspect queue %s", queue)
	_ = ch.Close()
	return q.Messages
}

// Tap receives a copy of everything the service publishes somewhere: on
// RabbitMQ a temporary exclusive queue bound to an exchange (TapExchange),
// on NATS an ordered consumer (TapNATS).
type Tap struct {
	mu       sync.Mutex
	messages []TappedMessage
}

// TappedMessage is a message a tap received: its headers and body.
type TappedMessage struct {
	Headers map[string]any
	Body    []byte
}

// Messages returns the messages the tap received so far.
func (tap *Tap) Messages() []TappedMessage {
	if tap == nil {
		return nil
	}
	tap.mu.Lock()
	defer tap.mu.Unlock()
	return append([]TappedMessage(nil), tap.messages...)
}

func (tap *Tap) add(m TappedMessage) {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	tap.messages = append(tap.messages, m)
}

// TapExchange binds a tap to the fanout exchange, declaring it as the
// service does, until the test ends.
func TapExchange(t testing.TB, amqpURL, exchange string) *Tap {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	require.NoError(t, err, "connect to %s", testenv.AMQPURLVar)
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(t, err)
	// The same parameters as the service's durable pub/sub config.
	require.NoError(t, ch.ExchangeDeclare(exchange, "fanout", true, false, false, false, nil))
	queue, err := ch.QueueDeclare("", false, true, true, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind(queue.Name, "", exchange, false, nil))
	deliveries, err := ch.Consume(queue.Name, "", true, true, false, false, nil)
	require.NoError(t, err)
	tap := &Tap{}
	go func() {
		for d := range deliveries {
			tap.add(TappedMessage{Headers: d.Headers, Body: d.Body})
		}
	}()
	return tap
}
