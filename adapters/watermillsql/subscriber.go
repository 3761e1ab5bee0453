package watermillsql

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/onboard/onboard/adapters/sqldb"
)

// SQLPollInterval is how often an idle SQL subscriber looks for new rows.
const SQLPollInterval = 100 * time.Millisecond

// dialectAdapters are the watermill-sql adapters of one dialect.
type dialectAdapters struct {
	schema  wsql.SchemaAdapter
	offsets func(group string) wsql.OffsetsAdapter
	// beginner gives subscribers their transactions.
	beginner func(db *sql.DB) wsql.Beginner
	// groupQueues: a queue per consumer group (QueueSchema, a
	// consumer_group column); else one log per topic read at each group's
	// offset (SQLiteSchema).
	groupQueues bool
	tablePrefix string
}

// adaptersOf picks the adapters of the dialect: a queue per consumer group
// on PostgreSQL and MySQL, offsets on SQLite (one writer: rows become
// visible in offset order).
func adaptersOf(d sqldb.Dialect) dialectAdapters {
	if d.SingleWriter() {
		return dialectAdapters{
			schema:      SQLiteSchema{},
			offsets:     func(string) wsql.OffsetsAdapter { return SQLiteOffsetsAdapter{} },
			beginner:    func(db *sql.DB) wsql.Beginner { return sqliteSubscriberBeginner{db} },
			tablePrefix: "watermill_",
		}
	}
	schema := QueueSchema{MySQL: d.Is(sqldb.MySQL)}
	beginner := func(db *sql.DB) wsql.Beginner { return newPipelinedBeginner(db) }
	if schema.MySQL {
		beginner = func(db *sql.DB) wsql.Beginner { return wsql.BeginnerFromStdSQL(db) }
	}
	return dialectAdapters{
		schema: schema,
		offsets: func(group string) wsql.OffsetsAdapter {
			return QueueOffsetsAdapter{Schema: schema, ConsumerGroup: group}
		},
		beginner:    beginner,
		groupQueues: true,
		tablePrefix: "watermill_queue_",
	}
}

// SchemaAdapter is the schema adapter of the sql transport, and of the
// outbox, on db.
func SchemaAdapter(db *sql.DB) wsql.SchemaAdapter { return adaptersOf(sqldb.Of(db)).schema }

// MessagesTable is the unquoted name of the table that holds a topic's
// messages on db.
func MessagesTable(db *sql.DB, topic string) string {
	return adaptersOf(sqldb.Of(db)).tablePrefix + topic
}

// HasGroupQueues reports whether db keeps a queue per consumer group (rows
// with a consumer_group column, deleted once acked), rather than one log
// per topic that every group reads at its own offset.
func HasGroupQueues(db *sql.DB) bool { return adaptersOf(sqldb.Of(db)).groupQueues }

// NewSQLSubscriber subscribes to watermill-sql tables of db as one consumer
// group, polling every SQLPollInterval.
func NewSQLSubscriber(db *sql.DB, group string, logger watermill.LoggerAdapter) (*SQLSubscriber, error) {
	return NewWokenSQLSubscriber(db, nil, group, "", logger)
}

// NewWokenSQLSubscriber is NewSQLSubscriber for one topic, woken by wakeup
// when a message commits on it; with a nil wakeup it polls.
func NewWokenSQLSubscriber(db *sql.DB, wakeup *Wakeup, group, topic string, logger watermill.LoggerAdapter) (*SQLSubscriber, error) {
	a := adaptersOf(sqldb.Of(db))
	schema := a.schema
	var backoff wsql.BackoffManager
	if wakeup != nil {
		var drained func() bool
		if queue, ok := schema.(QueueSchema); ok {
			counting := countingQueueSchema{QueueSchema: queue, rows: new(atomic.Int64)}
			schema, drained = counting, counting.drained
		}
		backoff = wakeup.backoff(topic, group, time.Second, drained)
	}
	sub, err := wsql.NewSubscriber(a.beginner(db), wsql.SubscriberConfig{
		ConsumerGroup:    group,
		PollInterval:     SQLPollInterval,
		ResendInterval:   SQLPollInterval,
		RetryInterval:    time.Second,
		BackoffManager:   backoff,
		SchemaAdapter:    schema,
		OffsetsAdapter:   a.offsets(group),
		InitializeSchema: true,
	}, logger)
	if err != nil {
		return nil, err
	}
	return &SQLSubscriber{Subscriber: sub, db: db, closing: make(chan struct{})}, nil
}

// subscribeRetryInterval is how often a subscription refused by a database
// that is away is tried again.
const subscribeRetryInterval = time.Second

// SQLSubscriber is a watermill-sql subscriber whose Close returns once the
// channels it gave out are closed, as Watermill's subscribers promise:
// watermill-sql v4.1.2 closes a subscription's channel just after Close has
// returned.
type SQLSubscriber struct {
	*wsql.Subscriber
	db        *sql.DB
	mu        sync.Mutex
	opened    []<-chan *message.Message
	closing   chan struct{}
	closeOnce sync.Once
}

// Subscribe subscribes to topic. Subscribing creates the topic's tables
// first; while the database is away (a sqldb.Transient error, or any error
// while a ping fails) that is tried again every second until ctx ends or
// the subscriber closes: a cut at the moment a router subscribes waits for
// the database, as a running subscription does, instead of stopping the
// router.
func (s *SQLSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	for {
		messages, err := s.Subscriber.Subscribe(ctx, topic)
		if err == nil {
			s.mu.Lock()
			s.opened = append(s.opened, messages)
			s.mu.Unlock()
			return messages, nil
		}
		if !sqldb.Transient(err) && s.reachable(ctx) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-s.closing:
			return nil, err
		case <-time.After(subscribeRetryInterval):
		}
	}
}

// reachable reports whether the database answers a ping within a second.
func (s *SQLSubscriber) reachable(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return s.db.PingContext(ctx) == nil
}

// Close stops every subscription and waits for their channels to close.
func (s *SQLSubscriber) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	err := s.Subscriber.Close()
	s.mu.Lock()
	opened := s.opened
	s.opened = nil
	s.mu.Unlock()
	for _, messages := range opened {
		for range messages { // nothing is sent any more: this waits for the close
		}
	}
	return err
}

// messageArgs are the insert arguments of each message: uuid, payload and
// metadata (JSON), in order.
func messageArgs(msgs message.Messages) ([]any, error) {
	args := make([]any, 0, 3*len(msgs))
	for _, msg := range msgs {
		metadata, err := json.Marshal(msg.Metadata)
		if err != nil {
			return nil, fmt.Errorf("marshal metadata of message %s: %w", msg.UUID, err)
		}
		args = append(args, msg.UUID, []byte(msg.Payload), string(metadata))
	}
	return args, nil
}

// InitializeTopic creates the tables of topic's messages on db, as the
// transport's publisher would at its first publish: a transaction's
// publisher (NewTxPublisher) cannot, since MySQL commits at DDL.
func InitializeTopic(ctx context.Context, db *sql.DB, topic string) error {
	schema := adaptersOf(sqldb.Of(db)).schema
	queries, err := schema.SchemaInitializingQueries(wsql.SchemaInitializingQueriesParams{Topic: topic})
	if err != nil {
		return err
	}
	run := func(exec interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	}) error {
		for _, q := range queries {
			if _, err := exec.ExecContext(ctx, q.Query, q.Args...); err != nil {
				return fmt.Errorf("initialize %s: %w", topic, err)
			}
		}
		return nil
	}
	if needs, ok := schema.(wsql.RequiresTransaction); !ok || !needs.RequiresTransaction() {
		return run(db)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("initialize %s: %w", topic, err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := run(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// NewTxPublisher publishes into the tables of the sql transport on db
// inside tx: the messages commit, and their subscribers see them, with the
// rest of the transaction. Their topics' tables must exist
// (InitializeTopic).
func NewTxPublisher(tx wsql.ContextExecutor, db *sql.DB, logger watermill.LoggerAdapter) (message.Publisher, error) {
	return wsql.NewPublisher(tx, wsql.PublisherConfig{SchemaAdapter: SchemaAdapter(db)}, logger)
}
