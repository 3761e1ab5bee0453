package transport_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
)

// runPubSubSuite runs Watermill's universal suite on the transport of cfg,
// one transport per publisher and subscriber the suite asks for, with the
// features every broker transport has: consumer groups, persistence, no
// order (HandlerConcurrency messages in flight), no exactly-once delivery
// (an ack lost brings a message again), and a new group starting at the
// messages published after it. Subscribers without a group share one.
func runPubSubSuite(t *testing.T, cfg transport.Config, forceShort bool,
	subscriberOf func(tr *transport.Transport, group string) (message.Subscriber, error)) {
	features := tests.Features{
		ConsumerGroups:                      true,
		ExactlyOnceDelivery:                 false,
		GuaranteedOrder:                     false,
		GuaranteedOrderWithSingleSubscriber: false,
		Persistent:                          true,
		NewSubscriberReceivesOldMessages:    false,
		ForceShort:                          forceShort,
	}
	newPubSub := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		tr := newTransportOf(t, cfg)
		sub, err := subscriberOf(tr, group)
		require.NoError(t, err)
		return tr.Publisher, sub
	}
	tests.TestPubSub(t, features,
		func(t *testing.T) (message.Publisher, message.Subscriber) { return newPubSub(t, "suite") },
		newPubSub)
}

// newSuiteSubscriber is the suite's subscriber of a group.
func newSuiteSubscriber(tr *transport.Transport, group string) (message.Subscriber, error) {
	return &suiteSubscriber{tr: tr, group: group}, nil
}

// suiteSubscriber is the subscriber of a group the suite wants, which
// names the topic at Subscribe: the transport's Subscriber takes it up
// front, so each Subscribe makes one.
type suiteSubscriber struct {
	tr    *transport.Transport
	group string
	mu    sync.Mutex
	subs  []message.Subscriber
}

func (s *suiteSubscriber) subscriber(topic string) (message.Subscriber, error) {
	sub, err := s.tr.Subscriber(s.group, topic)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs = append(s.subs, sub)
	return sub, nil
}

// SubscribeInitialize creates the group's durable consumer, which
// Subscriber does.
func (s *suiteSubscriber) SubscribeInitialize(topic string) error {
	_, err := s.subscriber(topic)
	return err
}

func (s *suiteSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	sub, err := s.subscriber(topic)
	if err != nil {
		return nil, err
	}
	return sub.Subscribe(ctx, topic)
}

func (s *suiteSubscriber) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, sub := range s.subs {
		errs = append(errs, sub.Close())
	}
	return errors.Join(errs...)
}
