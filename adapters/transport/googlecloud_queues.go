//go:build !nogooglecloud

package transport

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/ThreeDotsLabs/watermill-googlecloud/v2/pkg/googlecloud"
	"github.com/ThreeDotsLabs/watermill/message"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// googleCloudPoisonQueue reads the namespace's poison subscription. Pub/Sub
// lists nothing without delivering it: a reading pulls every message,
// then hands back those it keeps (an ack deadline of 0), so a reading
// counts as a delivery of each.
type googleCloudPoisonQueue struct {
	project, emulator, namespace string
}

func newGoogleCloudPoisonQueue(cfg Config) (PoisonQueue, error) {
	return googleCloudPoisonQueue{project: cfg.GoogleCloudProject, emulator: cfg.PubSubEmulatorHost, namespace: cfg.Namespace}, nil
}

func (q googleCloudPoisonQueue) subscription() string {
	return "projects/" + q.project + "/subscriptions/" +
		googleCloudSubscription(PoisonGroup)(NamespacedTopic(q.namespace, PoisonTopic))
}

// pulled is a poisoned message pulled from the subscription.
type pulled struct {
	ackID string
	msg   *message.Message
}

// withPulled pulls every poisoned message, runs f on them with the client,
// and hands back every one f did not ack.
func (q googleCloudPoisonQueue) withPulled(ctx context.Context, f func(*pubsub.Client, []pulled) (acked string, err error)) error {
	client, err := pubsub.NewClient(ctx, q.project, googleCloudOptions(q.emulator)...)
	if err != nil {
		return fmt.Errorf("googlecloud Pub/Sub: %w", err)
	}
	defer func() { _ = client.Close() }()
	var all []pulled
	defer func() {
		var ids []string
		for _, p := range all {
			ids = append(ids, p.ackID)
		}
		if len(ids) > 0 { // back to the subscription at once
			release, cancel := context.WithTimeout(context.WithoutCancel(ctx), googleCloudTimeout)
			defer cancel()
			_ = client.SubscriptionAdminClient.ModifyAckDeadline(release, &pubsubpb.ModifyAckDeadlineRequest{
				Subscription: q.subscription(), AckIds: ids, AckDeadlineSeconds: 0,
			})
		}
	}()
	for {
		resp, err := client.SubscriptionAdminClient.Pull(ctx, &pubsubpb.PullRequest{
			Subscription: q.subscription(), MaxMessages: 1000, ReturnImmediately: true, //nolint:staticcheck // the emulator honours it
		})
		if status.Code(err) == codes.NotFound {
			return nil // nothing was ever poisoned here
		}
		if err != nil {
			return fmt.Errorf("read the poison queue: %w", err)
		}
		if len(resp.ReceivedMessages) == 0 {
			break
		}
		for _, received := range resp.ReceivedMessages {
			msg, err := googlecloud.DefaultMarshalerUnmarshaler{}.Unmarshal(&pubsub.Message{
				ID: received.Message.MessageId, Data: received.Message.Data, Attributes: received.Message.Attributes,
			})
			if err != nil {
				return fmt.Errorf("read the poison queue: %w", err)
			}
			all = append(all, pulled{ackID: received.AckId, msg: msg})
		}
	}
	acked, err := f(client, all)
	for i, p := range all {
		if p.ackID == acked {
			all = append(all[:i], all[i+1:]...)
			break
		}
	}
	return err
}

func (q googleCloudPoisonQueue) List(ctx context.Context) ([]PoisonedMessage, error) {
	var out []PoisonedMessage
	err := q.withPulled(ctx, func(_ *pubsub.Client, all []pulled) (string, error) {
		for _, p := range all {
			out = append(out, describePoisoned(p.msg))
		}
		return "", nil
	})
	// Pub/Sub pulls in no order; a copy's id is a UUIDv7 of when it was poisoned.
	slices.SortFunc(out, func(a, b PoisonedMessage) int { return strings.Compare(a.ID, b.ID) })
	return out, err
}

// Requeue publishes the message to its topic for the handler that poisoned
// it, waits for Pub/Sub's answer, and only then acks it on the poison
// subscription. The handler's subscription must exist, or its topic keeps
// nothing for it.
func (q googleCloudPoisonQueue) Requeue(ctx context.Context, id string) (PoisonedMessage, error) {
	var found *PoisonedMessage
	err := q.withPulled(ctx, func(client *pubsub.Client, all []pulled) (string, error) {
		for _, p := range all {
			if p.msg.UUID != id {
				continue
			}
			poisoned := describePoisoned(p.msg)
			if err := checkRequeueTarget(poisoned); err != nil {
				return "", err
			}
			topic := NamespacedTopic(q.namespace, poisoned.Topic)
			subscription := "projects/" + q.project + "/subscriptions/" + googleCloudSubscription(poisoned.Handler)(topic)
			if _, err := client.SubscriptionAdminClient.GetSubscription(ctx,
				&pubsubpb.GetSubscriptionRequest{Subscription: subscription}); err != nil {
				return "", fmt.Errorf("requeue to %s: %w", subscription, err)
			}
			out, err := googlecloud.DefaultMarshalerUnmarshaler{}.Marshal(topic, unpoisoned(p.msg, poisoned.Handler))
			if err != nil {
				return "", err
			}
			publisher := client.Publisher(topic)
			_, err = publisher.Publish(ctx, out).Get(ctx)
			publisher.Stop()
			if err != nil {
				return "", fmt.Errorf("requeue to %s: %w", topic, err)
			}
			if err := client.SubscriptionAdminClient.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{
				Subscription: q.subscription(), AckIds: []string{p.ackID},
			}); err != nil {
				return "", fmt.Errorf("delete from the poison queue: %w", err)
			}
			found = &poisoned
			return p.ackID, nil
		}
		return "", nil
	})
	if err != nil {
		return PoisonedMessage{}, err
	}
	if found == nil {
		return PoisonedMessage{}, ErrPoisonedMessageNotFound
	}
	return *found, nil
}

// readHeldHandlers reads what this process's handlers hold, for a
// transport that tells no queue's depth: Pub/Sub counts a subscription's
// undelivered messages in Cloud Monitoring only
// (subscription/num_undelivered_messages), which an emulator has not.
func (c *BacklogReader) readHeldHandlers(_ context.Context, r *reading) error {
	now := time.Now()
	for _, h := range c.cfg.Handlers {
		count, age := c.cfg.Transport.held.backlog(h.Handler, now)
		r.gauge(HandlerMessages, float64(count), h.Handler)
		r.gauge(HandlerOldestAge, age, h.Handler)
	}
	return nil
}
