//go:build !nogooglecloud

package transport

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-googlecloud/v2/pkg/googlecloud"
	"github.com/ThreeDotsLabs/watermill/message"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// What Pub/Sub keeps, and how (see docs/reliability.md):
//
//   - A topic per namespaced topic ("ns.events.UserRegistered") and on it
//     a subscription per handler, "<topic>.<handler>": each handler gets
//     every message of its topic, and the replicas of a handler share its
//     subscription. A message published before a handler's subscription
//     existed is not kept for it, as on RabbitMQ.
//   - A handler's subscription acks within googleCloudAckDeadline; the
//     client library extends the deadline while the handler works, for
//     googleCloudMaxHandling at most. A nack (an outage outlived the
//     handler's quick retries) comes back after the subscription's retry
//     policy's backoff, from googleCloudMinBackoff.
//   - No ordering: each event is handled on its own (the claims are per
//     message, the grants and emails per user), so ordering keys would
//     only hold a user's later events behind a failing one.
//   - The poison queue is the topic "<ns>.poison" with the subscription
//     "<ns>.poison.poison", which nothing consumes: it keeps what the
//     router poisoned for operators to list and requeue. Pub/Sub's own
//     dead-letter policy is not used: a message it dead-letters carries no
//     handler or reason, and it would drop a message after a long outage.
const (
	googleCloudAckDeadline = 30 * time.Second
	googleCloudMaxHandling = 5 * time.Minute
	googleCloudMinBackoff  = time.Second
	googleCloudMaxBackoff  = time.Minute
	// googleCloudTimeout bounds each call of the transport's own.
	googleCloudTimeout = 10 * time.Second
	// googleCloudRetention is how long Pub/Sub keeps a message that a
	// subscription has not acked: its longest, 7 days.
	googleCloudRetention = 7 * 24 * time.Hour
)

// googleCloudNameForm is the characters of a topic or subscription name
// Pub/Sub accepts; its length, 3 to 255, is checked apart (a counted
// repeat compiles into a program of some 100 KB, kept for the process's
// life).
var googleCloudNameForm = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9\-_.~+%]*$`)

// isGoogleCloudName reports whether Pub/Sub accepts name for a topic or
// a subscription.
func isGoogleCloudName(name string) bool {
	return len(name) >= 3 && len(name) <= 255 && googleCloudNameForm.MatchString(name)
}

// googleCloudTransport is what the googlecloud transport keeps beside the
// Transport: how its subscribers connect, and a client of its own that
// answers readiness.
type googleCloudTransport struct {
	project string
	options []option.ClientOption
	client  *pubsub.Client
}

// googleCloudOptions are the client options: none for Google's service,
// whose credentials the environment gives, or plain gRPC without
// credentials to the emulator at emulator (PUBSUB_EMULATOR_HOST).
func googleCloudOptions(emulator string) []option.ClientOption {
	if emulator == "" {
		return nil
	}
	return []option.ClientOption{
		option.WithEndpoint(emulator),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
		option.WithTelemetryDisabled(),
	}
}

// googleCloudPublishSettings are the client library's publish settings.
// watermill-googlecloud publishes one message at a time and waits for its
// id: a batch would only hold each message for the batch's delay (10 ms by
// default, which capped a publisher at 86 messages/s). The library keeps
// trying a publish for Timeout (60 s by default) after watermill-googlecloud
// gave up on it, and its Stop waits for those tries, which after a broker
// cut held a service's stop past 30 s: limit bounds them. A publish given
// up on stays in the outbox, and the forwarder publishes it again.
func googleCloudPublishSettings(limit time.Duration) pubsub.PublishSettings {
	settings := pubsub.DefaultPublishSettings
	settings.CountThreshold = 1
	settings.Timeout = limit
	return settings
}

// googleCloudSubscription is the subscription of a group on a namespaced topic.
func googleCloudSubscription(group string) googlecloud.SubscriptionNameFn {
	return func(topic string) string { return topic + "." + group }
}

func newGoogleCloudTransport(cfg Config, wlogger watermill.LoggerAdapter) (*Transport, error) {
	gt := &googleCloudTransport{project: cfg.GoogleCloudProject, options: googleCloudOptions(cfg.PubSubEmulatorHost)}
	ctx, cancel := context.WithTimeout(context.Background(), googleCloudTimeout)
	defer cancel()
	client, err := pubsub.NewClient(ctx, gt.project, gt.options...)
	if err != nil {
		return nil, fmt.Errorf("googlecloud Pub/Sub: %w", err)
	}
	gt.client = client
	settings := googleCloudPublishSettings(googleCloudTimeout)
	publisher, err := googlecloud.NewPublisher(googlecloud.PublisherConfig{
		ProjectID:       gt.project,
		ClientOptions:   gt.options,
		PublishTimeout:  googleCloudTimeout,
		PublishSettings: &settings,
	}, wlogger)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("googlecloud Pub/Sub: %w", err)
	}
	t := &Transport{
		Publisher: publisher,
		// One subscriber per handler: the client library hands it up to
		// HandlerConcurrency messages at once.
		concurrency: 1,
		newSubscriber: func(group, topic string) (message.Subscriber, error) {
			if err := checkGoogleCloudNames(group, topic); err != nil {
				return nil, err
			}
			sub, err := gt.newSubscriber(googleCloudSubscription(group), wlogger)
			if err != nil {
				return nil, err
			}
			return boundedCloseSubscriber{sub, googleCloudTimeout}, nil
		},
		ready:       gt.ready,
		close:       func() error { return errors.Join(publisher.Close(), client.Close()) },
		googleCloud: gt,
	}
	// Poisoned messages need a subscription of their own, or the topic drops them.
	if err := gt.ensurePoisonSubscription(ctx, NamespacedTopic(cfg.Namespace, PoisonTopic), wlogger); err != nil {
		_ = t.Close()
		return nil, fmt.Errorf("declare poison queue: %w", err)
	}
	return t, nil
}

func (t *googleCloudTransport) newSubscriber(name googlecloud.SubscriptionNameFn, wlogger watermill.LoggerAdapter) (*googlecloud.Subscriber, error) {
	return googlecloud.NewSubscriber(googlecloud.SubscriberConfig{
		GenerateSubscriptionName: name,
		ProjectID:                t.project,
		ClientOptions:            t.options,
		InitializeTimeout:        googleCloudTimeout,
		ReceiveSettings: pubsub.ReceiveSettings{
			MaxOutstandingMessages: HandlerConcurrency,
			MaxExtension:           googleCloudMaxHandling,
			NumGoroutines:          1,
		},
		GenerateSubscription: func(googlecloud.GenerateSubscriptionParams) *pubsubpb.Subscription {
			return &pubsubpb.Subscription{
				AckDeadlineSeconds:       int32(googleCloudAckDeadline / time.Second),
				MessageRetentionDuration: durationpb.New(googleCloudRetention),
				RetryPolicy: &pubsubpb.RetryPolicy{
					MinimumBackoff: durationpb.New(googleCloudMinBackoff),
					MaximumBackoff: durationpb.New(googleCloudMaxBackoff),
				},
				// No expiration: a handler stopped for a month keeps its messages.
				ExpirationPolicy: &pubsubpb.ExpirationPolicy{},
			}
		},
	}, wlogger)
}

// boundedCloseSubscriber's Close waits at most limit for the subscriber
// to close. The client library's shutdown waits for the messages in hand
// and their acks with no limit: acks that cannot reach a server being
// reconnected to held a service's stop past 30 s after a broker cut. What
// it is given up on comes again after its ack deadline.
//
// The library's own timed shutdown (ShutdownOptions.Timeout) is not used:
// it cancels the streaming pull before anything else, and Watermill's
// suite then saw a message stay away for over a minute after a subscriber
// closed (TestContinueAfterSubscribeClose, 1 run in 30), where the
// graceful shutdown nacks what it holds.
type boundedCloseSubscriber struct {
	initializingSubscriber
	limit time.Duration
}

// initializingSubscriber is a subscriber that creates its topic's storage.
type initializingSubscriber interface {
	message.Subscriber
	message.SubscribeInitializer
}

func (s boundedCloseSubscriber) Close() error {
	closed := make(chan error, 1)
	go func() { closed <- s.initializingSubscriber.Close() }()
	timer := time.NewTimer(s.limit)
	defer timer.Stop()
	select {
	case err := <-closed:
		return err
	case <-timer.C:
		return fmt.Errorf("googlecloud: subscriber not closed after %s; the messages it holds come again after their ack deadline", s.limit)
	}
}

// ensurePoisonSubscription creates the poison topic and the subscription
// that keeps its messages.
func (t *googleCloudTransport) ensurePoisonSubscription(ctx context.Context, topic string, wlogger watermill.LoggerAdapter) error {
	sub, err := t.newSubscriber(googleCloudSubscription(PoisonGroup), wlogger)
	if err != nil {
		return err
	}
	return errors.Join(sub.SubscribeInitialize(topic), sub.Close())
}

// ready asks Pub/Sub for the project's topics: it answers, and the
// credentials are good.
func (t *googleCloudTransport) ready(ctx context.Context) error {
	it := t.client.TopicAdminClient.ListTopics(ctx, &pubsubpb.ListTopicsRequest{
		Project: "projects/" + t.project, PageSize: 1,
	})
	if _, err := it.Next(); err != nil && !errors.Is(err, iterator.Done) {
		return fmt.Errorf("googlecloud Pub/Sub: %w", err)
	}
	return nil
}

// checkGoogleCloudNames refuses a group or topic that cannot name a
// subscription.
func checkGoogleCloudNames(group, topic string) error {
	name := googleCloudSubscription(group)(topic)
	if !isGoogleCloudName(topic) || !isGoogleCloudName(name) {
		return fmt.Errorf("googlecloud: topic %q and handler %q: a Pub/Sub name starts with a letter, "+
			"and has 3 to 255 letters, digits and - _ . ~ + %%", topic, group)
	}
	return nil
}

// googleCloudTransient reports whether err is Pub/Sub unreachable,
// throttling or timing out: an outage.
func googleCloudTransient(err error) bool {
	var grpcErr interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &grpcErr) {
		return false
	}
	switch grpcErr.GRPCStatus().Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted, codes.Internal:
		return true
	}
	return false
}
