package transport

import (
	"context"
	"encoding/hex"
	"fmt"
	"regexp"

	"github.com/ThreeDotsLabs/watermill/message"
)

// MaxNamespaceLength keeps every name under the 63 bytes PostgreSQL allows
// an identifier ("watermill_groups_" + namespace + "." + topic).
const MaxNamespaceLength = 16

var namespaceForm = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// ValidateNamespace checks PUBSUB_NAMESPACE: 1 to 16 lower-case letters,
// digits and hyphens, starting with a letter or digit.
func ValidateNamespace(namespace string) error {
	if len(namespace) > MaxNamespaceLength || !namespaceForm.MatchString(namespace) {
		return fmt.Errorf("PUBSUB_NAMESPACE: want 1 to %d lower-case letters, digits and hyphens, got %q",
			MaxNamespaceLength, namespace)
	}
	return nil
}

// NamespacedTopic is topic in the namespace: "ns.topic", or topic alone
// when the namespace is empty.
func NamespacedTopic(namespace, topic string) string {
	if namespace == "" {
		return topic
	}
	return namespace + "." + topic
}

// DefaultNamespace is the namespace of a deployment that sets none: "ob-"
// and 8 hex digits of a random value the deployment stores in its database
// on the first start, so that the replicas on one database share it and
// deployments on other databases differ.
func DefaultNamespace(random []byte) string { return "ob-" + hex.EncodeToString(random[:4]) }

// OriginKey is the metadata key of the deployment that published a message
// through its outbox (DeploymentID).
const OriginKey = "onboard_origin"

// DeploymentID names a deployment: 16 hex digits of a random value it
// stores in its database on the first start, shared by its replicas. It is
// not a secret: every message the deployment publishes carries it.
func DeploymentID(random []byte) string { return hex.EncodeToString(random[:8]) }

// StampOrigin marks every message published through pub as this
// deployment's (OriginKey), so that a handler tells another deployment's
// events from its own without a query.
func StampOrigin(pub message.Publisher, deploymentID string) message.Publisher {
	return originPublisher{Publisher: pub, origin: deploymentID}
}

type originPublisher struct {
	message.Publisher
	origin string
}

func (p originPublisher) Publish(topic string, msgs ...*message.Message) error {
	for _, msg := range msgs {
		msg.Metadata.Set(OriginKey, p.origin)
	}
	return p.Publisher.Publish(topic, msgs...)
}

// namespacedPublisher publishes to the namespaced topic.
type namespacedPublisher struct {
	message.Publisher
	namespace string
}

func (p namespacedPublisher) Publish(topic string, msgs ...*message.Message) error {
	return p.Publisher.Publish(NamespacedTopic(p.namespace, topic), msgs...)
}

// namespacedSubscriber subscribes to the namespaced topic.
type namespacedSubscriber struct {
	message.Subscriber
	namespace string
}

func (s namespacedSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return s.Subscriber.Subscribe(ctx, NamespacedTopic(s.namespace, topic))
}

// SubscribeInitialize creates the namespaced topic's storage.
func (s namespacedSubscriber) SubscribeInitialize(topic string) error {
	if initializer, ok := s.Subscriber.(message.SubscribeInitializer); ok {
		return initializer.SubscribeInitialize(NamespacedTopic(s.namespace, topic))
	}
	return nil
}
