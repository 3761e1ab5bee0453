package transport

import (
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// SQSTopicKey keeps the namespaced topic a message came from on sqs.
const SQSTopicKey = sqsTopicKey

// WithSQSMaxReceives is cfg with its handlers' queues redriving a message
// to their dead-letter queues after n receives.
func WithSQSMaxReceives(cfg Config, n int) Config {
	cfg.sqsMaxReceives = n
	return cfg
}

// CloseAMQPChannel closes the amqp transport's publishing channel, as
// RabbitMQ does after a channel error.
func (t *Transport) CloseAMQPChannel() error {
	t.amqpPublisher.mu.Lock()
	defer t.amqpPublisher.mu.Unlock()
	return t.amqpPublisher.channel.Close()
}

// BoundedClose is sub whose Close waits at most limit, as googlecloud's
// handler subscribers are.
func BoundedClose(sub initializingSubscriber, limit time.Duration) message.Subscriber {
	return boundedCloseSubscriber{sub, limit}
}

// GoogleCloudPublishSettings are the googlecloud transport's publish
// settings, with limit in place of its own.
var GoogleCloudPublishSettings = googleCloudPublishSettings
