//go:build !nosqs

package transport

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"golang.org/x/sync/errgroup"
)

// sqsPoisonQueue reads the namespace's poison queue and its handlers'
// dead-letter queues. SQS lists nothing without receiving it: a reading
// receives every message, then shows them again at once, so a reading
// counts as a receive of each.
type sqsPoisonQueue struct{ cfg Config }

func newSQSPoisonQueue(cfg Config) (PoisonQueue, error) { return sqsPoisonQueue{cfg: cfg}, nil }

// sqsHeld is a message received from a poison or dead-letter queue.
type sqsHeld struct {
	queueURL, receipt string
	msg               *message.Message
	poisoned          PoisonedMessage
}

// deadLetterQueues are the URLs of the namespace's dead-letter queues.
func (t *sqsTransport) deadLetterQueues(ctx context.Context) ([]string, error) {
	var urls []string
	prefix := sqsTopicName(t.namespace)
	if prefix != "" {
		prefix += "_"
	}
	pages := sqs.NewListQueuesPaginator(t.sqs, &sqs.ListQueuesInput{QueueNamePrefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("sqs: list queues: %w", err)
		}
		for _, u := range page.QueueUrls {
			if strings.HasSuffix(u, sqsDeadSuffix) {
				urls = append(urls, u)
			}
		}
	}
	return urls, nil
}

// withReceived receives every message of the poison queue and the
// dead-letter queues, runs f on them, and shows again every one f did not
// delete.
func (q sqsPoisonQueue) withReceived(ctx context.Context, f func(*sqsTransport, []sqsHeld) (deleted int, err error)) error {
	t, err := newSQSTransportOf(ctx, q.cfg)
	if err != nil {
		return err
	}
	poisonURL, err := t.queueURL(ctx, NamespacedTopic(q.cfg.Namespace, PoisonTopic), PoisonGroup)
	var missing *types.QueueDoesNotExist
	if errors.As(err, &missing) {
		return nil // nothing was ever poisoned here
	}
	if err != nil {
		return err
	}
	dead, err := t.deadLetterQueues(ctx)
	if err != nil {
		return err
	}
	var all []sqsHeld
	defer func() {
		release, cancel := context.WithTimeout(context.WithoutCancel(ctx), sqsTimeout)
		defer cancel()
		for _, h := range all {
			_, _ = t.sqs.ChangeMessageVisibility(release, &sqs.ChangeMessageVisibilityInput{
				QueueUrl: aws.String(h.queueURL), ReceiptHandle: aws.String(h.receipt), VisibilityTimeout: 0,
			})
		}
	}()
	// One long poll per queue at a time, the queues at once: a namespace
	// has a dead-letter queue per handler and topic.
	var mu sync.Mutex
	group, groupCtx := errgroup.WithContext(ctx)
	group.SetLimit(8)
	for _, queueURL := range append([]string{poisonURL}, dead...) {
		group.Go(func() error {
			held, err := q.receiveAll(groupCtx, t, queueURL, queueURL == poisonURL)
			mu.Lock()
			all = append(all, held...)
			mu.Unlock()
			return err
		})
	}
	if err := group.Wait(); err != nil {
		return err
	}
	deleted, err := f(t, all)
	if deleted >= 0 {
		all = slices.Delete(all, deleted, deleted+1)
	}
	return err
}

// receiveAll receives every message of one queue, until a long poll
// finds none.
func (q sqsPoisonQueue) receiveAll(ctx context.Context, t *sqsTransport, queueURL string, poisoned bool) ([]sqsHeld, error) {
	var held []sqsHeld
	for {
		out, err := t.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			VisibilityTimeout: int32(sqsVisibility / time.Second), MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			return held, fmt.Errorf("read the poison queue: %w", err)
		}
		if len(out.Messages) == 0 {
			return held, nil
		}
		for i := range out.Messages {
			receipt := aws.ToString(out.Messages[i].ReceiptHandle)
			msg, err := sqsMarshaler{}.Unmarshal(&out.Messages[i])
			if err != nil {
				return held, fmt.Errorf("read the poison queue: %w", err)
			}
			delete(msg.Metadata, sqsReceiptKey)
			delete(msg.Metadata, sqsReceivesKey)
			held = append(held, sqsHeld{queueURL: queueURL, receipt: receipt, msg: msg, poisoned: q.describe(queueURL, poisoned, msg)})
		}
	}
}

// describe is a poisoned message, or a dead-lettered one: the handler of
// its dead-letter queue, the topic it was published to, and the reason
// SQS moved it.
func (q sqsPoisonQueue) describe(queueURL string, poisoned bool, msg *message.Message) PoisonedMessage {
	p := describePoisoned(msg)
	if poisoned {
		return p
	}
	topic := msg.Metadata.Get(sqsTopicKey)
	queue := strings.TrimSuffix(queueURL[strings.LastIndex(queueURL, "/")+1:], sqsDeadSuffix)
	p.Handler = strings.TrimPrefix(queue, sqsTopicName(topic)+"_")
	if sqsQueueNameOf(sqsTopicName(topic), p.Handler) != queue {
		p.Handler = "" // a queue name cut to SQS's length: requeue refuses it
	}
	p.Topic = strings.TrimPrefix(topic, NamespacedTopic(q.cfg.Namespace, ""))
	p.Reason = "received " + strconv.Itoa(q.maxReceives()) + " times without an ack: SQS moved it to the dead-letter queue"
	p.ID = p.Handler + ":" + msg.UUID // its own UUID, in every handler's dead-letter queue
	return p
}

func (q sqsPoisonQueue) maxReceives() int {
	if q.cfg.sqsMaxReceives > 0 {
		return q.cfg.sqsMaxReceives
	}
	return sqsMaxReceives
}

func (q sqsPoisonQueue) List(ctx context.Context) ([]PoisonedMessage, error) {
	var out []PoisonedMessage
	err := q.withReceived(ctx, func(_ *sqsTransport, all []sqsHeld) (int, error) {
		for _, h := range all {
			out = append(out, h.poisoned)
		}
		return -1, nil
	})
	// SQS receives in no order; a poisoned copy's id is a UUIDv7 of when it was poisoned.
	slices.SortFunc(out, func(a, b PoisonedMessage) int { return strings.Compare(a.ID, b.ID) })
	return out, err
}

// Requeue sends the message to the queue of the handler that poisoned it,
// and only once SQS has it, deletes it from the poison or dead-letter queue.
func (q sqsPoisonQueue) Requeue(ctx context.Context, id string) (PoisonedMessage, error) {
	var found *PoisonedMessage
	err := q.withReceived(ctx, func(t *sqsTransport, all []sqsHeld) (int, error) {
		for i, h := range all {
			if h.poisoned.ID != id {
				continue
			}
			if err := checkRequeueTarget(h.poisoned); err != nil {
				return -1, err
			}
			target, err := t.queueURL(ctx, NamespacedTopic(q.cfg.Namespace, h.poisoned.Topic), h.poisoned.Handler)
			if err != nil {
				return -1, fmt.Errorf("requeue to %s: %w", h.poisoned.Handler, err)
			}
			back := unpoisoned(h.msg, h.poisoned.Handler)
			// The topic it came from, for a dead-letter queue to name it
			// again: a poisoned copy was last published to the poison topic.
			back.Metadata.Set(sqsTopicKey, NamespacedTopic(q.cfg.Namespace, h.poisoned.Topic))
			if _, err := t.sqs.SendMessage(ctx, sqsMarshaler{}.sendInput(target, back)); err != nil {
				return -1, fmt.Errorf("requeue to %s: %w", target, err)
			}
			if _, err := t.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{
				QueueUrl: aws.String(h.queueURL), ReceiptHandle: aws.String(h.receipt),
			}); err != nil {
				return -1, fmt.Errorf("delete from the poison queue: %w", err)
			}
			found = &h.poisoned
			return i, nil
		}
		return -1, nil
	})
	if err != nil {
		return PoisonedMessage{}, err
	}
	if found == nil {
		return PoisonedMessage{}, ErrPoisonedMessageNotFound
	}
	return *found, nil
}

// depth is the messages of a queue not deleted yet: waiting, or received
// and not acked.
func (t *sqsTransport) depth(ctx context.Context, queueURL string) (int, error) {
	out, err := t.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(queueURL), AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible},
	})
	if err != nil {
		return 0, fmt.Errorf("sqs: the depth of %s: %w", queueURL, err)
	}
	visible, _ := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	hidden, _ := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return visible + hidden, nil
}

// readSQSHandlers reads each handler's queue depth; the oldest age is of
// the messages this process's handlers hold, as SQS tells it in
// CloudWatch only (ApproximateAgeOfOldestMessage).
func (c *BacklogReader) readSQSHandlers(ctx context.Context, r *reading) error {
	t, now := c.cfg.Transport.sqs, time.Now()
	for _, h := range c.cfg.Handlers {
		queueURL, err := t.queueURL(ctx, c.cfg.Transport.Topic(h.Topic), h.Handler)
		if err != nil {
			return err
		}
		depth, err := t.depth(ctx, queueURL)
		if err != nil {
			return err
		}
		_, age := c.cfg.Transport.held.backlog(h.Handler, now)
		r.gauge(HandlerMessages, float64(depth), h.Handler)
		r.gauge(HandlerOldestAge, age, h.Handler)
	}
	return nil
}

// readSQSPoison counts the poison queue and the dead-letter queues.
func (c *BacklogReader) readSQSPoison(ctx context.Context, r *reading) error {
	t := c.cfg.Transport.sqs
	poisonURL, err := t.queueURL(ctx, c.cfg.Transport.Topic(PoisonTopic), PoisonGroup)
	if err != nil {
		return err
	}
	dead, err := t.deadLetterQueues(ctx)
	if err != nil {
		return err
	}
	total := 0
	for _, queueURL := range append(dead, poisonURL) {
		n, err := t.depth(ctx, queueURL)
		if err != nil {
			return err
		}
		total += n
	}
	r.gauge(PoisonedMessages, float64(total))
	return nil
}
