//go:build !nogooglecloud

package transport

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// teardownGoogleCloud deletes the project's subscriptions, then topics,
// named "<ns>.…": every topic of the namespace and every subscription on
// one ("<topic>.<handler>"). Pub/Sub does not tell whether a subscriber
// is connected: nothing is refused.
func teardownGoogleCloud(ctx context.Context, cfg Config) ([]RemovedResources, error) {
	client, err := pubsub.NewClient(ctx, cfg.GoogleCloudProject, googleCloudOptions(cfg.PubSubEmulatorHost)...)
	if err != nil {
		return nil, fmt.Errorf("googlecloud Pub/Sub: %w", err)
	}
	defer func() { _ = client.Close() }()
	project := "projects/" + cfg.GoogleCloudProject
	subscriptionsPath, topicsPath := project+"/subscriptions/", project+"/topics/"
	prefix := cfg.Namespace + "."
	var subscriptions, topics []string
	subs := client.SubscriptionAdminClient.ListSubscriptions(ctx, &pubsubpb.ListSubscriptionsRequest{Project: project})
	for {
		s, err := subs.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list the subscriptions: %w", err)
		}
		if name := strings.TrimPrefix(s.Name, subscriptionsPath); strings.HasPrefix(name, prefix) {
			subscriptions = append(subscriptions, name)
		}
	}
	tops := client.TopicAdminClient.ListTopics(ctx, &pubsubpb.ListTopicsRequest{Project: project})
	for {
		t, err := tops.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list the topics: %w", err)
		}
		if name := strings.TrimPrefix(t.Name, topicsPath); strings.HasPrefix(name, prefix) {
			topics = append(topics, name)
		}
	}
	var deletedSubscriptions, deletedTopics []string
	report := func() []RemovedResources {
		return []RemovedResources{
			removed("Pub/Sub subscriptions", deletedSubscriptions), removed("Pub/Sub topics", deletedTopics),
		}
	}
	for _, name := range subscriptions {
		err := client.SubscriptionAdminClient.DeleteSubscription(ctx,
			&pubsubpb.DeleteSubscriptionRequest{Subscription: subscriptionsPath + name})
		if status.Code(err) == codes.NotFound {
			continue
		}
		if err != nil {
			return report(), fmt.Errorf("delete subscription %s: %w", name, err)
		}
		deletedSubscriptions = append(deletedSubscriptions, name)
	}
	for _, name := range topics {
		err := client.TopicAdminClient.DeleteTopic(ctx, &pubsubpb.DeleteTopicRequest{Topic: topicsPath + name})
		if status.Code(err) == codes.NotFound {
			continue
		}
		if err != nil {
			return report(), fmt.Errorf("delete topic %s: %w", name, err)
		}
		deletedTopics = append(deletedTopics, name)
	}
	return report(), nil
}
