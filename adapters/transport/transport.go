package transport

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/adapters/watermillsql"
)

// Transport names accepted by PUBSUB.
const (
	KindGoChannel = "gochannel"
	KindSQL       = "sql"
	KindAMQP      = "amqp"
	// KindNATS is NATS JetStream.
	KindNATS = "nats"
	// KindRedis is Redis Streams: a stream per topic, and on it a consumer
	// group per handler, named for the handler.
	KindRedis = "redis"
	// KindGoogleCloud is Google Cloud Pub/Sub.
	KindGoogleCloud = "googlecloud"
	// KindSQS is Amazon SNS with SQS.
	KindSQS = "sqs"
)

// DefaultRedisURL is REDIS_URL's default.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

// Kinds are the transports PUBSUB names.
var Kinds = []string{KindGoChannel, KindSQL, KindAMQP, KindNATS, KindRedis, KindGoogleCloud,
	KindSQS}

// HandlerConcurrency is how many messages each handler works on at once on
// the PostgreSQL/MySQL SQL transport (each subscription locks its own rows),
// on RabbitMQ (each is a consumer of the handler's queue) and on Redis
// (each is a consumer of the handler's group). Order between
// a handler's messages is not kept; the events of different users are
// independent.
const HandlerConcurrency = 4

// Transport is the pub/sub that carries events and commands between the
// forwarder and the handlers. Each handler subscribes with its own name as
// consumer group (SQL) or queue (AMQP), so each gets every message once.
// Topics are given without the namespace, which the transport adds.
type Transport struct {
	// Publisher publishes to the namespaced topic.
	Publisher     message.Publisher
	namespace     string
	newSubscriber func(group, topic string) (message.Subscriber, error)
	// concurrency is how many messages of one consumer group a subscriber
	// has in flight at once; the router handles each in its own goroutine.
	concurrency int
	ready       func(ctx context.Context) error
	close       func() error
	closeOnce   sync.Once
	closeErr    error

	// kind is PUBSUB's name of the transport; amqpConn its connection on
	// amqp, where the backlog reads the queues' depths, and amqpPublisher
	// its publisher; nats what it keeps on nats.
	kind          string
	amqpConn      *wamqp.ConnectionWrapper
	amqpPublisher *confirmingPublisher
	nats          *natsTransport
	// held are the messages this process's handlers are working on.
	held held
	// db is the sql transport's database, whose transactions may publish
	// (TxPublisher); nil on the others.
	db     *sql.DB
	logger watermill.LoggerAdapter
	// explain adds what to do to the transport's refusal of a topic's
	// storage, when it knows; nil: nothing.
	explain func(error) error
	// redis is the redis transport's broker, nil on the others;
	// googleCloud the googlecloud transport's client.
	redis       *redisBroker
	googleCloud *googleCloudTransport
	sqs         *sqsTransport
}

// Config configures NewTransport.
type Config struct {
	// Kind is the transport, as PUBSUB names it: one of Kinds.
	Kind string
	// DB carries the sql transport; AMQPURL is the amqp one's broker,
	// NATSURL the nats one's server (with JetStream).
	DB      *sql.DB
	AMQPURL string
	// AMQPQueueType is the type of the queues the amqp transport declares:
	// AMQPQueueClassic (empty too) or AMQPQueueQuorum, RabbitMQ's
	// replicated queues; a handler's quorum queue sends a message
	// delivered AMQPDeliveryLimit times (0: DefaultAMQPDeliveryLimit) to
	// the poison queue.
	AMQPQueueType     string
	AMQPDeliveryLimit int
	NATSURL           string
	// NATSAckWait is how long JetStream waits for an ack or a sign of
	// progress before it delivers a message again; 0: NATSAckWait.
	NATSAckWait time.Duration
	// RedisURL is the redis transport's server.
	RedisURL string
	// GoogleCloudProject is the googlecloud transport's project, and
	// PubSubEmulatorHost its emulator (host:port; empty: Google's service,
	// with the credentials the environment gives).
	GoogleCloudProject string
	PubSubEmulatorHost string
	// AWSRegion is the sqs transport's region; AWSEndpointURL its endpoint
	// when not AWS's own (an emulator's, such as cmd/sqs-emulator); the
	// static key AWSAccessKeyID and AWSSecretAccessKey signs its requests
	// when set, else the AWS SDK's chain finds credentials (profiles, the
	// role of the instance or task).
	AWSRegion          string
	AWSEndpointURL     string
	AWSAccessKeyID     string
	AWSSecretAccessKey string
	// redisTimings replace the redis transport's defaults in tests, and
	// sqsMaxReceives the receives of a message before its dead-letter queue.
	redisTimings   *redisTimings
	sqsMaxReceives int
	// Namespace prefixes every topic, and so every table, exchange and
	// queue the transport names ("ns.events.UserRegistered"), so that two
	// deployments sharing a broker never share a queue. Empty: no prefix.
	Namespace string
	// Wakeup (PostgreSQL only; nil: poll every watermillsql.SQLPollInterval) wakes the
	// sql transport's subscribers when their topic gets a message.
	Wakeup *watermillsql.Wakeup
	Logger *slog.Logger
}

// Validate returns every problem at once.
func (c Config) Validate() error {
	var errs []error
	switch c.Kind {
	case KindGoChannel:
	case KindAMQP:
		if c.AMQPQueueType != "" && c.AMQPQueueType != AMQPQueueClassic && c.AMQPQueueType != AMQPQueueQuorum {
			errs = append(errs, fmt.Errorf("AMQP_QUEUE_TYPE: want classic or quorum, got %q", c.AMQPQueueType))
		}
		if c.AMQPDeliveryLimit < 0 {
			errs = append(errs, fmt.Errorf("AMQP_DELIVERY_LIMIT: want a positive number, got %d", c.AMQPDeliveryLimit))
		}
	case KindRedis:
	case KindSQL:
		if c.DB == nil {
			errs = append(errs, errors.New("the sql transport needs a database"))
		}
	case KindNATS:
		if c.Namespace == "" {
			errs = append(errs, errors.New("the nats transport needs a namespace: it names its streams"))
		}
	case KindGoogleCloud:
		if c.GoogleCloudProject == "" {
			errs = append(errs, errors.New("GOOGLE_CLOUD_PROJECT: the googlecloud transport needs a project"))
		}
		if c.Namespace != "" && (c.Namespace[0] < 'a' || c.Namespace[0] > 'z') {
			errs = append(errs, fmt.Errorf("PUBSUB_NAMESPACE: a Pub/Sub name starts with a letter, got %q", c.Namespace))
		}
	case KindSQS:
		if c.AWSRegion == "" {
			errs = append(errs, errors.New("AWS_REGION: the sqs transport needs a region"))
		}
		if c.AWSAccessKeyID != "" && c.AWSSecretAccessKey == "" {
			errs = append(errs, errors.New("AWS_SECRET_ACCESS_KEY: AWS_ACCESS_KEY_ID is set without it"))
		}
	default:
		errs = append(errs, fmt.Errorf("PUBSUB: unknown transport %q (want %s)", c.Kind, strings.Join(Kinds, ", ")))
	}
	if c.Namespace != "" {
		errs = append(errs, ValidateNamespace(c.Namespace))
	}
	return errors.Join(errs...)
}

// NewTransport builds the transport cfg names.
func NewTransport(cfg Config) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	wlogger := watermill.NewSlogLogger(cfg.Logger)
	var (
		t   *Transport
		err error
	)
	switch cfg.Kind {
	case KindGoChannel:
		t = newGoChannelTransport(wlogger)
	case KindSQL:
		t, err = newSQLTransport(cfg.DB, cfg.Wakeup, cfg.Namespace, wlogger)
	case KindAMQP:
		t, err = newAMQPTransport(cfg, wlogger)
	case KindNATS:
		t, err = newNATSTransport(cfg, wlogger)
	case KindGoogleCloud:
		t, err = newGoogleCloudTransport(cfg, wlogger)
	case KindSQS:
		t, err = newSQSTransport(cfg, wlogger)
	case KindRedis:
		t, err = newRedisTransportOf(cfg, wlogger)
	}
	if err != nil {
		return nil, err
	}
	t.namespace, t.kind = cfg.Namespace, cfg.Kind
	t.Publisher = namespacedPublisher{Publisher: t.Publisher, namespace: cfg.Namespace}
	return t, nil
}

// Subscriber returns a subscriber for one consumer group, with the topic's
// durable storage (table, queue and binding) created at once, so that no
// message published from now on can miss it.
func (t *Transport) Subscriber(group, topic string) (message.Subscriber, error) {
	topic = NamespacedTopic(t.namespace, topic)
	var (
		sub message.Subscriber
		err error
	)
	if t.concurrency > 1 {
		sub, err = t.newParallelSubscriber(group, topic)
	} else {
		sub, err = t.newSubscriber(group, topic)
	}
	if err != nil {
		return nil, err
	}
	if initializer, ok := sub.(message.SubscribeInitializer); ok {
		if err := initializer.SubscribeInitialize(topic); err != nil {
			_ = sub.Close()
			if t.explain != nil {
				err = t.explain(err)
			}
			return nil, fmt.Errorf("initialize %s for %s: %w", topic, group, err)
		}
	}
	return namespacedSubscriber{Subscriber: sub, namespace: t.namespace}, nil
}

// PublishesInTransactions reports whether a transaction of the service's
// database may publish into the transport (TxPublisher): on the sql
// transport, whose queue tables share that database.
func (t *Transport) PublishesInTransactions() bool { return t.db != nil }

// InitializeTopics creates the storage of the topics a transaction may
// publish to on the sql transport (see TxPublisher); nothing on others.
func (t *Transport) InitializeTopics(ctx context.Context, topics ...string) error {
	if t.db == nil {
		return nil
	}
	for _, topic := range topics {
		if err := watermillsql.InitializeTopic(ctx, t.db, NamespacedTopic(t.namespace, topic)); err != nil {
			return err
		}
	}
	return nil
}

// TxPublisher publishes, on the sql transport, into its queue tables inside
// tx, to the namespaced topic: the messages commit with the transaction,
// which then needs no outbox. Its topics must have been initialized
// (InitializeTopics). On other transports, an error.
func (t *Transport) TxPublisher(tx wsql.ContextExecutor) (message.Publisher, error) {
	if t.db == nil {
		return nil, fmt.Errorf("the %s transport takes no messages in a database transaction", t.kind)
	}
	publisher, err := watermillsql.NewTxPublisher(tx, t.db, t.logger)
	if err != nil {
		return nil, err
	}
	return namespacedPublisher{Publisher: publisher, namespace: t.namespace}, nil
}

// Namespace is the prefix of the transport's topics.
func (t *Transport) Namespace() string { return t.namespace }

// Topic is the name a topic has on the transport: with its namespace.
func (t *Transport) Topic(topic string) string { return NamespacedTopic(t.namespace, topic) }

// Ready reports whether the transport can carry messages now.
func (t *Transport) Ready(ctx context.Context) error { return t.ready(ctx) }

// Close releases the transport's connections; later calls do nothing.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() { t.closeErr = t.close() })
	return t.closeErr
}

func newGoChannelTransport(logger watermill.LoggerAdapter) *Transport {
	// Publish blocks until every subscriber acked, so the forwarder acks an
	// outbox row only once all handlers are done with it.
	pubSub := gochannel.NewGoChannel(gochannel.Config{
		OutputChannelBuffer:            256,
		BlockPublishUntilSubscriberAck: true,
	}, logger)
	return &Transport{
		Publisher:     pubSub,
		newSubscriber: func(string, string) (message.Subscriber, error) { return noCloseSubscriber{pubSub}, nil },
		ready:         func(context.Context) error { return nil },
		close:         pubSub.Close,
	}
}

// noCloseSubscriber lets each handler "close" its view of the shared
// gochannel without closing it for the others.
type noCloseSubscriber struct{ message.Subscriber }

func (noCloseSubscriber) Close() error { return nil }

func newSQLTransport(db *sql.DB, wakeup *watermillsql.Wakeup, namespace string, logger watermill.LoggerAdapter) (*Transport, error) {
	publisher, err := wsql.NewPublisher(wsql.BeginnerFromStdSQL(db), wsql.PublisherConfig{
		SchemaAdapter:        watermillsql.SchemaAdapter(db),
		AutoInitializeSchema: true,
	}, logger)
	if err != nil {
		return nil, err
	}
	// Poisoned messages need a consumer group of their own, or no queue keeps them.
	poison, err := watermillsql.NewSQLSubscriber(db, PoisonGroup, logger)
	if err == nil {
		err = errors.Join(poison.SubscribeInitialize(NamespacedTopic(namespace, PoisonTopic)), poison.Close())
	}
	if err != nil {
		return nil, fmt.Errorf("declare poison queue: %w", err)
	}
	return &Transport{
		Publisher:   publisher,
		concurrency: sqlConcurrency(db),
		newSubscriber: func(group, topic string) (message.Subscriber, error) {
			return watermillsql.NewWokenSQLSubscriber(db, wakeup, group, topic, logger)
		},
		ready:  db.PingContext,
		close:  publisher.Close,
		db:     db,
		logger: logger,
	}, nil
}

func newAMQPTransport(cfg Config, logger watermill.LoggerAdapter) (*Transport, error) {
	amqpURL := cfg.AMQPURL
	if err := checkAMQPURL(amqpURL); err != nil {
		return nil, err
	}
	queues := newAMQPQueues(cfg)
	conn, err := wamqp.NewConnection(amqpConfig(amqpURL, wamqp.GenerateQueueNameTopicName, nil).Connection, logger)
	if err != nil {
		return nil, fmt.Errorf("RabbitMQ (AMQP_URL): %w", err)
	}
	queues.server, _ = conn.Connection().Properties["version"].(string)
	config := amqpConfig(amqpURL, wamqp.GenerateQueueNameTopicName, queues.poison())
	publisher := newConfirmingPublisher(conn, config)
	t := &Transport{
		Publisher:   publisher,
		concurrency: HandlerConcurrency,
		newSubscriber: func(group, _ string) (message.Subscriber, error) {
			return wamqp.NewSubscriberWithConnection(
				amqpConfig(amqpURL, wamqp.GenerateQueueNameTopicNameWithSuffix(group), queues.handler()), logger, conn)
		},
		ready: func(context.Context) error {
			if !conn.IsConnected() {
				return errors.New("RabbitMQ connection is down")
			}
			return nil
		},
		close: func() error { return errors.Join(publisher.Close(), conn.Close()) },
	}
	t.amqpConn, t.amqpPublisher, t.explain = conn, publisher, queues.explain
	// Poisoned messages need a queue of their own, or the fanout exchange drops them.
	poison, err := wamqp.NewSubscriberWithConnection(config, logger, conn)
	if err == nil {
		err = errors.Join(poison.SubscribeInitialize(NamespacedTopic(cfg.Namespace, PoisonTopic)), poison.Close())
	}
	if err != nil {
		_ = t.Close()
		return nil, fmt.Errorf("declare poison queue: %w", queues.explain(err))
	}
	return t, nil
}

// checkAMQPURL accepts amqp[s]://user:pass@host:port/vhost, and never
// echoes the URL, which holds a password.
func checkAMQPURL(amqpURL string) error {
	if u, err := url.Parse(amqpURL); err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
		return errors.New("AMQP_URL: want amqp://user:pass@host:port/vhost")
	}
	return nil
}

// amqpConfig is a durable fanout exchange per topic and a durable queue per
// consumer group, declared with queueArgs, with publisher confirms.
func amqpConfig(amqpURL string, queueName wamqp.QueueNameGenerator, queueArgs amqp091.Table) wamqp.Config {
	config := wamqp.NewDurablePubSubConfig(amqpURL, queueName)
	config.Connection.AmqpConfig = &amqp091.Config{
		Heartbeat: 10 * time.Second,
		Locale:    "en_US",
		Dial:      amqp091.DefaultDial(5 * time.Second),
	}
	config.Connection.Reconnect = wamqp.DefaultReconnectConfig()
	// confirmingPublisher waits for every publish's confirm.
	config.Publish.ConfirmDelivery = true
	config.Queue.Arguments = queueArgs
	config.Marshaler = amqpMarshaler{}
	// A consumer handles one delivery at a time: with more prefetched, the
	// rest would wait unseen, neither ready on the queue nor held by a
	// handler, and away from the other replicas' consumers.
	config.Consume.Qos.PrefetchCount = 1
	return config
}

// newParallelSubscriber is t.concurrency subscribers of one group, each
// with its own state (a wake-up, a channel), seen as one.
func (t *Transport) newParallelSubscriber(group, topic string) (message.Subscriber, error) {
	p, err := parallelOf(t.concurrency, func() (message.Subscriber, error) { return t.newSubscriber(group, topic) })
	if err != nil {
		return nil, err
	}
	return p, nil
}

// NewOutboxSubscriber reads the outbox of db for the forwarder. On
// PostgreSQL (wakeup not nil) it reads with as many subscribers at once as
// a handler of the sql transport has, each locking its own rows and woken
// for each new one: a publish that waits for its broker's confirm does not
// hold back the next. Elsewhere one subscriber polls, as a poll every
// 100 ms would lock what it finds for one of them anyway. It creates the
// outbox table now: the first registration writes into it.
func NewOutboxSubscriber(db *sql.DB, wakeup *watermillsql.Wakeup, logger watermill.LoggerAdapter) (message.Subscriber, error) {
	readers := 1
	if wakeup != nil {
		readers = sqlConcurrency(db)
	}
	outbox, err := parallelOf(readers, func() (message.Subscriber, error) {
		return watermillsql.NewWokenSQLSubscriber(db, wakeup, OutboxGroup, OutboxTopic, logger)
	})
	if err != nil {
		return nil, err
	}
	if err := outbox.SubscribeInitialize(OutboxTopic); err != nil {
		_ = outbox.Close()
		return nil, fmt.Errorf("initialize outbox: %w", err)
	}
	return outbox, nil
}

// sqlConcurrency is how many subscribers of one group read db's queue
// tables at once: HandlerConcurrency, or 1 on SQLite, whose subscribers
// take no row locks (see sqliteSubscriberBeginner).
func sqlConcurrency(db *sql.DB) int {
	if sqldb.Of(db).SingleWriter() {
		return 1
	}
	return HandlerConcurrency
}

// parallelOf is n subscribers made by newSubscriber, seen as one.
func parallelOf(n int, newSubscriber func() (message.Subscriber, error)) (*parallelSubscriber, error) {
	p := &parallelSubscriber{closed: make(chan struct{})}
	for range n {
		sub, err := newSubscriber()
		if err != nil {
			_ = p.Close()
			return nil, err
		}
		p.subs = append(p.subs, sub)
	}
	return p, nil
}

// parallelSubscriber subscribes with each of its subscribers and merges the
// subscriptions into one channel, so that several messages are in flight
// at once.
type parallelSubscriber struct {
	subs      []message.Subscriber
	closed    chan struct{}
	closeOnce sync.Once
	merging   sync.WaitGroup // until every merged channel is closed
}

func (p *parallelSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan *message.Message)
	var wg sync.WaitGroup
	for _, sub := range p.subs {
		messages, err := sub.Subscribe(ctx, topic)
		if err != nil {
			cancel()
			return nil, err
		}
		wg.Go(func() {
			for msg := range messages {
				select {
				case out <- msg:
				case <-ctx.Done():
					// The subscription sees ctx too and redelivers the message later.
					return
				case <-p.closed:
					return // not acked: redelivered later
				}
			}
		})
	}
	p.merging.Go(func() {
		wg.Wait()
		cancel()
		close(out)
	})
	return out, nil
}

// SubscribeInitialize creates the topic's storage, once for all.
func (p *parallelSubscriber) SubscribeInitialize(topic string) error {
	if initializer, ok := p.subs[0].(message.SubscribeInitializer); ok {
		return initializer.SubscribeInitialize(topic)
	}
	return nil
}

// Close closes every subscriber, and returns once every channel it gave
// out is closed, as Watermill's subscribers do.
func (p *parallelSubscriber) Close() error {
	p.closeOnce.Do(func() { close(p.closed) })
	var errs []error
	for _, sub := range p.subs {
		errs = append(errs, sub.Close())
	}
	p.merging.Wait()
	return errors.Join(errs...)
}
