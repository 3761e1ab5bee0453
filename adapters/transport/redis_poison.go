//go:build !noredis

package transport

import (
	"context"
	"fmt"
	"slices"

	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
)

// redisPoisonQueue reads the poison stream of the namespace on Redis. The
// stream has no consumer group, so nothing reads or trims it: an entry
// stays until it is requeued.
type redisPoisonQueue struct{ url, namespace string }

func newRedisPoisonQueue(cfg Config) (PoisonQueue, error) {
	return redisPoisonQueue{url: cfg.RedisURL, namespace: cfg.Namespace}, nil
}

// withClient runs f on a client of its own, closed after.
func (q redisPoisonQueue) withClient(f func(*redis.Client) error) error {
	options, err := parseRedisURL(q.url)
	if err != nil {
		return err
	}
	options.DialTimeout = redisTimeout
	client := redis.NewClient(options)
	defer func() { _ = client.Close() }()
	return f(client)
}

func (q redisPoisonQueue) stream() string { return NamespacedTopic(q.namespace, PoisonTopic) }

// visit calls f on each poisoned message with its entry's id, oldest first.
func (q redisPoisonQueue) visit(ctx context.Context, client *redis.Client, f func(entryID string, msg *message.Message) (stop bool)) error {
	entries, err := client.XRange(ctx, q.stream(), "-", "+").Result()
	if err != nil {
		return fmt.Errorf("read the poison stream: %w", err)
	}
	for _, e := range entries {
		msg, err := redisUnmarshaller{}.Unmarshal(e.Values)
		if err != nil {
			return fmt.Errorf("poisoned message %s: %w", e.ID, err)
		}
		if f(e.ID, msg) {
			return nil
		}
	}
	return nil
}

func (q redisPoisonQueue) List(ctx context.Context) ([]PoisonedMessage, error) {
	var out []PoisonedMessage
	err := q.withClient(func(client *redis.Client) error {
		return q.visit(ctx, client, func(_ string, msg *message.Message) bool {
			out = append(out, describePoisoned(msg))
			return false
		})
	})
	return out, err
}

// requeueScript moves an entry of the poison stream (KEYS[1], entry id
// ARGV[1]) to a topic's stream (KEYS[2], fields and values ARGV[2..]) if it
// is still there, at once: of two operators requeuing it, one does.
var requeueScript = redis.NewScript(`
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
redis.call('XDEL', KEYS[1], ARGV[1])
return 1`)

// Requeue adds the message back to its topic's stream, marked for the
// handler that poisoned it (the other groups of the stream skip it, see
// ForNamedHandler), and deletes it from the poison stream, in one step.
func (q redisPoisonQueue) Requeue(ctx context.Context, id string) (PoisonedMessage, error) {
	var poisoned PoisonedMessage
	err := q.withClient(func(client *redis.Client) error {
		var (
			entryID string
			found   *message.Message
		)
		if err := q.visit(ctx, client, func(e string, msg *message.Message) bool {
			if msg.UUID == id {
				entryID, found = e, msg
			}
			return found != nil
		}); err != nil {
			return err
		}
		if found == nil {
			return ErrPoisonedMessageNotFound
		}
		poisoned = describePoisoned(found)
		if err := checkRequeueTarget(poisoned); err != nil {
			return err
		}
		stream := NamespacedTopic(q.namespace, poisoned.Topic)
		// Added to a stream without the handler's group, it would reach no one.
		groups, err := client.XInfoGroups(ctx, stream).Result()
		if err != nil && !isNoSuchKey(err) {
			return fmt.Errorf("requeue to %s: %w", stream, err)
		}
		if !slices.ContainsFunc(groups, func(g redis.XInfoGroup) bool { return g.Name == poisoned.Handler }) {
			return fmt.Errorf("requeue to %s: the stream has no consumer group %s", stream, poisoned.Handler)
		}
		values, err := redisstream.DefaultMarshallerUnmarshaller{}.Marshal(stream, unpoisoned(found, poisoned.Handler))
		if err != nil {
			return err
		}
		args := []any{entryID}
		fields := make([]string, 0, len(values))
		for field := range values {
			fields = append(fields, field)
		}
		slices.Sort(fields)
		for _, field := range fields {
			args = append(args, field, values[field])
		}
		moved, err := requeueScript.Run(ctx, client, []string{q.stream(), stream}, args...).Int()
		if err != nil {
			return fmt.Errorf("requeue to %s: %w", stream, err)
		}
		if moved == 0 {
			return ErrPoisonedMessageNotFound
		}
		return nil
	})
	if err != nil {
		return PoisonedMessage{}, err
	}
	return poisoned, nil
}
