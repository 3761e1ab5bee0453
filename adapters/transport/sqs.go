//go:build !nosqs

package transport

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsns "github.com/ThreeDotsLabs/watermill-aws/sns"
	wsqs "github.com/ThreeDotsLabs/watermill-aws/sqs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// What SNS and SQS keep, and how (see docs/reliability.md):
//
//   - An SNS topic per namespaced topic, named with underscores for dots
//     ("ns_events_UserRegistered"), and an SQS queue per handler
//     subscribed to it with raw delivery ("ns_events_UserRegistered_<handler>"):
//     each handler gets every message, and its replicas share the queue.
//     A message published before a handler's queue existed is not kept
//     for it, as on RabbitMQ.
//   - A received message stays hidden sqsVisibility, extended every
//     sqsExtendEvery while its handler works; a nack (an outage outlived
//     the handler's quick retries) shows it again after a backoff from 1 s
//     to a minute, by its receive count. A replica that dies holding one,
//     or whose long poll was cut as it stopped (SQS had handed it a message
//     the answer never brought), hides it until its visibility ends: kept
//     short for that, and extended.
//   - A handler's queue redrives a message received sqsMaxReceives times
//     to its dead-letter queue, "<queue>_dead", which the poison list
//     reads beside the poison queue ("ns_poison_poison", which the router
//     publishes to). Queues keep a message 14 days, SQS's longest.
//   - Standard topics and queues: no order, and no deduplication (FIFO
//     would hold a user's later events behind a failing one); a message
//     comes at least once, and the handlers are idempotent.
//   - A message's metadata travels as one JSON attribute, since SNS and
//     SQS take at most 10 attributes and a poisoned message has more.
const (
	sqsVisibility   = 10 * time.Second
	sqsExtendEvery  = 3 * time.Second
	sqsMaxBackoff   = time.Minute
	sqsMaxReceives  = 100
	sqsRetention    = 14 * 24 * time.Hour
	sqsLongPoll     = 20 * time.Second
	sqsTimeout      = 10 * time.Second
	sqsDeadSuffix   = "_dead"
	sqsMetadataAttr = "onboard_metadata"
	// sqsTopicKey keeps the namespaced topic a message was published to,
	// for a dead-lettered message to name it.
	sqsTopicKey = "onboard_topic"
	// sqsReceiptKey and sqsReceivesKey carry a delivery's receipt handle
	// and receive count from the unmarshaler to the subscriber, which
	// takes them out of the metadata.
	sqsReceiptKey  = "onboard_sqs_receipt"
	sqsReceivesKey = "onboard_sqs_receives"
)

// sqsNameForm is the characters of a queue name SQS accepts (1 to 80)
// and of a topic name SNS does (1 to 256); the lengths are checked apart,
// as with googleCloudNameForm.
var sqsNameForm = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// isSQSName reports whether name has 1 to most of sqsNameForm's characters.
func isSQSName(name string, most int) bool {
	return len(name) <= most && sqsNameForm.MatchString(name)
}

// sqsTopicName is a namespaced topic as SNS names it.
func sqsTopicName(topic string) string { return strings.ReplaceAll(topic, ".", "_") }

// sqsQueueName is the queue of a group on a namespaced topic.
func sqsQueueName(topic, group string) string { return sqsQueueNameOf(sqsTopicName(topic), group) }

// sqsQueueNameOf is the queue of a group on an SNS topic: "<topic>_<group>",
// or, beyond the 80 characters SQS allows with its dead-letter queue's
// suffix, its first 66 and 8 hex digits of a hash of the whole. A handler's
// queue named so names no handler: the poison list tells the handler of
// its dead-lettered messages by the queue's name.
func sqsQueueNameOf(topicName, group string) string {
	name := topicName + "_" + group
	if limit := 80 - len(sqsDeadSuffix); len(name) > limit {
		sum := sha256.Sum256([]byte(name))
		name = name[:limit-9] + "_" + hex.EncodeToString(sum[:4])
	}
	return name
}

// sqsTransport is what the sqs transport keeps beside the Transport: its
// AWS configuration and clients, and the ARNs of the topics it made.
type sqsTransport struct {
	aws       aws.Config
	sqs       *sqs.Client
	sns       *sns.Client
	namespace string
	// maxReceives is sqsMaxReceives but in tests.
	maxReceives int

	mu        sync.Mutex
	topicArns map[string]string
}

// sqsAWSConfig is the AWS SDK's configuration of cfg: the region, the
// endpoint when one is set (an emulator's), the static key when one is
// set, else the SDK's chain (profiles, the role of the instance or task).
func sqsAWSConfig(ctx context.Context, cfg Config) (aws.Config, error) {
	options := []func(*config.LoadOptions) error{
		config.WithRegion(cfg.AWSRegion),
		// A long poll lasts sqsLongPoll; no call waits much beyond it.
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(sqsLongPoll + sqsTimeout)),
	}
	if cfg.AWSEndpointURL != "" {
		options = append(options, config.WithBaseEndpoint(cfg.AWSEndpointURL))
	}
	if cfg.AWSAccessKeyID != "" {
		options = append(options, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AWSAccessKeyID, cfg.AWSSecretAccessKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, options...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("sqs: the AWS configuration: %w", err)
	}
	return awsCfg, nil
}

func newSQSTransportOf(ctx context.Context, cfg Config) (*sqsTransport, error) {
	awsCfg, err := sqsAWSConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	maxReceives := sqsMaxReceives
	if cfg.sqsMaxReceives > 0 {
		maxReceives = cfg.sqsMaxReceives
	}
	return &sqsTransport{
		aws: awsCfg, sqs: sqs.NewFromConfig(awsCfg), sns: sns.NewFromConfig(awsCfg),
		namespace: cfg.Namespace, maxReceives: maxReceives, topicArns: map[string]string{},
	}, nil
}

func newSQSTransport(cfg Config, wlogger watermill.LoggerAdapter) (*Transport, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*sqsTimeout)
	defer cancel()
	st, err := newSQSTransportOf(ctx, cfg)
	if err != nil {
		return nil, err
	}
	publisher, err := wsns.NewPublisher(wsns.PublisherConfig{
		AWSConfig: st.aws, TopicResolver: st, Marshaler: sqsMarshaler{}, DoNotCreateTopicIfNotExists: true,
	}, wlogger)
	if err != nil {
		return nil, fmt.Errorf("sqs: %w", err)
	}
	t := &Transport{
		Publisher:   sqsPublisher{publisher},
		concurrency: HandlerConcurrency,
		newSubscriber: func(group, topic string) (message.Subscriber, error) {
			if name := sqsQueueName(topic, group); !isSQSName(name, 80) {
				return nil, fmt.Errorf("sqs: topic %q and handler %q: a queue name has only letters, digits, - and _", topic, group)
			}
			return st.newSubscriber(group, wlogger)
		},
		ready: st.ready,
		close: publisher.Close,
		sqs:   st,
	}
	// Poisoned messages need a queue of their own, or the topic drops them.
	poison, err := st.newSubscriber(PoisonGroup, wlogger)
	if err == nil {
		err = errors.Join(poison.SubscribeInitialize(NamespacedTopic(cfg.Namespace, PoisonTopic)), poison.Close())
	}
	if err != nil {
		return nil, fmt.Errorf("declare poison queue: %w", err)
	}
	return t, nil
}

// ResolveTopic is a topic's ARN, from SNS's CreateTopic (which makes it
// the first time, and answers the same ARN after), kept for next time.
func (t *sqsTransport) ResolveTopic(ctx context.Context, topic string) (wsns.TopicArn, error) {
	t.mu.Lock()
	arn, ok := t.topicArns[topic]
	t.mu.Unlock()
	if ok {
		return wsns.TopicArn(arn), nil
	}
	name := sqsTopicName(topic)
	if !isSQSName(name, 256) {
		return "", fmt.Errorf("sqs: topic %q: an SNS topic needs 1 to 256 letters, digits, - and _", topic)
	}
	out, err := t.sns.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("sqs: create topic %s: %w", name, err)
	}
	t.mu.Lock()
	t.topicArns[topic] = *out.TopicArn
	t.mu.Unlock()
	return wsns.TopicArn(*out.TopicArn), nil
}

// newSubscriber subscribes a group's queue to a topic, the queue and its
// dead-letter queue made at the first subscription.
func (t *sqsTransport) newSubscriber(group string, wlogger watermill.LoggerAdapter) (*sqsSubscriber, error) {
	sub, err := wsns.NewSubscriber(wsns.SubscriberConfig{
		AWSConfig: t.aws, TopicResolver: t,
		GenerateSqsQueueName: func(_ context.Context, arn wsns.TopicArn) (string, error) {
			topic, err := wsns.ExtractTopicNameFromTopicArn(arn)
			return sqsQueueNameOf(string(topic), group), err
		},
	}, wsqs.SubscriberConfig{
		AWSConfig:                   t.aws,
		Unmarshaler:                 sqsMarshaler{},
		GenerateCreateQueueInput:    t.createQueueInput,
		GenerateReceiveMessageInput: receiveOneInput,
	}, wlogger)
	if err != nil {
		return nil, fmt.Errorf("sqs: %w", err)
	}
	return &sqsSubscriber{Subscriber: sub, transport: t, group: group, closing: make(chan struct{})}, nil
}

// createQueueInput asks for a handler's queue redriving to its
// dead-letter queue, which it makes first; the poison queue has none:
// listing it receives each message, as often as operators look.
func (t *sqsTransport) createQueueInput(ctx context.Context, name wsqs.QueueName, _ wsqs.QueueConfigAttributes) (*sqs.CreateQueueInput, error) {
	retention := strconv.Itoa(int(sqsRetention / time.Second))
	input := &sqs.CreateQueueInput{QueueName: aws.String(string(name)), Attributes: map[string]string{
		"VisibilityTimeout":      strconv.Itoa(int(sqsVisibility / time.Second)),
		"MessageRetentionPeriod": retention,
	}}
	if string(name) == sqsQueueName(NamespacedTopic(t.namespace, PoisonTopic), PoisonGroup) {
		return input, nil
	}
	dead, err := t.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  aws.String(string(name) + sqsDeadSuffix),
		Attributes: map[string]string{"MessageRetentionPeriod": retention},
	})
	if err != nil {
		return nil, fmt.Errorf("create the dead-letter queue of %s: %w", name, err)
	}
	deadArn, err := t.queueArn(ctx, *dead.QueueUrl)
	if err != nil {
		return nil, err
	}
	redrive, err := json.Marshal(map[string]string{
		"maxReceiveCount": strconv.Itoa(t.maxReceives), "deadLetterTargetArn": deadArn,
	})
	if err != nil {
		return nil, err
	}
	input.Attributes["RedrivePolicy"] = string(redrive)
	return input, nil
}

func (t *sqsTransport) queueArn(ctx context.Context, queueURL string) (string, error) {
	out, err := t.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(queueURL), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", fmt.Errorf("sqs: the ARN of %s: %w", queueURL, err)
	}
	return out.Attributes[string(types.QueueAttributeNameQueueArn)], nil
}

// receiveOneInput long-polls for one message at a time, with its receive
// count: a consumer holds only what its handler works on, and the others'
// consumers (HandlerConcurrency per replica) get the rest.
func receiveOneInput(_ context.Context, queueURL wsqs.QueueURL) (*sqs.ReceiveMessageInput, error) {
	return &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(string(queueURL)),
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
		WaitTimeSeconds:             int32(sqsLongPoll / time.Second),
		MaxNumberOfMessages:         1,
	}, nil
}

// ready asks SQS for the poison queue's address: it answers, and the
// credentials are good.
func (t *sqsTransport) ready(ctx context.Context) error {
	_, err := t.queueURL(ctx, NamespacedTopic(t.namespace, PoisonTopic), PoisonGroup)
	return err
}

func (t *sqsTransport) queueURL(ctx context.Context, topic, group string) (string, error) {
	out, err := t.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(sqsQueueName(topic, group))})
	if err != nil {
		return "", fmt.Errorf("sqs: %w", err)
	}
	return *out.QueueUrl, nil
}

// sqsPublisher notes the topic in each message, for a copy that ends in a
// dead-letter queue to name it.
type sqsPublisher struct{ *wsns.Publisher }

func (p sqsPublisher) Publish(topic string, msgs ...*message.Message) error {
	for _, msg := range msgs {
		msg.Metadata.Set(sqsTopicKey, topic)
	}
	return p.Publisher.Publish(topic, msgs...)
}

// sqsSubscriber is watermill-aws's subscriber of one group's queue, which
// keeps each message hidden while its handler works on it and shows a
// nacked one again after a backoff.
type sqsSubscriber struct {
	*wsns.Subscriber
	transport *sqsTransport
	group     string
	closing   chan struct{}
	closeOnce sync.Once
}

func (s *sqsSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	in, err := s.Subscriber.Subscribe(ctx, topic)
	if err != nil {
		return nil, err
	}
	queueURL, err := s.transport.queueURL(ctx, topic, s.group)
	if err != nil {
		return nil, err
	}
	out := make(chan *message.Message)
	go func() {
		defer close(out)
		// Read until watermill-aws closes in: it waits on each message it sends.
		for msg := range in {
			receipt := msg.Metadata.Get(sqsReceiptKey)
			receives, _ := strconv.Atoi(msg.Metadata.Get(sqsReceivesKey))
			delete(msg.Metadata, sqsReceiptKey)
			delete(msg.Metadata, sqsReceivesKey)
			go s.keepHidden(ctx, queueURL, receipt, receives, msg)
			select {
			case out <- msg:
			case <-ctx.Done():
			case <-s.closing:
			}
		}
	}()
	return out, nil
}

// keepHidden extends msg's visibility until it is acked (watermill-aws
// deletes it then), and on a nack, a close or the subscription's end shows
// it again: after the backoff of its receives, or at once for another
// subscriber.
func (s *sqsSubscriber) keepHidden(ctx context.Context, queueURL, receipt string, receives int, msg *message.Message) {
	ticker := time.NewTicker(sqsExtendEvery)
	defer ticker.Stop()
	for {
		select {
		case <-msg.Acked():
			return
		case <-msg.Nacked():
			s.setVisibility(queueURL, receipt, nackBackoff(receives))
			return
		case <-s.closing:
			s.setVisibility(queueURL, receipt, 0)
			return
		case <-ctx.Done():
			s.setVisibility(queueURL, receipt, 0)
			return
		case <-ticker.C:
			s.setVisibility(queueURL, receipt, sqsVisibility)
		}
	}
}

// nackBackoff is 1 s for a first receive, doubled for each next one, up
// to sqsMaxBackoff.
func nackBackoff(receives int) time.Duration {
	backoff := time.Second
	for i := 1; i < receives && backoff < sqsMaxBackoff; i++ {
		backoff *= 2
	}
	return min(backoff, sqsMaxBackoff)
}

// setVisibility is best effort: a message deleted meanwhile, or SQS away,
// leaves the visibility it had, and SQS shows the message when it ends.
func (s *sqsSubscriber) setVisibility(queueURL, receipt string, visibility time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), sqsTimeout)
	defer cancel()
	_, _ = s.transport.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(queueURL), ReceiptHandle: aws.String(receipt), VisibilityTimeout: int32(visibility / time.Second),
	})
}

func (s *sqsSubscriber) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	return s.Subscriber.Close()
}

// sqsMarshaler puts a message's UUID in watermill-aws's attribute and its
// metadata, as JSON, in one more.
type sqsMarshaler struct{}

func (sqsMarshaler) attributes(msg *message.Message) (uuid, metadata string) {
	encoded, _ := json.Marshal(msg.Metadata) // a map of strings always encodes
	return msg.UUID, string(encoded)
}

func (m sqsMarshaler) Marshal(topicArn wsns.TopicArn, msg *message.Message) *sns.PublishInput {
	uuid, metadata := m.attributes(msg)
	return &sns.PublishInput{
		TopicArn: aws.String(string(topicArn)),
		Message:  aws.String(string(msg.Payload)),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{
			wsqs.UUIDAttribute: {DataType: aws.String("String"), StringValue: aws.String(uuid)},
			sqsMetadataAttr:    {DataType: aws.String("String"), StringValue: aws.String(metadata)},
		},
	}
}

// sendInput is msg sent straight to one queue.
func (m sqsMarshaler) sendInput(queueURL string, msg *message.Message) *sqs.SendMessageInput {
	uuid, metadata := m.attributes(msg)
	return &sqs.SendMessageInput{
		QueueUrl:    aws.String(queueURL),
		MessageBody: aws.String(string(msg.Payload)),
		MessageAttributes: map[string]types.MessageAttributeValue{
			wsqs.UUIDAttribute: {DataType: aws.String("String"), StringValue: aws.String(uuid)},
			sqsMetadataAttr:    {DataType: aws.String("String"), StringValue: aws.String(metadata)},
		},
	}
}

func (sqsMarshaler) Unmarshal(received *types.Message) (*message.Message, error) {
	stringAttribute := func(name string) string {
		if v, ok := received.MessageAttributes[name]; ok && v.StringValue != nil {
			return *v.StringValue
		}
		return ""
	}
	msg := message.NewMessage(stringAttribute(wsqs.UUIDAttribute), []byte(aws.ToString(received.Body)))
	if raw := stringAttribute(sqsMetadataAttr); raw != "" {
		if err := json.Unmarshal([]byte(raw), &msg.Metadata); err != nil {
			return nil, fmt.Errorf("sqs: message %s: its metadata is not a JSON object of strings", aws.ToString(received.MessageId))
		}
	}
	msg.Metadata.Set(sqsReceiptKey, aws.ToString(received.ReceiptHandle))
	msg.Metadata.Set(sqsReceivesKey, received.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	return msg, nil
}

// sqsTransient reports whether err is an AWS call that failed for the
// connection, a 5xx, a timeout or throttling: an outage. The SDK's own
// classifiers decide, as they do for its retries.
func sqsTransient(err error) bool {
	var operation *smithy.OperationError
	if !errors.As(err, &operation) {
		return false
	}
	return retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary ||
		retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary
}
