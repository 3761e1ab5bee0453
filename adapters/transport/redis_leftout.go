//go:build noredis

package transport

import (
	"context"

	"github.com/ThreeDotsLabs/watermill"
)

// This build leaves the redis transport out (-tags noredis): PUBSUB=redis,
// its poison queue and its teardown answer so.

type (
	redisBroker  struct{}
	redisTimings struct{}
)

func newRedisTransportOf(Config, watermill.LoggerAdapter) (*Transport, error) {
	return nil, leftOut(KindRedis)
}
func newRedisPoisonQueue(Config) (PoisonQueue, error) { return nil, leftOut(KindRedis) }
func teardownRedis(context.Context, Config, bool) ([]RemovedResources, error) {
	return nil, leftOut(KindRedis)
}
func redisTransient(error) bool                                            { return false }
func (c *BacklogReader) readRedisHandlers(context.Context, *reading) error { return leftOut(KindRedis) }
func (c *BacklogReader) readRedisPoison(context.Context, *reading) error   { return leftOut(KindRedis) }

// PersistenceWarning has nothing to say without Redis.
func (t *Transport) PersistenceWarning(context.Context) (string, error) { return "", nil }
