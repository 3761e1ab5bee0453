//go:build !noredis

package transport

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisCountBound bounds the entries read to count a group's lag.
const redisCountBound = 10000

// groupBacklog is what waits for a group: the messages delivered to a
// consumer and not acked yet (a handler works on them, or a dead consumer
// held them) and those not delivered yet, with the time the oldest of them
// was added to the stream. A stream or group not created yet holds nothing.
func (b *redisBroker) groupBacklog(ctx context.Context, stream, group string) (count int64, oldest time.Time, err error) {
	groups, err := b.client.XInfoGroups(ctx, stream).Result()
	if isNoSuchKey(err) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, err
	}
	for _, g := range groups {
		if g.Name != group {
			continue
		}
		lag := g.Lag
		if lag < 0 { // Redis cannot tell, after deletions: count, up to a bound
			undelivered, err := b.client.XRangeN(ctx, stream, "("+g.LastDeliveredID, "+", redisCountBound).Result()
			if err != nil {
				return 0, time.Time{}, err
			}
			lag = int64(len(undelivered))
		}
		var first streamID
		switch {
		case g.Pending > 0:
			first, err = b.oldestPending(ctx, stream, group)
		case lag > 0:
			var next []redis.XMessage
			next, err = b.client.XRangeN(ctx, stream, "("+g.LastDeliveredID, "+", 1).Result()
			if err == nil && len(next) > 0 {
				first, err = parseStreamID(next[0].ID)
			}
		}
		if err != nil {
			return 0, time.Time{}, err
		}
		if g.Pending+lag > 0 && first != (streamID{}) {
			oldest = first.time()
		}
		return g.Pending + lag, oldest, nil
	}
	return 0, time.Time{}, nil
}

// readRedisHandlers reads each handler's group: what its stream holds that
// the group has not read yet, plus what it read and has not acked, and the
// age of the oldest of them, by Redis's clock.
func (c *BacklogReader) readRedisHandlers(ctx context.Context, r *reading) error {
	b := c.cfg.Transport.redis
	now, err := b.client.Time(ctx).Result()
	if err != nil {
		return err
	}
	for _, h := range c.cfg.Handlers {
		count, oldest, err := b.groupBacklog(ctx, c.cfg.Transport.Topic(h.Topic), h.Handler)
		if err != nil {
			return err
		}
		age := 0.0
		if count > 0 && !oldest.IsZero() {
			age = max(0, now.Sub(oldest).Seconds())
		}
		r.gauge(HandlerMessages, float64(count), h.Handler)
		r.gauge(HandlerOldestAge, age, h.Handler)
	}
	return nil
}

// readRedisPoison counts the poison stream's entries: requeuing one
// deletes it.
func (c *BacklogReader) readRedisPoison(ctx context.Context, r *reading) error {
	n, err := c.cfg.Transport.redis.client.XLen(ctx, c.cfg.Transport.Topic(PoisonTopic)).Result()
	if err != nil {
		return err
	}
	r.gauge(PoisonedMessages, float64(n))
	return nil
}
