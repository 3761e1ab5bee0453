//go:build !noredis

package transport_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/internal/testenv"
)

// redisRig is a redis transport in a namespace of the test's own, with a
// client of the same server to look at its streams.
type redisRig struct {
	tr     *transport.Transport
	cfg    transport.Config
	client *redis.Client
}

// redisTimings are the rig's claim idle time, claim interval, touch
// interval and trim interval.
type redisTimings struct{ claimIdle, claimInterval, tend, trim time.Duration }

func newRedisRig(t *testing.T, timings *redisTimings) *redisRig {
	t.Helper()
	redisURL, ns := testenv.RedisNamespace(t)
	cfg := transport.Config{Kind: transport.KindRedis, RedisURL: redisURL, Namespace: ns}
	if timings != nil {
		cfg = transport.WithRedisTimings(cfg, timings.claimIdle, timings.claimInterval, timings.tend, timings.trim)
	}
	return &redisRig{tr: newTransportOf(t, cfg), cfg: cfg, client: testenv.RedisClient(t, redisURL)}
}

// another is a second transport of the rig's configuration: another process.
func (r *redisRig) another(t *testing.T) *transport.Transport {
	t.Helper()
	return newTransportOf(t, r.cfg)
}

func (r *redisRig) pending(t *testing.T, stream, group string) int64 {
	t.Helper()
	summary, err := r.client.XPending(testenv.Context(t), stream, group).Result()
	require.NoError(t, err)
	return summary.Count
}

func (r *redisRig) length(t *testing.T, stream string) int64 {
	t.Helper()
	n, err := r.client.XLen(testenv.Context(t), stream).Result()
	require.NoError(t, err)
	return n
}

// A consumer that read a message and died never acks it: once it has been
// idle for the claim idle time, a consumer of the same group takes it over.
func TestRedisTransport_ClaimsWhatADeadConsumerHeld(t *testing.T) {
	r := newRedisRig(t, &redisTimings{claimIdle: time.Second, claimInterval: 100 * time.Millisecond,
		tend: 300 * time.Millisecond, trim: time.Hour})
	topic := testenv.Name("events")
	sub := subscriber(t, r.tr, "H", topic)
	msg := newTestMessage("held by the dead")
	require.NoError(t, r.tr.Publisher.Publish(topic, msg))

	read, err := r.client.XReadGroup(testenv.Context(t), &redis.XReadGroupArgs{
		Group: "H", Consumer: "dead", Streams: []string{r.tr.Topic(topic), ">"}, Count: 1,
	}).Result()
	require.NoError(t, err)
	require.Len(t, read[0].Messages, 1)
	readAt := time.Now()

	got := receive(t, subscribe(t, sub, topic), "the message the dead consumer held")
	assert.GreaterOrEqual(t, time.Since(readAt), time.Second, "not before the claim idle time")
	assert.Equal(t, msg.UUID, got.UUID)
	got.Ack()
	require.Eventually(t, func() bool { return r.pending(t, r.tr.Topic(topic), "H") == 0 },
		transportWait, 20*time.Millisecond, "acked by its new consumer")
}

// A live handler may hold a message for much longer than the claim idle
// time (its quick retries, an outage): its consumer keeps touching it, so
// no other consumer, of this process or another, takes it over.
func TestRedisTransport_KeepsWhatALiveHandlerHolds(t *testing.T) {
	const claimIdle = time.Second
	r := newRedisRig(t, &redisTimings{claimIdle: claimIdle, claimInterval: 100 * time.Millisecond,
		tend: 250 * time.Millisecond, trim: time.Hour})
	topic := testenv.Name("events")
	first := subscribe(t, subscriber(t, r.tr, "H", topic), topic)
	other := r.another(t)
	second := subscribe(t, subscriber(t, other, "H", topic), topic)
	msg := newTestMessage("held")
	require.NoError(t, r.tr.Publisher.Publish(topic, msg))

	var held *message.Message
	select {
	case held = <-first:
	case held = <-second:
	case <-time.After(transportWait):
		t.Fatal("the message was not delivered")
	}
	require.Equal(t, msg.UUID, held.UUID)
	hold := time.After(3 * claimIdle) // the handler works on it that long
	for waiting := true; waiting; {
		select {
		case again := <-first:
			t.Fatalf("delivered again while held: %s", again.UUID)
		case again := <-second:
			t.Fatalf("delivered again while held: %s", again.UUID)
		case <-hold:
			waiting = false
		}
	}
	held.Ack()
	require.Eventually(t, func() bool { return r.pending(t, r.tr.Topic(topic), "H") == 0 },
		transportWait, 20*time.Millisecond, "acked")
}

// An entry Redis counts as delivered to a live consumer that never got
// it (the answer of its read lost when the connection was cut) is not
// kept alive with what the consumer holds: once idle for the claim idle
// time, it is claimed and handled.
func TestRedisTransport_ClaimsWhatALiveConsumerNeverReceived(t *testing.T) {
	r := newRedisRig(t, &redisTimings{claimIdle: time.Second, claimInterval: 100 * time.Millisecond,
		tend: 200 * time.Millisecond, trim: time.Hour})
	topic := testenv.Name("events")
	stream := r.tr.Topic(topic)
	messages := subscribe(t, subscriber(t, r.tr, "H", topic), topic)
	// Each of the handler's consumers holds a message, and reads nothing
	// new meanwhile: a read in the name of one now is one whose answer it
	// never saw.
	var held []*message.Message
	for range transport.HandlerConcurrency {
		require.NoError(t, r.tr.Publisher.Publish(topic, newTestMessage("held")))
		held = append(held, receive(t, messages, "a message a handler holds"))
	}
	consumers, err := r.client.XInfoConsumers(testenv.Context(t), stream, "H").Result()
	require.NoError(t, err)
	require.Len(t, consumers, transport.HandlerConcurrency)
	lost := newTestMessage("lost in the cut")
	require.NoError(t, r.tr.Publisher.Publish(topic, lost))
	// Taken before the read: Redis counts the idle time from its delivery,
	// which comes after this and before the answer arrives.
	readAt := time.Now()
	read, err := r.client.XReadGroup(testenv.Context(t), &redis.XReadGroupArgs{
		Group: "H", Consumer: consumers[0].Name, Streams: []string{stream, ">"}, Count: 1, Block: -1,
	}).Result()
	require.NoError(t, err)
	require.Len(t, read[0].Messages, 1)
	for _, msg := range held {
		msg.Ack()
	}

	got := receive(t, messages, "the message whose read was lost")
	assert.Equal(t, lost.UUID, got.UUID)
	assert.GreaterOrEqual(t, time.Since(readAt), time.Second, "claimed once idle, not read again at once")
	got.Ack()
	require.Eventually(t, func() bool { return r.pending(t, stream, "H") == 0 },
		transportWait, 20*time.Millisecond, "all acked")
}

// A subscriber that closes hands the messages it holds back to its group:
// another consumer gets them at its next look, long before the claim idle
// time.
func TestRedisTransport_CloseHandsMessagesBack(t *testing.T) {
	const claimIdle = time.Minute
	r := newRedisRig(t, &redisTimings{claimIdle: claimIdle, claimInterval: 100 * time.Millisecond,
		tend: 10 * time.Second, trim: time.Hour})
	topic := testenv.Name("events")
	leaving := subscriber(t, r.tr, "H", topic)
	msg := newTestMessage("handed back")
	require.NoError(t, r.tr.Publisher.Publish(topic, msg))
	got := receive(t, subscribe(t, leaving, topic), "the message")
	require.Equal(t, msg.UUID, got.UUID)

	require.NoError(t, leaving.Close(), "closes without acking it")
	closedAt := time.Now()
	again := receive(t, subscribe(t, subscriber(t, r.another(t), "H", topic), topic), "the message handed back")
	assert.Equal(t, msg.UUID, again.UUID)
	assert.Less(t, time.Since(closedAt), claimIdle/2, "handed back, not claimed as a dead consumer's")
	again.Ack()
}

// The streams are trimmed of what every group acked, and only of that: a
// group that has not read a message yet, or holds it unacked, keeps it.
// A stream without groups, as the poison stream, is left whole.
func TestRedisTransport_TrimsOnlyWhatEveryGroupAcked(t *testing.T) {
	r := newRedisRig(t, &redisTimings{claimIdle: time.Minute, claimInterval: time.Minute, tend: time.Minute, trim: time.Hour})
	topic := testenv.Name("events")
	stream := r.tr.Topic(topic)
	for _, group := range []string{"G1", "G2", "G3"} {
		subscriber(t, r.tr, group, topic) // creates the group; the test reads and acks by hand
	}
	ctx := testenv.Context(t)
	var ids []string
	for i := range 10 {
		require.NoError(t, r.tr.Publisher.Publish(topic, newTestMessage(fmt.Sprint(i))))
	}
	require.NoError(t, r.tr.Publisher.Publish(transport.PoisonTopic, newTestMessage("poisoned")))
	read := func(group string, n int64) []string {
		streams, err := r.client.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: group, Consumer: "c", Streams: []string{stream, ">"}, Count: n,
		}).Result()
		require.NoError(t, err)
		var read []string
		for _, m := range streams[0].Messages {
			read = append(read, m.ID)
		}
		return read
	}
	ack := func(group string, ids ...string) {
		require.NoError(t, r.client.XAck(ctx, stream, group, ids...).Err())
	}
	trim := func() {
		require.NoError(t, r.tr.TrimRedis(ctx))
	}

	ids = read("G1", 10)
	require.Len(t, ids, 10)
	ack("G1", ids...)
	read("G2", 10)
	ack("G2", append(ids[:4:4], ids[5:]...)...) // all but the 5th
	ack("G3", read("G3", 3)...)                 // G3 has not read the 4th yet
	trim()
	assert.Equal(t, int64(7), r.length(t, stream), "kept from the first G3 has yet to read")

	ack("G3", read("G3", 10)...)
	trim()
	assert.Equal(t, int64(6), r.length(t, stream), "kept from the one G2 holds unacked")
	first, err := r.client.XRangeN(ctx, stream, "-", "+", 1).Result()
	require.NoError(t, err)
	assert.Equal(t, ids[4], first[0].ID)

	ack("G2", ids[4])
	trim()
	assert.Zero(t, r.length(t, stream), "every group acked every message")
	assert.Equal(t, int64(1), r.length(t, r.tr.Topic(transport.PoisonTopic)), "the poison stream is kept")
}

// Redis restarted without persistence loses the streams and their groups;
// a subscriber creates its group again, and what is published since is
// delivered.
func TestRedisTransport_RecreatesALostGroup(t *testing.T) {
	r := newRedisRig(t, &redisTimings{claimIdle: time.Minute, claimInterval: time.Minute,
		tend: 200 * time.Millisecond, trim: time.Hour})
	topic := testenv.Name("events")
	messages := subscribe(t, subscriber(t, r.tr, "H", topic), topic)
	before := newTestMessage("before")
	require.NoError(t, r.tr.Publisher.Publish(topic, before))
	receive(t, messages, "the message before the loss").Ack()

	require.NoError(t, r.client.Del(testenv.Context(t), r.tr.Topic(topic)).Err(), "the loss")
	after := newTestMessage("after")
	require.NoError(t, r.tr.Publisher.Publish(topic, after))
	got := receive(t, messages, "the message published after the loss")
	got.Ack()
	assert.Equal(t, after.UUID, got.UUID)
}

// An entry that is not a message (written by something else than onboard)
// is delivered marked unreadable, for its handler to poison, and the
// messages after it still are delivered: the library alone would end the
// subscription.
func TestRedisTransport_UnreadableEntryDoesNotStopTheSubscription(t *testing.T) {
	r := newRedisRig(t, nil)
	topic := testenv.Name("events")
	messages := subscribe(t, subscriber(t, r.tr, "H", topic), topic)
	ctx := testenv.Context(t)
	require.NoError(t, r.client.XAdd(ctx, &redis.XAddArgs{Stream: r.tr.Topic(topic), Values: []any{"junk", "x"}}).Err())
	require.NoError(t, r.client.XAdd(ctx, &redis.XAddArgs{Stream: r.tr.Topic(topic),
		Values: []any{"_watermill_message_uuid", "bad-metadata", "metadata", "\xc1", "payload", "p"}}).Err())
	valid := newTestMessage("valid")
	require.NoError(t, r.tr.Publisher.Publish(topic, valid))

	got := map[string]*message.Message{}
	for range 3 {
		m := receive(t, messages, "an entry")
		m.Ack()
		got[string(m.Payload)] = m
	}
	require.Contains(t, got, "valid")
	assert.Equal(t, valid.UUID, got["valid"].UUID)
	assert.Empty(t, got["valid"].Metadata.Get(transport.UnreadableKey))
	require.Contains(t, got, "p")
	assert.Equal(t, "bad-metadata", got["p"].UUID)
	assert.Contains(t, got["p"].Metadata.Get(transport.UnreadableKey), "metadata")
	require.Contains(t, got, "", "the entry without a message id")
	assert.Contains(t, got[""].Metadata.Get(transport.UnreadableKey), "_watermill_message_uuid")
}

// The start-up check of what Redis keeps across a restart.
func TestRedisTransport_PersistenceWarning(t *testing.T) {
	warning := func(t *testing.T, redisURL string) (string, error) {
		tr := newTransportOf(t, transport.Config{Kind: transport.KindRedis, RedisURL: redisURL})
		return tr.PersistenceWarning(testenv.Context(t))
	}
	t.Run("no append-only file", func(t *testing.T) {
		got, err := warning(t, testenv.StartRedis(t, "--appendonly", "no").URL)
		require.NoError(t, err)
		assert.Contains(t, got, "appendonly no")
	})
	t.Run("fsync left to the system", func(t *testing.T) {
		got, err := warning(t, testenv.StartRedis(t, "--appendonly", "yes", "--appendfsync", "no").URL)
		require.NoError(t, err)
		assert.Contains(t, got, "appendfsync no")
	})
	for _, fsync := range []string{"everysec", "always"} {
		t.Run("fsync "+fsync, func(t *testing.T) {
			got, err := warning(t, testenv.StartRedis(t, "--appendonly", "yes", "--appendfsync", fsync).URL)
			require.NoError(t, err)
			assert.Empty(t, got)
		})
	}
	t.Run("CONFIG disabled", func(t *testing.T) {
		_, err := warning(t, testenv.StartRedis(t, "--rename-command", "CONFIG", "").URL)
		assert.ErrorContains(t, err, "CONFIG GET")
	})
	t.Run("other transports", func(t *testing.T) {
		got, err := newTestTransport(t, transportCase{kind: transport.KindGoChannel}).PersistenceWarning(testenv.Context(t))
		assert.NoError(t, err)
		assert.Empty(t, got)
	})
}

func TestNewTransport_RedisBadURLOrServer(t *testing.T) {
	const password = "s3cret-Pa55"
	for _, rawURL := range []string{
		"",
		"redis://:" + password + "@127.0.0.1:notaport/0",
		"http://:" + password + "@127.0.0.1:6379/0",
		":" + password + "@127.0.0.1:6379",
		"redis://:" + password + "@/0",
		"redis://:" + password + "@127.0.0.1:6379/notadb",
		"redis://:" + password + "@127.0.0.1:6379/%zz",
	} {
		t.Run(fmt.Sprintf("%q", rawURL), func(t *testing.T) {
			tr, err := transport.NewTransport(transport.Config{Kind: transport.KindRedis, RedisURL: rawURL})
			require.Error(t, err)
			assert.Nil(t, tr)
			assert.Contains(t, err.Error(), "REDIS_URL")
			assert.NotContains(t, err.Error(), password, "the error never echoes the password")
		})
	}
	servers := map[string]func(t *testing.T) string{
		"unreachable": func(*testing.T) string { return "redis://:" + password + "@127.0.0.1:1/0" },
		"wrong password": func(t *testing.T) string {
			return strings.Replace(testenv.StartRedis(t, "--requirepass", "the-right-one").URL, "redis://", "redis://:"+password+"@", 1)
		},
	}
	for name, redisURL := range servers {
		t.Run(name, func(t *testing.T) {
			rawURL := redisURL(t)
			start := time.Now()
			tr, err := transport.NewTransport(transport.Config{Kind: transport.KindRedis, RedisURL: rawURL})
			elapsed := time.Since(start)
			require.Error(t, err)
			t.Logf("error after %s: %v", elapsed, err)
			assert.Nil(t, tr)
			assert.Less(t, elapsed, 15*time.Second, "fails fast")
			assert.Contains(t, err.Error(), "REDIS_URL")
			assert.NotContains(t, err.Error(), password)
		})
	}
}

// Closing subscribers with messages in flight, then the transport, is not
// an error: nothing is logged above INFO.
func TestRedisTransport_ClosesQuietly(t *testing.T) {
	redisURL, ns := testenv.RedisNamespace(t)
	var logs testenv.LockedBuffer
	tr, err := transport.NewTransport(transport.Config{Kind: transport.KindRedis, RedisURL: redisURL,
		Namespace: ns, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	topic := testenv.Name("events")
	sub, err := tr.Subscriber("H", topic)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	messages, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	for i := range 10 {
		require.NoError(t, tr.Publisher.Publish(topic, newTestMessage(fmt.Sprint(i))))
	}
	receive(t, messages, "a message").Ack()
	receive(t, messages, "a message") // held at the close

	require.NoError(t, sub.Close())
	for range messages { // closed once Close returns
	}
	require.NoError(t, tr.Close())
	assert.NotContains(t, logs.String(), "level=ERROR")
	assert.NotContains(t, logs.String(), "level=WARN")
	assert.Contains(t, logs.String(), "level=DEBUG", "the library's lines reach the logger")
}

// A consumer reads a new message only once it acked the last: the messages
// its handler has not started on wait in the stream, for whichever
// consumer of the group is free first.
func TestRedisTransport_ConsumersReadNoMessageAhead(t *testing.T) {
	r := newRedisRig(t, nil)
	topic := testenv.Name("events")
	messages := subscribe(t, subscriber(t, r.tr, "H", topic), topic)
	for i := range transport.HandlerConcurrency + 2 {
		require.NoError(t, r.tr.Publisher.Publish(topic, newTestMessage(fmt.Sprint(i))))
	}
	var held []*message.Message
	for range transport.HandlerConcurrency {
		held = append(held, receive(t, messages, "a message for each consumer"))
	}
	summary, err := r.client.XPending(testenv.Context(t), r.tr.Topic(topic), "H").Result()
	require.NoError(t, err)
	assert.Equal(t, int64(transport.HandlerConcurrency), summary.Count, "read: one per consumer")
	for consumer, n := range summary.Consumers {
		assert.Equal(t, int64(1), n, consumer)
	}
	for _, m := range held {
		m.Ack()
	}
	for range 2 {
		receive(t, messages, "a message left in the stream").Ack()
	}
}

// redisReply is an error reply of a Redis server.
type redisReply string

func (e redisReply) Error() string { return string(e) }
func (redisReply) RedisError()     {}

// A Redis server down, starting, full or failing over is an outage; a
// command it refuses for itself is not.
func TestClassify_Redis(t *testing.T) {
	r := newRedisRig(t, nil)
	ctx := testenv.Context(t)
	key := r.tr.Topic("a-string")
	require.NoError(t, r.client.Set(ctx, key, "x", 0).Err())
	wrongType := r.client.XLen(ctx, key).Err()
	require.Error(t, wrongType)
	closed := testenv.RedisClient(t, testenv.URL(t, testenv.RedisURLVar))
	require.NoError(t, closed.Close())
	closedErr := closed.Ping(ctx).Err()

	for name, tc := range map[string]struct {
		err  error
		want app.Failure
	}{
		"client closed":       {closedErr, app.FailureOutage},
		"loading":             {redisReply("LOADING Redis is loading the dataset in memory"), app.FailureOutage},
		"replica":             {redisReply("READONLY You can't write against a read only replica."), app.FailureOutage},
		"out of memory":       {redisReply("OOM command not allowed when used memory > 'maxmemory'."), app.FailureOutage},
		"too many clients":    {redisReply("ERR max number of clients reached"), app.FailureOutage},
		"script busy":         {redisReply("BUSY Redis is busy running a script."), app.FailureOutage},
		"group exists":        {redisReply("BUSYGROUP Consumer Group name already exists"), app.FailurePermanent},
		"wrong type of value": {wrongType, app.FailurePermanent},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, transport.Classify(fmt.Errorf("handle: %w", tc.err)), "%v", tc.err)
		})
	}
}
