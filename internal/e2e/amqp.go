package e2e

import (
	"errors"
	"sync"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
)

// registerUserHandler is the command handler's name (cmd/app's
// RegisterUserHandlerName): its queue is named for it.
const registerUserHandler = "RegisterUserHandler"

// EventsExchange is the exchange (the topic) of UserRegistered in a namespace.
func EventsExchange(namespace string) string {
	return transport.NamespacedTopic(namespace, transport.EventTopic("UserRegistered"))
}

// PoisonQueue is the poison topic of a namespace: its exchange and its queue.
func PoisonQueue(namespace string) string {
	return transport.NamespacedTopic(namespace, transport.PoisonTopic)
}

// eventHandlers names the service's handlers of each event: a queue each.
var eventHandlers = map[string][]string{
	"UserRegistered":             {event.SendWelcomeEmailName, event.SeedSignupPointsName},
	"VerificationEmailRequested": {event.SendVerificationEmailName},
	"EmailChanged":               {event.SendNewAddressEmailName, event.SendEmailChangedNoticeName},
	"PasswordResetRequested":     {event.SendPasswordResetEmailName},
}

// Topology lists the service's durable queues and exchanges on RabbitMQ in
// a namespace: an exchange per topic (every registered event's, the
// command's, the poison topic's), a queue per topic and handler
// (topic_handler), and the poison queue.
func Topology(namespace string) (queues, exchanges []string) {
	for _, name := range domain.Events.Names() {
		topic := transport.NamespacedTopic(namespace, transport.EventTopic(name))
		exchanges = append(exchanges, topic)
		for _, handler := range eventHandlers[name] {
			queues = append(queues, topic+"_"+handler)
		}
	}
	commands := transport.NamespacedTopic(namespace, transport.CommandTopic("RegisterUser"))
	queues = append(queues, commands+"_"+registerUserHandler, PoisonQueue(namespace))
	return queues, append(exchanges, commands, PoisonQueue(namespace))
}

// DeleteNamespace deletes the service's queues and exchanges of a namespace,
// those missing included. It logs what it cannot delete, so that it may run
// in a cleanup.
func DeleteNamespace(t testing.TB, amqpURL, namespace string) {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Logf("delete the RabbitMQ namespace %s: %v", namespace, err)
		return
	}
	defer func() { _ = conn.Close() }()
	queues, exchanges := Topology(namespace)
	for i, name := range append(queues, exchanges...) {
		ch, err := conn.Channel() // a new channel per call: an error closes the channel it happens on
		if err != nil {
			t.Logf("delete the RabbitMQ namespace %s: %v", namespace, err)
			return
		}
		if i < len(queues) {
			_, err = ch.QueueDelete(name, false, false, false)
		} else {
			err = ch.ExchangeDelete(name, false, false)
		}
		var amqpErr *amqp.Error
		if err != nil && (!errors.As(err, &amqpErr) || amqpErr.Code != amqp.NotFound) {
			t.Logf("delete RabbitMQ's %s: %v", name, err)
		}
		_ = ch.Close()
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
