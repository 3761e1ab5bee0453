//go:build !nonats

package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmjetstream "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/jetstream"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// What JetStream keeps, and how (see docs/reliability.md):
//
//   - A stream per namespace, "<ns>_messages", takes every topic of the
//     namespace as a subject of its own ("<ns>.events.UserRegistered").
//     Its retention is limits: a message stays natsRetention whoever has
//     acked it, as Pub/Sub and SQS keep theirs. Interest retention (a
//     message kept until every consumer acked it) loses messages on NATS
//     before 2.9.16: at a restart the server purges an interest stream up
//     to the ack floor of one consumer, whichever its map gives first, so
//     that another consumer's unacked messages are gone. A stream made
//     with it by an earlier version is kept, with a warning.
//   - A durable pull consumer per handler and topic,
//     "<ns>_<topic>_<handler>", filtered on the topic's subject, delivering
//     from its creation on: each handler gets every message of its topic
//     published since, and the replicas of a handler share its consumer. Explicit acks; no MaxDeliver, so that an
//     outage, however long, never drops a message (each redelivery costs a
//     pull and a few seconds of the handler's quick retries, then a nak);
//     MaxAckPending bounds the messages out at once.
//   - The poison queue is a stream of its own, "<ns>_poison", on the
//     subject "<ns>_poison" (outside "<ns>.>"), with limits retention and
//     no consumer: operators read and delete its messages by sequence.
//   - Each publish of the forwarder carries the topic and the message's
//     UUID as Nats-Msg-Id: a publish it retries (an ack lost, a crash
//     before the outbox row was marked) is stored once within the
//     duplicate window. A message published again for one handler (the
//     retry queue, a requeue) is a new delivery, and carries no
//     Nats-Msg-Id of the original's.
const (
	// natsDuplicateWindow is how long a stream remembers the message ids it
	// stored: longer than a restart of a crashed replica.
	natsDuplicateWindow = 10 * time.Minute
	// natsRetention is how long the messages stream keeps a message, acked
	// or not: a handler down longer loses what it had not acked.
	natsRetention = 7 * 24 * time.Hour
	// NATSAckWait is, by default, how long a delivered message may go
	// without an ack or a sign of progress before JetStream delivers it
	// again: the wait after a replica died holding it, as long as the
	// lease of the claim its handler may have taken (dedup.ClaimLease).
	// A handler at work signals progress every third of it (natsKeeper),
	// so a long run is not redelivered meanwhile.
	NATSAckWait = 30 * time.Second
	// natsMaxHandling bounds that: a message held longer (a handler hung)
	// is no longer kept alive, and JetStream delivers it again.
	natsMaxHandling = 5 * time.Minute
	// natsMaxAckPending bounds the messages of one handler delivered and
	// not acked, across replicas: each replica has HandlerConcurrency
	// pulls of one message each, so 64 serves 16 replicas.
	natsMaxAckPending = 64
	// natsNakDelay is the wait before a nacked message (an outage outlived
	// the handler's quick retries, or the service is stopping) comes again.
	natsNakDelay = time.Second
	// natsTimeout bounds connecting and each call of JetStream's API.
	natsTimeout = 5 * time.Second
)

// natsNames are the JetStream names of a namespace: its two streams, the
// subject of each topic and the durable consumer of each handler.
type natsNames struct{ namespace string }

func (n natsNames) messagesStream() string { return n.namespace + "_messages" }
func (n natsNames) poisonStream() string   { return n.namespace + "_poison" }

// poisonSubject lies outside the messages stream's "<ns>.>".
func (n natsNames) poisonSubject() string { return n.namespace + "_poison" }

// subject is the subject of a namespaced topic.
func (n natsNames) subject(topic string) string {
	if topic == NamespacedTopic(n.namespace, PoisonTopic) {
		return n.poisonSubject()
	}
	return topic
}

// stream is the stream that holds a namespaced topic.
func (n natsNames) stream(topic string) string {
	if topic == NamespacedTopic(n.namespace, PoisonTopic) {
		return n.poisonStream()
	}
	return n.messagesStream()
}

// consumer is the durable consumer of a group on a namespaced topic:
// "ns_events-UserRegistered_SendWelcomeEmailOnUserRegistered" (a name
// holds no dot).
func (n natsNames) consumer(group, topic string) string {
	topic = strings.TrimPrefix(topic, n.namespace+".")
	return n.namespace + "_" + strings.ReplaceAll(topic, ".", "-") + "_" + group
}

var (
	natsGroupForm = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	natsTopicForm = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
)

// checkNATSNames refuses a group or topic that cannot name a consumer or
// a subject.
func checkNATSNames(group, topic string) error {
	if !natsGroupForm.MatchString(group) {
		return fmt.Errorf("nats: consumer group %q: want letters, digits, - and _", group)
	}
	if !natsTopicForm.MatchString(topic) {
		return fmt.Errorf("nats: topic %q: want dot-separated letters, digits, - and _", topic)
	}
	return nil
}

// natsTransport is what the nats transport keeps beside the Transport:
// the publisher's connection, which also serves JetStream's API (streams,
// consumers, readiness, backlog), and how to open the subscribers' own.
type natsTransport struct {
	url     string
	names   natsNames
	ackWait time.Duration
	conn    *nats.Conn
	js      jetstream.JetStream
	logger  *slog.Logger
	wlogger watermill.LoggerAdapter
}

// checkNATSURL accepts nats://[user:pass@]host:port (or tls://), and
// never echoes the URL, which may hold a password.
func checkNATSURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" || u.Hostname() == "" {
		return errors.New("NATS_URL: want nats://[user:pass@]host:port")
	}
	return nil
}

func newNATSTransport(cfg Config, wlogger watermill.LoggerAdapter) (*Transport, error) {
	if err := checkNATSURL(cfg.NATSURL); err != nil {
		return nil, err
	}
	nt := &natsTransport{
		url: cfg.NATSURL, names: natsNames{cfg.Namespace}, ackWait: cfg.NATSAckWait,
		logger: cfg.Logger, wlogger: wlogger,
	}
	if nt.ackWait == 0 {
		nt.ackWait = NATSAckWait
	}
	conn, err := nt.connect("publisher", nil)
	if err != nil {
		return nil, fmt.Errorf("NATS (NATS_URL): %w", err)
	}
	nt.conn = conn
	if nt.js, err = jetstream.New(conn); err == nil {
		err = nt.ensureStreams()
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("NATS (NATS_URL): %w", err)
	}
	publisher, err := wmnats.NewPublisherWithNatsConn(conn, wmnats.PublisherPublishConfig{
		Marshaler:         natsMarshaler{names: nt.names},
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		JetStream: wmnats.JetStreamConfig{
			// Publish waits for the stream's ack, this long at most.
			ConnectOptions: []nats.JSOpt{nats.MaxWait(natsTimeout)},
		},
	}, wlogger)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &Transport{
		Publisher:     natsPublisher{publisher},
		concurrency:   HandlerConcurrency,
		newSubscriber: nt.newSubscriber,
		ready:         nt.ready,
		close:         publisher.Close, // and its connection
		nats:          nt,
	}, nil
}

// natsPublisher leaves the connection open at Close: it serves the
// subscribers' JetStream calls too, until the transport closes.
type natsPublisher struct{ message.Publisher }

func (natsPublisher) Close() error { return nil }

// connect opens a connection that reconnects for ever once made, but
// fails at once when the server cannot be reached now. closed, if not
// nil, is closed once the connection is.
func (t *natsTransport) connect(role string, closed chan<- struct{}) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("onboard " + t.names.namespace + " " + role),
		nats.Timeout(natsTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DrainTimeout(2 * natsTimeout),
	}
	if role == "publisher" { // one line per outage, not one per connection
		opts = append(opts,
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if err != nil {
					t.logger.Warn("NATS connection lost; reconnecting", "error", err)
				}
			}),
			nats.ReconnectHandler(func(*nats.Conn) { t.logger.Info("NATS connection back") }))
	}
	if closed != nil {
		opts = append(opts, nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	}
	return nats.Connect(t.url, opts...)
}

// ensureStreams creates the namespace's streams when missing. A stream
// that exists is left as it is (an operator may have raised its replicas
// or limits), but for its retention and subjects, which must be ours.
func (t *natsTransport) ensureStreams() error {
	ctx, cancel := context.WithTimeout(context.Background(), natsTimeout)
	defer cancel()
	if _, err := t.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("JetStream: %w", err)
	}
	for _, cfg := range []jetstream.StreamConfig{
		{
			Name:        t.names.messagesStream(),
			Description: "onboard: the messages of namespace " + t.names.namespace + ", a subject per topic",
			Subjects:    []string{t.names.namespace + ".>"},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      natsRetention,
			Storage:     jetstream.FileStorage,
			Duplicates:  natsDuplicateWindow,
		},
		{
			Name:        t.names.poisonStream(),
			Description: "onboard: the poison queue of namespace " + t.names.namespace,
			Subjects:    []string{t.names.poisonSubject()},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Duplicates:  natsDuplicateWindow,
		},
	} {
		if err := t.ensureStream(ctx, cfg); err != nil {
			return err
		}
	}
	return nil
}

func (t *natsTransport) ensureStream(ctx context.Context, want jetstream.StreamConfig) error {
	stream, err := t.js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		// Another replica creating it at once is fine: the same config.
		_, err = t.js.CreateStream(ctx, want)
		if err != nil {
			return fmt.Errorf("create stream %s: %w", want.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", want.Name, err)
	}
	got := stream.CachedInfo().Config
	if got.Retention == jetstream.InterestPolicy && want.Name == t.names.messagesStream() &&
		len(got.Subjects) == 1 && got.Subjects[0] == want.Subjects[0] {
		t.logger.Warn("NATS stream keeps messages by interest, which NATS before 2.9.16 loses at a restart: "+
			"while the service is stopped and its handlers' backlogs are empty, delete the stream to have it made "+
			"anew with limits retention (docs/operations.md)", "stream", want.Name)
		return nil
	}
	if got.Retention != want.Retention || len(got.Subjects) != 1 || got.Subjects[0] != want.Subjects[0] {
		return fmt.Errorf("stream %s exists with retention %s and subjects %v, want %s and %v",
			want.Name, got.Retention, got.Subjects, want.Retention, want.Subjects)
	}
	return nil
}

// ensureConsumer creates or updates the durable consumer of a group on a
// namespaced topic.
func (t *natsTransport) ensureConsumer(ctx context.Context, js jetstream.JetStream, group, topic string) (jetstream.Consumer, error) {
	if err := checkNATSNames(group, topic); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, natsTimeout)
	defer cancel()
	name, stream := t.names.consumer(group, topic), t.names.stream(topic)
	info, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", name, err)
	}
	config := jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "onboard: " + group + " on " + topic,
		FilterSubject: t.names.subject(topic),
		// From the stream's next message on, as a new RabbitMQ queue or
		// SQL consumer group gets what is published after it (by sequence,
		// not by time: no clock skew skips a message): a handler added
		// later does not act on the week of messages the stream keeps. A
		// consumer whose state the server lost (NATS killed before writing
		// it) starts again from there: the messages since are delivered
		// again, and the claims keep their effects once.
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   info.CachedInfo().State.LastSeq + 1,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       t.ackWait,
		MaxDeliver:    -1,
		MaxAckPending: natsMaxAckPending,
	}
	for attempt := 0; ; attempt++ {
		// A consumer's deliver policy cannot change: one that exists (made
		// by another replica, or an earlier version) keeps its own.
		if existing, err := js.Consumer(ctx, stream, name); err == nil {
			kept := existing.CachedInfo().Config
			if kept.DeliverPolicy != jetstream.DeliverAllPolicy && kept.DeliverPolicy != jetstream.DeliverByStartSequencePolicy {
				t.logger.Warn("NATS consumer delivers from its next message: a NATS crash that loses its state skips "+
					"what it had not acked; delete it while its handler is idle to have it made anew",
					"consumer", name, "deliver_policy", kept.DeliverPolicy.String())
			}
			config.DeliverPolicy, config.OptStartSeq, config.OptStartTime =
				kept.DeliverPolicy, kept.OptStartSeq, kept.OptStartTime
		}
		consumer, err := js.CreateOrUpdateConsumer(ctx, stream, config)
		if err == nil {
			return consumer, nil
		}
		if attempt == 1 || ctx.Err() != nil { // another replica made it meanwhile: once more, with its start
			return nil, fmt.Errorf("consumer %s: %w", name, err)
		}
	}
}

// consumer is the durable consumer of a group on a namespaced topic,
// made if missing; SubscribeInitialize has made or updated it already,
// and an update writes to the server's disk.
func (t *natsTransport) consumer(ctx context.Context, js jetstream.JetStream, group, topic string) (jetstream.Consumer, error) {
	if err := checkNATSNames(group, topic); err != nil {
		return nil, err
	}
	lookup, cancel := context.WithTimeout(ctx, natsTimeout)
	defer cancel()
	consumer, err := js.Consumer(lookup, t.names.stream(topic), t.names.consumer(group, topic))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return t.ensureConsumer(ctx, js, group, topic)
	}
	return consumer, err
}

// ready checks the connection, and that JetStream answers on it.
func (t *natsTransport) ready(ctx context.Context) error {
	if !t.conn.IsConnected() {
		return errors.New("NATS connection is down")
	}
	if _, err := t.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("NATS JetStream: %w", err)
	}
	return nil
}

// natsMarshaler is watermill-nats' header marshaler (metadata as headers)
// on the namespace's subjects, with the subject and the message's UUID as
// Nats-Msg-Id, unless the message goes to one handler again
// (ForHandlerKey).
type natsMarshaler struct{ names natsNames }

func (m natsMarshaler) Marshal(topic string, msg *message.Message) (*nats.Msg, error) {
	out, err := (&wmnats.NATSMarshaler{}).Marshal(m.names.subject(topic), msg)
	if err != nil {
		return nil, err
	}
	if msg.UUID != "" && msg.Metadata.Get(ForHandlerKey) == "" {
		// The stream dedups across its subjects: the id is the topic's.
		out.Header.Set(nats.MsgIdHdr, out.Subject+":"+msg.UUID)
	}
	return out, nil
}

// natsMessage is the Watermill message of a stored NATS message. A header
// given twice (never by this transport) keeps its first value: the
// handler then refuses the message, rather than the subscriber fail on it.
func natsMessage(header nats.Header, data []byte) *message.Message {
	unmarshaler := &wmnats.NATSMarshaler{}
	msg, err := unmarshaler.Unmarshal(&nats.Msg{Header: header, Data: data})
	if err == nil {
		return msg
	}
	single := nats.Header{}
	for k, v := range header {
		single[k] = v[:1]
	}
	msg, _ = unmarshaler.Unmarshal(&nats.Msg{Header: single, Data: data})
	return msg
}

// natsTransient reports whether err is NATS unreachable, reconnecting,
// timing out or closing, or JetStream not answering: an outage.
func natsTransient(err error) bool {
	for _, target := range []error{
		nats.ErrTimeout, nats.ErrConnectionClosed, nats.ErrConnectionDraining, nats.ErrConnectionReconnecting,
		nats.ErrNoServers, nats.ErrNoResponders, nats.ErrDisconnected,
		jetstream.ErrNoStreamResponse, jetstream.ErrJetStreamNotEnabled, nats.ErrJetStreamNotEnabled,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

func (t *natsTransport) newSubscriber(group, topic string) (message.Subscriber, error) {
	if err := checkNATSNames(group, topic); err != nil {
		return nil, err
	}
	return &natsSubscriber{t: t, group: group, closing: make(chan struct{})}, nil
}

// natsSubscriber is one of a handler's HandlerConcurrency subscribers.
// Each Subscribe is a session (natsSession) on the handler's durable
// consumer, pulling one message at a time, and a new one whenever NATS
// stops delivering to the last.
type natsSubscriber struct {
	t         *natsTransport
	group     string
	mu        sync.Mutex
	closed    bool
	closing   chan struct{}
	closeOnce sync.Once
	running   sync.WaitGroup
}

// SubscribeInitialize creates the handler's durable consumer, so that
// every message published from now on waits for it.
func (s *natsSubscriber) SubscribeInitialize(topic string) error {
	_, err := s.t.ensureConsumer(context.Background(), s.t.js, s.group, topic)
	return err
}

func (s *natsSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("nats: subscriber closed")
	}
	values := context.WithoutCancel(ctx)
	session, err := s.open(values, topic)
	if err != nil {
		return nil, err
	}
	out, stopping := make(chan *message.Message), make(chan struct{})
	s.running.Go(func() {
		defer close(out)
		for {
			select {
			case msg, ok := <-session.messages: // open until session.end
				if !ok {
					session.lostOnce.Do(func() { close(session.lost) })
					continue
				}
				select {
				case out <- msg:
				case <-stopping:
					msg.Nack() // redelivered to a subscription that goes on
				}
			case <-session.lost:
				session.end()
				if session = s.reopen(values, topic, stopping); session == nil {
					return
				}
			case <-stopping:
				session.end()
				return
			}
		}
	})
	s.running.Go(func() {
		select {
		case <-ctx.Done():
		case <-s.closing:
		}
		close(stopping)
	})
	return out, nil
}

// reopen subscribes again, every natsNakDelay until it can or stopping is
// closed (then nil).
func (s *natsSubscriber) reopen(values context.Context, topic string, stopping <-chan struct{}) *natsSession {
	s.t.logger.Warn("NATS stopped delivering to a subscription; subscribing again", "handler", s.group)
	for {
		select {
		case <-stopping:
			return nil
		case <-time.After(natsNakDelay):
		}
		session, err := s.open(values, topic)
		if err == nil {
			return session
		}
		s.t.logger.Warn("NATS subscription", "handler", s.group, "error", err)
	}
}

// natsSession is one watermill-nats JetStream subscription, on a
// connection of its own (watermill-nats drains the connection when its
// subscriber closes).
type natsSession struct {
	conn       *nats.Conn
	connClosed chan struct{}
	keeper     *natsKeeper
	sub        *wmjetstream.Subscriber
	messages   <-chan *message.Message
	// lost is closed when nats.go stopped pulling for good: it does on
	// "409 Consumer Deleted" and "400 Bad Request".
	lost     chan struct{}
	lostOnce sync.Once
}

// open subscribes on a connection of its own; values is the caller's
// context, whose cancellation does not end the subscription: end does.
func (s *natsSubscriber) open(values context.Context, topic string) (*natsSession, error) {
	se := &natsSession{connClosed: make(chan struct{}), lost: make(chan struct{})}
	conn, err := s.t.connect("subscriber "+s.group, se.connClosed)
	if err != nil {
		return nil, fmt.Errorf("NATS (NATS_URL): %w", err)
	}
	se.conn = conn
	se.keeper = &natsKeeper{every: s.t.ackWait / 3, done: make(chan struct{})}
	sub, err := wmjetstream.NewSubscriber(wmjetstream.SubscriberConfig{
		Conn:   conn,
		Logger: s.t.wlogger,
		// How long watermill-nats waits for the handler's ack; the keeper
		// stops signalling progress then too.
		AckWaitTimeout: natsMaxHandling,
		ResourceInitializer: func(ctx context.Context, js jetstream.JetStream, topic string) (
			jetstream.Consumer, func(context.Context, watermill.LoggerAdapter), error) {
			consumer, err := s.t.consumer(ctx, js, s.group, topic)
			return consumer, nil, err // nil: the durable consumer outlives the subscription
		},
		NakDelay: wmjetstream.NewStaticDelay(natsNakDelay),
		ConsumeOptions: []jetstream.PullConsumeOpt{
			// One message at a time, pulled once the last one is done:
			// none waits here unseen, its AckWait running.
			jetstream.PullMaxMessages(1),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				level := slog.LevelDebug // missed heartbeats through an outage
				if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
					errors.Is(err, jetstream.ErrBadRequest) {
					level = slog.LevelError
					se.lostOnce.Do(func() { close(se.lost) })
				}
				s.t.logger.Log(context.Background(), level, "NATS subscription", "handler", s.group, "error", err)
			}),
		},
		Unmarshaler: se.keeper,
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	se.sub = sub
	if se.messages, err = sub.Subscribe(values, topic); err != nil {
		conn.Close()
		_ = sub.Close()
		return nil, err
	}
	return se, nil
}

// end nacks what the session holds and what it still delivers, and
// returns once its connection is closed. watermill-nats closes its channel
// at Close while a delivery may still be sending to it (a data race:
// watermill-nats pull request 18), so every delivery ends first: the
// connection's drain returns once each delivery's callback did.
func (se *natsSession) end() {
	nacked := make(chan struct{})
	go func() {
		defer close(nacked)
		for msg := range se.messages { // closed by se.sub.Close below
			msg.Nack()
		}
	}()
	se.keeper.close()
	if err := se.conn.Drain(); err == nil {
		<-se.connClosed
	}
	se.conn.Close()
	_ = se.sub.Close() // now only closes its channel: its connection is closed already
	<-nacked
}

// Close ends every subscription and returns once their connections are closed.
func (s *natsSubscriber) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.closing)
	})
	s.running.Wait()
	return nil
}

// natsKeeper makes the Watermill message of each delivery of a
// subscription, and keeps the delivery alive until the message is acked or
// nacked: a progress signal every third of AckWait, so that a handler
// running long (an SMTP server slow to answer) is not raced by a
// redelivery, for natsMaxHandling at most. When the subscription ends, it
// nacks what is neither: redelivered within natsNakDelay to another
// subscription, not after AckWait.
type natsKeeper struct {
	every    time.Duration
	mu       sync.Mutex
	closed   bool
	done     chan struct{}
	watching sync.WaitGroup
}

func (k *natsKeeper) Unmarshal(delivery jetstream.Msg) (*message.Message, error) {
	msg := natsMessage(delivery.Headers(), delivery.Data())
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		msg.Nack()
		return msg, nil
	}
	k.watching.Go(func() { k.watch(delivery, msg) })
	return msg, nil
}

func (k *natsKeeper) watch(delivery jetstream.Msg, msg *message.Message) {
	progress := time.NewTicker(k.every)
	defer progress.Stop()
	giveUp := time.NewTimer(natsMaxHandling)
	defer giveUp.Stop()
	for {
		select {
		case <-msg.Acked():
			return
		case <-msg.Nacked():
			return
		case <-giveUp.C:
			return
		case <-k.done:
			msg.Nack() // does nothing to a message acked already
			return
		case <-progress.C:
			_ = delivery.InProgress()
		}
	}
}

// close nacks what the subscription still holds, and returns once done.
func (k *natsKeeper) close() {
	k.mu.Lock()
	if !k.closed {
		k.closed = true
		close(k.done)
	}
	k.mu.Unlock()
	k.watching.Wait()
}
