//go:build !noredis

package transport

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// WithRedisTimings lets the package's other tests shorten the redis
// transport's waits.
func WithRedisTimings(cfg Config, claimIdle, claimInterval, tend, trim time.Duration) Config {
	cfg.redisTimings = &redisTimings{claimIdle: claimIdle, claimInterval: claimInterval, tend: tend, trim: trim}
	return cfg
}

// TrimRedis trims the redis transport's streams now.
func (t *Transport) TrimRedis(ctx context.Context) error { return t.redis.trim(ctx) }

func TestStreamID(t *testing.T) {
	id, err := parseStreamID("1700000000123-7")
	require.NoError(t, err)
	assert.Equal(t, streamID{1700000000123, 7}, id)
	assert.Equal(t, "1700000000123-7", id.String())
	assert.Equal(t, time.UnixMilli(1700000000123), id.time())
	assert.Equal(t, streamID{1700000000123, 8}, id.next())
	assert.Equal(t, streamID{5, 0}, streamID{4, math.MaxUint64}.next())
	assert.True(t, id.less(id.next()))
	assert.True(t, streamID{1, 9}.less(streamID{2, 0}))
	assert.False(t, id.less(id))
	for _, bad := range []string{"", "12", "12-", "-3", "a-1", "1-b", "1-2-3"} {
		_, err := parseStreamID(bad)
		assert.Error(t, err, bad)
	}
}

func TestErrorQuiet_OnceAMinutePerMessage(t *testing.T) {
	var q errorQuiet
	assert.True(t, q.allow("read fail"))
	assert.False(t, q.allow("read fail"), "repeated at once")
	assert.True(t, q.allow("xclaim fail"), "another message")
	q.last["read fail"] = time.Now().Add(-redisErrorQuiet)
	assert.True(t, q.allow("read fail"), "a minute later")
}
