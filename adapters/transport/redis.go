//go:build !noredis

package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// redisTimings are the redis transport's waits and periods.
type redisTimings struct {
	// claimIdle is how long a message stays unacked with a consumer before
	// another consumer of its group takes it over, the first being taken
	// for dead. A live consumer never lets the messages it holds get that
	// idle: it touches them every tend, however long its handler keeps one
	// (a delivery's quick retries take about 5 s, an outage holds a message
	// for as long as it lasts). So the idle time only decides how soon the
	// messages of a process that died are handled elsewhere: after three
	// missed touches, never because a handler is slow.
	claimIdle time.Duration
	// claimInterval is how often a consumer looks for such messages.
	claimInterval time.Duration
	// tend is how often a consumer touches the messages it holds, and
	// checks that its group is still there.
	tend time.Duration
	// trim is how often the streams lose what every group acked.
	trim time.Duration
}

func defaultRedisTimings() redisTimings {
	return redisTimings{claimIdle: 30 * time.Second, claimInterval: 5 * time.Second, tend: 10 * time.Second,
		trim: 30 * time.Second}
}

const (
	// redisBlock bounds one read's wait for new messages: an idle consumer
	// asks again this often. A message that arrives meanwhile is read at once.
	redisBlock = 2 * time.Second
	// redisTimeout bounds the connection at start and each short command of
	// the transport's own (trimming, touching, reading the backlog).
	redisTimeout = 5 * time.Second
	// redisErrorQuiet: a library error repeated within this long is logged
	// at DEBUG, so that an outage is one ERROR line a minute, not one per
	// consumer every half second.
	redisErrorQuiet = time.Minute
)

// redisBroker is what the redis transport's parts share.
type redisBroker struct {
	// options are REDIS_URL's, for the subscribers' own clients.
	options *redis.Options
	// client publishes, answers readiness, trims and reads the backlog.
	client *redis.Client
	logger *slog.Logger
	// wlogger takes the library's lines, through redisLogs with libLogs.
	wlogger watermill.LoggerAdapter
	libLogs *errorQuiet
	// host names the consumers of this process, for operators.
	host    string
	timings redisTimings

	mu      sync.Mutex
	streams map[string]bool // the streams read here, which the trimmer trims

	stopTrimmer context.CancelFunc
	trimmerDone chan struct{}
}

// parseRedisURL reads REDIS_URL; its errors never echo it (it may hold a
// password).
func parseRedisURL(rawURL string) (*redis.Options, error) {
	const want = "REDIS_URL: want redis://[[user]:password@]host:port[/db], or rediss:// for TLS"
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return nil, errors.New(want)
	}
	options, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, errors.New(want)
	}
	return options, nil
}

// newRedisTransportOf is the redis transport cfg names, with the timings
// a test gave (Config.redisTimings) or the defaults.
func newRedisTransportOf(cfg Config, wlogger watermill.LoggerAdapter) (*Transport, error) {
	timings := defaultRedisTimings()
	if cfg.redisTimings != nil {
		timings = *cfg.redisTimings
	}
	return newRedisTransport(cfg.RedisURL, cfg.Namespace, timings, cfg.Logger, wlogger)
}

func newRedisTransport(rawURL, namespace string, timings redisTimings, logger *slog.Logger,
	wlogger watermill.LoggerAdapter,
) (*Transport, error) {
	options, err := parseRedisURL(rawURL)
	if err != nil {
		return nil, err
	}
	options.DialTimeout = redisTimeout
	// Every connection, the subscribers' too, is named for the namespace:
	// CLIENT LIST tells a teardown whether a service of it runs.
	options.ClientName = redisClientName(options, namespace)
	client := redis.NewClient(options)
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("redis server (REDIS_URL): %w", err)
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "onboard"
	}
	b := &redisBroker{
		options: options, client: client, logger: logger, wlogger: wlogger, libLogs: &errorQuiet{}, host: host,
		timings: timings, streams: map[string]bool{}, trimmerDone: make(chan struct{}),
	}
	// No MAXLEN: trimming by length would drop what a slow group has not
	// read yet. The trimmer removes only what every group acked.
	publisher, err := redisstream.NewPublisher(redisstream.PublisherConfig{Client: unclosedClient{client}},
		redisLogs{LoggerAdapter: wlogger, quiet: b.libLogs})
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	trimCtx, stopTrimmer := context.WithCancel(context.Background())
	b.stopTrimmer = stopTrimmer
	go b.runTrimmer(trimCtx)
	return &Transport{
		Publisher:   publisher,
		concurrency: HandlerConcurrency,
		newSubscriber: func(group, _ string) (message.Subscriber, error) {
			return b.newSubscriber(group)
		},
		ready: func(ctx context.Context) error { return client.Ping(ctx).Err() },
		close: func() error {
			b.stopTrimmer()
			<-b.trimmerDone
			return errors.Join(publisher.Close(), client.Close())
		},
		redis: b,
	}, nil
}

// unclosedClient leaves the client open when the library's publisher or
// subscriber closes it: its owner closes it, once done with it.
type unclosedClient struct{ *redis.Client }

func (unclosedClient) Close() error { return nil }

// track adds a stream to those the trimmer trims.
func (b *redisBroker) track(stream string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.streams[stream] = true
}

func (b *redisBroker) tracked() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	streams := make([]string, 0, len(b.streams))
	for s := range b.streams {
		streams = append(streams, s)
	}
	sort.Strings(streams)
	return streams
}

// redisSubscriber is one consumer of a group, with a client of its own (a
// read blocks its connection). Besides the library's subscriber, it keeps
// the messages it holds from looking abandoned, recreates its group if
// Redis lost it, and hands its messages back to the group when it closes.
type redisSubscriber struct {
	broker          *redisBroker
	group, consumer string
	client          *redis.Client
	gate            *readGate
	held            *heldEntries
	sub             *redisstream.Subscriber
	// closed is set as Close begins: the library's errors after it (a read
	// cut short by the closing client) are logged at DEBUG.
	closed  *atomic.Bool
	logs    redisLogs
	closing chan struct{}
	tending sync.WaitGroup

	mu      sync.Mutex
	streams map[string]bool // subscribed to
	once    sync.Once
	err     error
}

func (b *redisBroker) newSubscriber(group string) (*redisSubscriber, error) {
	options := *b.options // a client sets its options' defaults: each its own
	s := &redisSubscriber{
		broker: b, group: group, consumer: b.host + "-" + watermill.NewShortUUID(),
		client: redis.NewClient(&options), gate: &readGate{}, held: &heldEntries{}, closed: &atomic.Bool{},
		closing: make(chan struct{}), streams: map[string]bool{},
	}
	s.client.AddHook(s.gate)
	s.client.AddHook(s.held)
	s.logs = redisLogs{LoggerAdapter: b.wlogger, quiet: b.libLogs, closed: s.closed}
	sub, err := redisstream.NewSubscriber(redisstream.SubscriberConfig{
		Client:        unclosedClient{s.client},
		Unmarshaller:  redisUnmarshaller{},
		Consumer:      s.consumer,
		ConsumerGroup: group,
		BlockTime:     redisBlock,
		ClaimInterval: b.timings.claimInterval,
		MaxIdleTime:   b.timings.claimIdle,
		// A group missing at Subscribe (lost with Redis's data) reads what
		// the stream holds; SubscribeInitialize makes it first, at the end.
		OldestId: "0",
		// The consumers of stopped processes, once idle and empty.
		ConsumerTimeout: 10 * time.Minute,
		// Once closing, or the subscription's context done, a read that
		// fails is the end.
		ShouldStopOnReadErrors: func(err error) bool {
			return s.closed.Load() || errors.Is(err, context.Canceled)
		},
		DisableIndefiniteInitialBlock: true, // or a close would wait for a message
	}, s.logs)
	if err != nil {
		_ = s.client.Close()
		return nil, err
	}
	s.sub = sub
	return s, nil
}

// SubscribeInitialize creates the group at the stream's end, and the stream
// if need be: it gets every message published from now on.
func (s *redisSubscriber) SubscribeInitialize(stream string) error {
	s.broker.track(stream)
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	return s.createGroup(ctx, stream, "$")
}

func (s *redisSubscriber) createGroup(ctx context.Context, stream, start string) error {
	err := s.client.XGroupCreateMkStream(ctx, stream, s.group, start).Err()
	if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		return fmt.Errorf("create consumer group %s on %s: %w", s.group, stream, err)
	}
	return nil
}

func (s *redisSubscriber) Subscribe(ctx context.Context, stream string) (<-chan *message.Message, error) {
	s.broker.track(stream)
	// Under mu, so that Close does not begin to wait for the tending while
	// a subscription adds to it.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil, errors.New("redis subscriber closed")
	}
	messages, err := s.sub.Subscribe(ctx, stream)
	if err != nil {
		return nil, err
	}
	s.streams[stream] = true
	s.tending.Go(func() { s.tend(ctx, stream) })
	return messages, nil
}

// tend touches the messages this consumer holds every timings.tend,
// so that no other consumer claims them while their handler still works
// on them, and recreates the group if it is gone. When the subscription's
// context ends, it hands them back, as Close does. Only the entries this
// consumer did receive are touched: one Redis counts as delivered to it
// whose answer was lost with the connection goes idle, and is claimed.
func (s *redisSubscriber) tend(ctx context.Context, stream string) {
	ticker := time.NewTicker(s.broker.timings.tend)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := s.handBack(stream); err != nil {
				s.logs.Error("hand back held messages", err, watermill.LogFields{"stream": stream, "group": s.group})
			}
			return
		case <-s.closing:
			return
		case <-ticker.C:
		}
		touchCtx, cancel := context.WithTimeout(ctx, redisTimeout)
		err := s.touch(touchCtx, stream, 0, s.held.has)
		if redis.HasErrorPrefix(err, "NOGROUP") {
			// Redis lost its data (restarted without persistence): what was
			// published since is read from the stream's start.
			if err = s.createGroup(touchCtx, stream, "0"); err == nil {
				s.broker.logger.Warn("redis transport: a consumer group was gone and is created again; "+
					"messages published before it was lost are lost (does Redis keep an append-only file?)",
					"stream", stream, "group", s.group)
			}
		}
		cancel()
		if err != nil {
			s.logs.Error("touch held messages", err, watermill.LogFields{"stream": stream, "group": s.group})
		}
	}
}

// touch resets to idle the idle time of the messages of stream that Redis
// counts as delivered to this consumer, those of them that pick tells.
func (s *redisSubscriber) touch(ctx context.Context, stream string, idle time.Duration,
	pick func(stream, id string) bool) error {
	pending, err := s.client.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: stream, Group: s.group, Start: "-", End: "+", Count: 1000, Consumer: s.consumer,
	}).Result()
	if err != nil {
		return err
	}
	args := []any{"XCLAIM", stream, s.group, s.consumer, 0}
	for _, p := range pending {
		if pick(stream, p.ID) {
			args = append(args, p.ID)
		}
	}
	if len(args) == 5 {
		return nil
	}
	if idle > 0 {
		args = append(args, "IDLE", idle.Milliseconds())
	}
	return s.client.Do(ctx, append(args, "JUSTID")...).Err()
}

// handBack makes the messages this consumer holds on stream look
// abandoned: another consumer of the group claims them within
// timings.claimInterval, not claimIdle. This consumer may read again.
func (s *redisSubscriber) handBack(stream string) error {
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	defer s.gate.free(stream)
	defer s.held.forget(stream)
	every := func(string, string) bool { return true }
	if err := s.touch(ctx, stream, s.broker.timings.claimIdle, every); err != nil {
		return fmt.Errorf("hand back the messages held on %s: %w", stream, err)
	}
	return nil
}

// Close stops the subscriptions and hands the messages this consumer still
// holds back to its group.
func (s *redisSubscriber) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed.Store(true)
		s.mu.Unlock()
		close(s.closing)
		s.tending.Wait()
		err := s.sub.Close()
		s.mu.Lock()
		for stream := range s.streams {
			err = errors.Join(err, s.handBack(stream))
		}
		s.mu.Unlock()
		s.err = errors.Join(err, s.client.Close())
	})
	return s.err
}

// UnreadableKey is the metadata key of an entry of a stream that is not a
// message: its error. Such a message fails its handler for good and is
// poisoned, instead of ending the subscription as the library would.
const UnreadableKey = "onboard_unreadable"

type redisUnmarshaller struct {
	redisstream.DefaultMarshallerUnmarshaller
}

func (u redisUnmarshaller) Unmarshal(values map[string]any) (*message.Message, error) {
	msg, err := u.DefaultMarshallerUnmarshaller.Unmarshal(values)
	if err == nil {
		return msg, nil
	}
	id, _ := values[redisstream.UUIDHeaderKey].(string)
	if id == "" {
		id = uuid.NewString()
	}
	payload, _ := values["payload"].(string)
	msg = message.NewMessage(id, []byte(payload))
	msg.Metadata.Set(UnreadableKey, err.Error())
	return msg, nil
}

// redisLogs passes the library's lines on, with its errors at DEBUG once
// its subscriber closes, when they only say that a subscription's context
// ended, or when the same error was logged within redisErrorQuiet.
type redisLogs struct {
	watermill.LoggerAdapter
	quiet  *errorQuiet
	closed *atomic.Bool // nil: never
}

func (l redisLogs) Error(msg string, err error, fields watermill.LogFields) {
	if (l.closed != nil && l.closed.Load()) || errors.Is(err, context.Canceled) || !l.quiet.allow(msg) {
		l.Debug(msg, fields.Add(watermill.LogFields{"error": err}))
		return
	}
	l.LoggerAdapter.Error(msg, err, fields)
}

func (l redisLogs) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return redisLogs{LoggerAdapter: l.LoggerAdapter.With(fields), quiet: l.quiet, closed: l.closed}
}

// errorQuiet allows an error message once per redisErrorQuiet.
type errorQuiet struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (q *errorQuiet) allow(msg string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.last == nil {
		q.last = map[string]time.Time{}
	}
	now := time.Now()
	if last, ok := q.last[msg]; ok && now.Sub(last) < redisErrorQuiet {
		return false
	}
	q.last[msg] = now
	return true
}

// readGate lets a consumer read a new message from a stream only once it
// has acked the last one it read, as RabbitMQ's prefetch of one does on
// amqp. The library would read ahead: two more messages, waiting behind
// the one a handler works on, which the group's idle consumers could
// have taken. It is a hook on the consumer's client: a read (XREADGROUP
// of new messages) takes the stream's slot, and gives it back if it read
// nothing; an XACK gives it back.
type readGate struct {
	mu    sync.Mutex
	slots map[string]chan struct{} // by stream
}

func (g *readGate) slot(stream string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.slots == nil {
		g.slots = map[string]chan struct{}{}
	}
	if g.slots[stream] == nil {
		g.slots[stream] = make(chan struct{}, 1)
	}
	return g.slots[stream]
}

func (g *readGate) free(stream string) {
	select {
	case <-g.slot(stream):
	default: // already free: the ack of a message claimed, not read
	}
}

func (g *readGate) DialHook(next redis.DialHook) redis.DialHook { return next }

func (g *readGate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (g *readGate) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		switch cmd.Name() {
		case "xreadgroup":
			stream := readStream(args)
			if stream == "" {
				return next(ctx, cmd)
			}
			select {
			case g.slot(stream) <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			err := next(ctx, cmd)
			if read, ok := cmd.(*redis.XStreamSliceCmd); !ok || err != nil || len(read.Val()) == 0 ||
				len(read.Val()[0].Messages) == 0 {
				g.free(stream)
			}
			return err
		case "xack":
			err := next(ctx, cmd)
			if stream, ok := args[1].(string); ok && err == nil {
				g.free(stream)
			}
			return err
		}
		return next(ctx, cmd)
	}
}

// heldEntries are the entries of each stream that this consumer received,
// by a read or a claim, and has not acked: those its handlers hold or are
// about to be given. It is a hook on the consumer's client, as readGate
// is. An entry that Redis counts as delivered to this consumer but whose
// answer never arrived (the connection cut meanwhile) is not among them.
type heldEntries struct {
	mu  sync.Mutex
	ids map[string]map[string]bool // by stream
}

func (h *heldEntries) add(stream string, messages []redis.XMessage) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ids == nil {
		h.ids = map[string]map[string]bool{}
	}
	if h.ids[stream] == nil {
		h.ids[stream] = map[string]bool{}
	}
	for _, m := range messages {
		h.ids[stream][m.ID] = true
	}
}

func (h *heldEntries) remove(stream string, ids []any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		if id, ok := id.(string); ok {
			delete(h.ids[stream], id)
		}
	}
}

func (h *heldEntries) has(stream, id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ids[stream][id]
}

// forget drops the stream's entries: they were handed back.
func (h *heldEntries) forget(stream string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.ids, stream)
}

func (h *heldEntries) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *heldEntries) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *heldEntries) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil {
			return err
		}
		args := cmd.Args()
		switch c := cmd.(type) {
		case *redis.XStreamSliceCmd: // XREADGROUP
			for _, read := range c.Val() {
				h.add(read.Stream, read.Messages)
			}
		case *redis.XMessageSliceCmd: // the library's XCLAIM
			if stream, ok := args[1].(string); ok && cmd.Name() == "xclaim" {
				h.add(stream, c.Val())
			}
		case *redis.IntCmd:
			if stream, ok := args[1].(string); ok && cmd.Name() == "xack" && len(args) > 3 {
				h.remove(stream, args[3:])
			}
		}
		return nil
	}
}

// readStream is the stream of an XREADGROUP of new messages (id ">"), or "".
func readStream(args []any) string {
	for i, arg := range args {
		if s, ok := arg.(string); ok && strings.EqualFold(s, "streams") && i+2 < len(args) && args[i+2] == ">" {
			stream, _ := args[i+1].(string)
			return stream
		}
	}
	return ""
}

// redisTransient tells an error of a Redis server that is down, starting,
// full, failing over or out of connections from a refusal of the command
// itself. A connection that cannot be made or breaks is a net.Error or
// io.EOF, which sqldb.Transient knows already.
func redisTransient(err error) bool {
	if errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrPoolExhausted) {
		return true
	}
	for _, prefix := range []string{"LOADING ", "BUSY ", "READONLY ", "MASTERDOWN ", "CLUSTERDOWN ", "TRYAGAIN ",
		"NOREPLICAS ", "OOM ", "max number of clients reached"} {
		if redis.HasErrorPrefix(err, prefix) {
			return true
		}
	}
	return false
}
