package transport

import (
	"errors"
	"fmt"
	"sync"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// confirmingPublisher publishes to RabbitMQ as watermill-amqp's publisher
// does (its marshaler, exchange and routing key), on one channel kept open
// in confirm mode. watermill-amqp opens a channel, turns confirms on and
// closes it for every publish (three round trips more per message), and its
// channel pool loses a channel whose reopening fails while the broker is
// away. Here a publish that finds the channel closed opens another, and
// concurrent publishes share it, each waiting for its own confirms.
type confirmingPublisher struct {
	conn   *wamqp.ConnectionWrapper
	config wamqp.Config

	mu       sync.Mutex
	channel  *amqp091.Channel
	declared map[string]bool // exchanges declared on channel's connection
	closed   bool
}

func newConfirmingPublisher(conn *wamqp.ConnectionWrapper, config wamqp.Config) *confirmingPublisher {
	return &confirmingPublisher{conn: conn, config: config, declared: map[string]bool{}}
}

// Publish returns once RabbitMQ has confirmed every message, or an error:
// then none, some or all of them may have been taken, as with any publish
// whose confirm was lost.
func (p *confirmingPublisher) Publish(topic string, msgs ...*message.Message) error {
	channel, err := p.channelFor(topic)
	if err != nil {
		return err
	}
	exchange := p.config.Exchange.GenerateName(topic)
	routingKey := p.config.Publish.GenerateRoutingKey(topic)
	confirms := make([]*amqp091.DeferredConfirmation, 0, len(msgs))
	for _, msg := range msgs {
		publishing, err := p.config.Marshaler.Marshal(msg)
		if err != nil {
			return fmt.Errorf("marshal message %s: %w", msg.UUID, err)
		}
		confirm, err := channel.PublishWithDeferredConfirmWithContext(msg.Context(), exchange, routingKey,
			p.config.Publish.Mandatory, p.config.Publish.Immediate, publishing)
		if err != nil {
			return fmt.Errorf("publish message %s: %w", msg.UUID, err)
		}
		confirms = append(confirms, confirm)
	}
	for i, confirm := range confirms {
		// A channel that closes meanwhile answers every pending confirm
		// with a nack.
		acked, err := confirm.WaitContext(msgs[i].Context())
		if err != nil {
			return fmt.Errorf("confirm of message %s: %w", msgs[i].UUID, err)
		}
		if !acked {
			return fmt.Errorf("message %s not confirmed by RabbitMQ", msgs[i].UUID)
		}
	}
	return nil
}

// channelFor is the open confirm-mode channel, opened anew on the current
// connection if the last one closed, with topic's exchange declared on it.
func (p *confirmingPublisher) channelFor(topic string) (*amqp091.Channel, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("publisher closed")
	}
	if !p.conn.IsConnected() {
		return nil, errors.New("not connected to RabbitMQ")
	}
	if p.channel == nil || p.channel.IsClosed() {
		channel, err := p.conn.Connection().Channel()
		if err != nil {
			return nil, fmt.Errorf("open channel: %w", err)
		}
		if err := channel.Confirm(false); err != nil {
			_ = channel.Close()
			return nil, fmt.Errorf("confirm mode: %w", err)
		}
		// The broker may have lost the exchanges with the connection.
		p.channel, p.declared = channel, map[string]bool{}
	}
	if exchange := p.config.Exchange.GenerateName(topic); exchange != "" && !p.declared[exchange] {
		if err := p.declare(exchange); err != nil {
			return nil, err
		}
		p.declared[exchange] = true
	}
	return p.channel, nil
}

// declare declares exchange on a channel of its own: a method sent on the
// publishing channel could fall between the frames of a concurrent publish.
func (p *confirmingPublisher) declare(exchange string) error {
	channel, err := p.conn.Connection().Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	defer func() { _ = channel.Close() }()
	if err := p.config.TopologyBuilder.ExchangeDeclare(channel, exchange, p.config); err != nil {
		return fmt.Errorf("declare exchange: %w", err)
	}
	return nil
}

// Close closes the channel; the connection is the transport's.
func (p *confirmingPublisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.channel == nil || p.channel.IsClosed() {
		return nil
	}
	return p.channel.Close()
}

var _ message.Publisher = (*confirmingPublisher)(nil)
