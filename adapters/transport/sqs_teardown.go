//go:build !nosqs

package transport

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

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
