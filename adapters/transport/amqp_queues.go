package transport

import (
	"errors"
	"fmt"
	"strings"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Queue types of AMQP_QUEUE_TYPE.
const (
	// AMQPQueueClassic is RabbitMQ's classic durable queue: on one node,
	// not replicated (RabbitMQ 4 removed classic mirroring).
	AMQPQueueClassic = "classic"
	// AMQPQueueQuorum is RabbitMQ's replicated queue (Raft), from 3.8.
	AMQPQueueQuorum = "quorum"
)

// DefaultAMQPDeliveryLimit is how many times a handler's quorum queue
// delivers a message before it sends it to the poison queue. Every nack
// counts, an outage's too: a handler retries an outage for some 10 s per
// delivery, so the limit poisons the messages a handler holds after some
// 15 minutes of an outage, a few per handler (one per consumer), which
// `onboard poison requeue` sends back; the rest wait undelivered. Its
// purpose is a message that kills its consumer, such as a crash of the
// process, which no handler's error can report: without it, such a
// message comes back forever.
const DefaultAMQPDeliveryLimit = 100

// amqpQueues are the arguments of the queues the amqp transport declares.
type amqpQueues struct {
	queueType     string
	deliveryLimit int
	// poisonExchange receives what a handler's quorum queue gives up on.
	poisonExchange string
	// server is RabbitMQ's version, as it says when connected.
	server string
}

func newAMQPQueues(cfg Config) amqpQueues {
	q := amqpQueues{queueType: cfg.AMQPQueueType, deliveryLimit: cfg.AMQPDeliveryLimit,
		poisonExchange: NamespacedTopic(cfg.Namespace, PoisonTopic)}
	if q.queueType == "" {
		q.queueType = AMQPQueueClassic
	}
	if q.deliveryLimit == 0 {
		q.deliveryLimit = DefaultAMQPDeliveryLimit
	}
	return q
}

// poison are the poison queue's arguments: a quorum queue, when quorum,
// with no delivery limit and no dead-lettering, as browsing it (`poison
// list`) returns every message to it. RabbitMQ 3 sets no limit unless
// asked (and drops at once under -1); RabbitMQ 4 sets 20 unless told -1.
func (q amqpQueues) poison() amqp091.Table {
	if q.queueType != AMQPQueueQuorum {
		return nil
	}
	args := amqp091.Table{amqp091.QueueTypeArg: amqp091.QueueTypeQuorum}
	if major, _, _ := strings.Cut(q.server, "."); major != "" && major != "3" {
		args["x-delivery-limit"] = int64(-1)
	}
	return args
}

// handler are the arguments of a handler's queue: a quorum queue, when
// quorum, that dead-letters to the poison exchange a message delivered
// deliveryLimit times.
func (q amqpQueues) handler() amqp091.Table {
	if q.queueType != AMQPQueueQuorum {
		return nil
	}
	return amqp091.Table{
		amqp091.QueueTypeArg:        amqp091.QueueTypeQuorum,
		"x-delivery-limit":          int64(q.deliveryLimit),
		"x-dead-letter-exchange":    q.poisonExchange,
		"x-dead-letter-routing-key": q.poisonExchange,
	}
}

// explain adds, to RabbitMQ's refusal of a queue declared with other
// arguments than it has, what to do about it.
func (q amqpQueues) explain(err error) error {
	var amqpErr *amqp091.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp091.PreconditionFailed {
		return fmt.Errorf("%w: a queue exists with other arguments than AMQP_QUEUE_TYPE=%s (and AMQP_DELIVERY_LIMIT) "+
			"give: RabbitMQ cannot change a queue's type; drain and delete the namespace's queues, or start on a "+
			"new PUBSUB_NAMESPACE (docs/operations.md)", err, q.queueType)
	}
	return err
}

// Headers RabbitMQ sets on a message of a quorum queue: its deliveries so
// far, and, once dead-lettered, the queue it left and why.
const (
	amqpDeliveryCountHeader = "x-delivery-count"
	amqpFirstDeathQueue     = "x-first-death-queue"
	amqpFirstDeathReason    = "x-first-death-reason"
)

// amqpMarshaler is Watermill's, reading the headers RabbitMQ adds that are
// not strings (x-delivery-count, x-death) as text: Watermill's refuses a
// message with any, which on a quorum queue is every redelivery.
type amqpMarshaler struct{ wamqp.DefaultMarshaler }

func (m amqpMarshaler) Unmarshal(d amqp091.Delivery) (*message.Message, error) {
	headers := make(amqp091.Table, len(d.Headers))
	for key, value := range d.Headers {
		switch value := value.(type) {
		case string:
			headers[key] = value
		case []any: // x-death: one table per dead-lettering
			headers[key] = fmt.Sprintf("%d dead-letterings", len(value))
		default:
			headers[key] = fmt.Sprint(value)
		}
	}
	d.Headers = headers
	return m.DefaultMarshaler.Unmarshal(d)
}

// deadLettered describes a message a handler's quorum queue sent to the
// poison queue past its delivery limit, from RabbitMQ's headers: the
// queue, named topic_handler, tells the handler and the topic.
func deadLettered(p PoisonedMessage, metadata message.Metadata, namespace string) PoisonedMessage {
	queue := metadata.Get(amqpFirstDeathQueue)
	if p.Handler != "" || queue == "" {
		return p
	}
	if i := strings.LastIndex(queue, "_"); i > 0 {
		p.Topic = strings.TrimPrefix(queue[:i], NamespacedTopic(namespace, ""))
		p.Handler = queue[i+1:]
	}
	p.Reason = fmt.Sprintf("RabbitMQ dead-lettered it from %s (%s): delivered %s times, the queue's delivery limit",
		queue, metadata.Get(amqpFirstDeathReason), metadata.Get(amqpDeliveryCountHeader))
	return p
}
