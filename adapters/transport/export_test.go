package transport

import "github.com/ThreeDotsLabs/watermill/message"

// CloseAMQPChannel closes the amqp transport's publishing channel, as
// RabbitMQ does after a channel error.
func (t *Transport) CloseAMQPChannel() error {
	t.amqpPublisher.mu.Lock()
	defer t.amqpPublisher.mu.Unlock()
	return t.amqpPublisher.channel.Close()
}

// GroupSubscriber is what Subscriber makes for a group, before it knows
// the topic: Watermill's pub/sub suite names the topic afterwards.
func (t *Transport) GroupSubscriber(group string) (message.Subscriber, error) {
	sub, err := t.newParallelSubscriber(group, "")
	if err != nil {
		return nil, err
	}
	return namespacedSubscriber{Subscriber: sub, namespace: t.namespace}, nil
}

// WithSQSMaxReceives is cfg with its handlers' queues redriving a message
// to their dead-letter queues after n receives.
func WithSQSMaxReceives(cfg Config, n int) Config {
	cfg.sqsMaxReceives = n
	return cfg
}
