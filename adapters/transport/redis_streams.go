//go:build !noredis

package transport

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// streamID is the id of a stream entry: the Unix milliseconds of its
// XADD, by Redis's clock, and a sequence number within them.
type streamID struct{ ms, seq uint64 }

func parseStreamID(s string) (streamID, error) {
	ms, seq, ok := strings.Cut(s, "-")
	a, errMs := strconv.ParseUint(ms, 10, 64)
	b, errSeq := strconv.ParseUint(seq, 10, 64)
	if !ok || errMs != nil || errSeq != nil {
		return streamID{}, fmt.Errorf("not a stream entry id: %q", s)
	}
	return streamID{a, b}, nil
}

func (id streamID) String() string { return fmt.Sprintf("%d-%d", id.ms, id.seq) }

func (id streamID) less(other streamID) bool {
	return id.ms < other.ms || (id.ms == other.ms && id.seq < other.seq)
}

// next is the least id after id.
func (id streamID) next() streamID {
	if id.seq == math.MaxUint64 {
		return streamID{id.ms + 1, 0}
	}
	return streamID{id.ms, id.seq + 1}
}

func (id streamID) time() time.Time { return time.UnixMilli(int64(id.ms)) }

// isNoSuchKey: the stream does not exist (yet).
func isNoSuchKey(err error) bool { return redis.HasErrorPrefix(err, "no such key") }

// runTrimmer trims the streams every timings.trim until ctx ends,
// with a warning when trimming starts failing and a line when it works again.
func (b *redisBroker) runTrimmer(ctx context.Context) {
	defer close(b.trimmerDone)
	ticker := time.NewTicker(b.timings.trim)
	defer ticker.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		trimCtx, cancel := context.WithTimeout(ctx, redisTimeout)
		err := b.trim(trimCtx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			b.logger.Warn("redis transport: cannot trim the streams; they keep what was acked until it works again",
				"error", err)
			failing = true
		case err == nil && failing:
			b.logger.Info("redis transport: the streams are trimmed again")
			failing = false
		}
	}
}

// trim removes from each stream read here the entries that every group of
// it has acked: those before the oldest entry a group still holds unacked
// and before the next entry a group has yet to read. A stream without a
// group is left whole (the poison stream is never trimmed: it has none).
// Publishing sets no MAXLEN, which would drop what a slow group has not
// read yet.
func (b *redisBroker) trim(ctx context.Context) error {
	var errs []error
	for _, stream := range b.tracked() {
		keepFrom, ok, err := b.oldestNeeded(ctx, stream)
		if err == nil && ok {
			err = b.client.XTrimMinID(ctx, stream, keepFrom.String()).Err()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("trim %s: %w", stream, err))
		}
	}
	return errors.Join(errs...)
}

// oldestNeeded is the id of the oldest entry of the stream that some group
// still needs; ok is false when there is nothing to trim by (no stream, or
// no group).
func (b *redisBroker) oldestNeeded(ctx context.Context, stream string) (keepFrom streamID, ok bool, err error) {
	groups, err := b.client.XInfoGroups(ctx, stream).Result()
	if isNoSuchKey(err) {
		return streamID{}, false, nil
	}
	if err != nil {
		return streamID{}, false, err
	}
	for _, g := range groups {
		last, err := parseStreamID(g.LastDeliveredID)
		if err != nil {
			return streamID{}, false, err
		}
		needed := last.next()
		if g.Pending > 0 {
			oldest, err := b.oldestPending(ctx, stream, g.Name)
			if err != nil {
				return streamID{}, false, err
			}
			if oldest.less(needed) {
				needed = oldest
			}
		}
		if !ok || needed.less(keepFrom) {
			keepFrom, ok = needed, true
		}
	}
	return keepFrom, ok, nil
}

func (b *redisBroker) oldestPending(ctx context.Context, stream, group string) (streamID, error) {
	summary, err := b.client.XPending(ctx, stream, group).Result()
	if err != nil {
		return streamID{}, err
	}
	return parseStreamID(summary.Lower)
}

// PersistenceWarning says what the broker would lose if it restarted, as
// its settings tell, or "" when they keep what it holds or the transport
// has no such settings (only redis has). err: the settings could not be
// read, as on managed services that disable CONFIG.
func (t *Transport) PersistenceWarning(ctx context.Context) (string, error) {
	if t.redis == nil {
		return "", nil
	}
	get := func(name string) (string, error) {
		values, err := t.redis.client.ConfigGet(ctx, name).Result()
		if err != nil {
			return "", fmt.Errorf("CONFIG GET %s: %w", name, err)
		}
		return values[name], nil
	}
	appendOnly, err := get("appendonly")
	if err != nil {
		return "", err
	}
	if appendOnly == "no" {
		return "Redis keeps no append-only file (appendonly no): if it restarts, the messages it holds are lost, " +
			"events forwarded from the outbox and not handled yet among them; set appendonly yes (see the README)", nil
	}
	fsync, err := get("appendfsync")
	if err != nil {
		return "", err
	}
	if fsync == "no" {
		return "Redis leaves it to the operating system when to write its append-only file to disk (appendfsync no): " +
			"a crash of its host loses the last seconds of messages; set appendfsync everysec or always (see the README)", nil
	}
	return "", nil
}
