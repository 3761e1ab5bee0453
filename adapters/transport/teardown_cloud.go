package transport

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
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

// teardownSQS deletes the SNS topics named "<ns>_…" with their
// subscriptions, then the SQS queues so named: the handlers' queues,
// their dead-letter queues and the poison queue. SQS does not tell
// whether a receiver is connected: nothing is refused.
func teardownSQS(ctx context.Context, cfg Config) ([]RemovedResources, error) {
	t, err := newSQSTransportOf(ctx, cfg)
	if err != nil {
		return nil, err
	}
	prefix := sqsTopicName(cfg.Namespace) + "_"
	var topicArns, queueURLs []string
	topicPages := sns.NewListTopicsPaginator(t.sns, &sns.ListTopicsInput{})
	for topicPages.HasMorePages() {
		page, err := topicPages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("sqs: list the SNS topics: %w", err)
		}
		for _, topic := range page.Topics {
			if arn := aws.ToString(topic.TopicArn); strings.HasPrefix(arnName(arn), prefix) {
				topicArns = append(topicArns, arn)
			}
		}
	}
	queuePages := sqs.NewListQueuesPaginator(t.sqs, &sqs.ListQueuesInput{QueueNamePrefix: aws.String(prefix)})
	for queuePages.HasMorePages() {
		page, err := queuePages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("sqs: list the queues: %w", err)
		}
		for _, u := range page.QueueUrls {
			if strings.HasPrefix(queueURLName(u), prefix) {
				queueURLs = append(queueURLs, u)
			}
		}
	}
	var subscriptions, topics, queues []string
	report := func() []RemovedResources {
		return []RemovedResources{
			removed("SNS subscriptions", subscriptions), removed("SNS topics", topics), removed("SQS queues", queues),
		}
	}
	for _, arn := range topicArns {
		subscribed, err := t.unsubscribeAll(ctx, arn)
		subscriptions = append(subscriptions, subscribed...)
		if err != nil {
			return report(), err
		}
		_, err = t.sns.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: aws.String(arn)})
		var notFound *snstypes.NotFoundException
		if errors.As(err, &notFound) {
			continue
		}
		if err != nil {
			return report(), fmt.Errorf("sqs: delete SNS topic %s: %w", arnName(arn), err)
		}
		topics = append(topics, arnName(arn))
	}
	for _, u := range queueURLs {
		_, err := t.sqs.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(u)})
		var missing *types.QueueDoesNotExist
		if errors.As(err, &missing) {
			continue
		}
		if err != nil {
			return report(), fmt.Errorf("sqs: delete queue %s: %w", queueURLName(u), err)
		}
		queues = append(queues, queueURLName(u))
	}
	return report(), nil
}

// unsubscribeAll removes every subscription of an SNS topic, and names
// those it removed "<topic> to <endpoint>".
func (t *sqsTransport) unsubscribeAll(ctx context.Context, topicArn string) ([]string, error) {
	var subscriptions []*snstypes.Subscription
	pages := sns.NewListSubscriptionsByTopicPaginator(t.sns, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topicArn)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("sqs: list the subscriptions of SNS topic %s: %w", arnName(topicArn), err)
		}
		for i := range page.Subscriptions {
			subscriptions = append(subscriptions, &page.Subscriptions[i])
		}
	}
	var unsubscribed []string
	for _, s := range subscriptions {
		if _, err := t.sns.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: s.SubscriptionArn}); err != nil {
			var notFound *snstypes.NotFoundException
			if errors.As(err, &notFound) {
				continue
			}
			return unsubscribed, fmt.Errorf("sqs: unsubscribe from SNS topic %s: %w", arnName(topicArn), err)
		}
		unsubscribed = append(unsubscribed, arnName(topicArn)+" to "+arnName(aws.ToString(s.Endpoint)))
	}
	return unsubscribed, nil
}

// arnName is the name an ARN ends with: a topic's, or a queue's.
func arnName(arn string) string { return arn[strings.LastIndex(arn, ":")+1:] }

// queueURLName is the name a queue's URL ends with.
func queueURLName(queueURL string) string { return queueURL[strings.LastIndex(queueURL, "/")+1:] }
