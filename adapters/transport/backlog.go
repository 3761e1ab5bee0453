package transport

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"

	"github.com/onboard/onboard/adapters/watermillsql"
)

// OutboxGroup is the forwarder's consumer group on the outbox.
const OutboxGroup = "forwarder"

// HandlerTopic is a handler (its consumer group, or its queue's suffix on
// amqp) and the topic it reads, without the namespace.
type HandlerTopic struct{ Handler, Topic string }

// BacklogConfig configures NewBacklogReader.
type BacklogConfig struct {
	// Transport carries the handlers' messages: on sql their queues are
	// tables of DB, on amqp RabbitMQ queues, on nats JetStream consumers, on
	// redis consumer groups of streams; gochannel keeps them in memory only,
	// and has no backlog to read.
	Transport *Transport
	// DB holds the outbox and the retry queue.
	DB       *sql.DB
	Handlers []HandlerTopic
}

// The sources of a reading, the source label of onboard_backlog_up.
const (
	sourceOutbox   = "outbox"
	sourceHandlers = "handlers"
	sourceRetries  = "retry_queue"
	sourcePoison   = "poison_queue"
)

// BacklogSeries names a value of a reading of the backlogs.
type BacklogSeries int

// The values a reading gives: counts of messages, and ages in seconds of
// the oldest (0 when none).
const (
	OutboxMessages   BacklogSeries = iota // not yet forwarded to the transport
	OutboxOldestAge                       // of the oldest not yet forwarded
	HandlerMessages                       // waiting for a handler, by handler
	HandlerOldestAge                      // of the oldest waiting for a handler, by handler
	RetryMessages                         // waiting in the retry queue, by handler
	RetryOldestAge                        // since the first failure of the oldest retry, by handler
	PoisonedMessages                      // kept in the poison queue
)

// BacklogValue is one value of a reading: its series, the handler it is
// of ("" for the outbox and the poison queue) and the value.
type BacklogValue struct {
	Series  BacklogSeries
	Handler string
	Value   float64
}

// BacklogSource is one source's reading: its values, or the error that
// kept it from being read (its values are then left out). The error names
// tables or queues, never a message's content.
type BacklogSource struct {
	Name   string
	Values []BacklogValue
	Err    error
}

// BacklogReader reads what waits: the outbox, each handler's queue, the
// retry queue and the poison queue, from where they are kept.
type BacklogReader struct {
	cfg BacklogConfig
}

// NewBacklogReader returns the reader of cfg's backlogs.
func NewBacklogReader(cfg BacklogConfig) (*BacklogReader, error) {
	if cfg.Transport == nil || cfg.DB == nil {
		return nil, errors.New("backlog: a transport and a database are required")
	}
	return &BacklogReader{cfg: cfg}, nil
}

// reading gathers the values of one source.
type reading struct{ values []BacklogValue }

func (r *reading) gauge(series BacklogSeries, value float64, handler ...string) {
	v := BacklogValue{Series: series, Value: value}
	if len(handler) > 0 {
		v.Handler = handler[0]
	}
	r.values = append(r.values, v)
}

// Read reads every source of the transport's kind, each on its own: one
// that fails leaves the others' values.
func (c *BacklogReader) Read(ctx context.Context) []BacklogSource {
	sources := c.sources()
	read := make([]BacklogSource, len(sources))
	for i, source := range sources {
		r := &reading{}
		err := source.read(ctx, r)
		if err != nil {
			r.values = nil
		}
		read[i] = BacklogSource{Name: source.name, Values: r.values, Err: err}
	}
	return read
}

type backlogSource struct {
	name string
	read func(context.Context, *reading) error
}

// sources are the sources of the transport's kind, each with its reading.
func (c *BacklogReader) sources() []backlogSource {
	sources := []backlogSource{
		{sourceOutbox, func(ctx context.Context, r *reading) error {
			b, err := watermillsql.GroupBacklog(ctx, c.cfg.DB, OutboxTopic, OutboxGroup)
			r.gauge(OutboxMessages, float64(b.Messages))
			r.gauge(OutboxOldestAge, b.OldestAge.Seconds())
			return err
		}},
		{sourceRetries, c.readRetries},
	}
	source := func(name string, read func(context.Context, *reading) error) {
		sources = append(sources, backlogSource{name, read})
	}
	switch c.cfg.Transport.kind {
	case KindSQL:
		source(sourceHandlers, c.readSQLHandlers)
		source(sourcePoison, func(ctx context.Context, r *reading) error {
			b, err := watermillsql.GroupBacklog(ctx, c.cfg.DB, c.cfg.Transport.Topic(PoisonTopic), PoisonGroup)
			r.gauge(PoisonedMessages, float64(b.Messages))
			return err
		})
	case KindRedis:
		source(sourceHandlers, c.readRedisHandlers)
		source(sourcePoison, c.readRedisPoison)
	case KindAMQP:
		source(sourceHandlers, c.readAMQPHandlers)
		source(sourcePoison, func(ctx context.Context, r *reading) error {
			depths, err := c.cfg.Transport.queueDepths(ctx, c.cfg.Transport.Topic(PoisonTopic))
			if err == nil {
				r.gauge(PoisonedMessages, float64(depths[0]))
			}
			return err
		})
	case KindSQS:
		source(sourceHandlers, c.readSQSHandlers)
		source(sourcePoison, c.readSQSPoison)
	case KindGoogleCloud:
		source(sourceHandlers, c.readHeldHandlers)
	case KindNATS:
		source(sourceHandlers, c.readNATSHandlers)
		source(sourcePoison, c.readNATSPoison)
	}
	return sources
}

func (c *BacklogReader) readSQLHandlers(ctx context.Context, r *reading) error {
	for _, h := range c.cfg.Handlers {
		b, err := watermillsql.GroupBacklog(ctx, c.cfg.DB, c.cfg.Transport.Topic(h.Topic), h.Handler)
		if err != nil {
			return err
		}
		r.gauge(HandlerMessages, float64(b.Messages), h.Handler)
		r.gauge(HandlerOldestAge, b.OldestAge.Seconds(), h.Handler)
	}
	return nil
}

// readAMQPHandlers reads the ready messages of each handler's queue and
// adds those this process's handlers hold, unacked. RabbitMQ tells no
// message's age without handing it out, so the oldest age is that of the
// oldest held: with one delivery per consumer at a time, the head of the
// queue is held whenever a consumer runs.
func (c *BacklogReader) readAMQPHandlers(ctx context.Context, r *reading) error {
	queues := make([]string, len(c.cfg.Handlers))
	for i, h := range c.cfg.Handlers {
		queues[i] = wamqp.GenerateQueueNameTopicNameWithSuffix(h.Handler)(c.cfg.Transport.Topic(h.Topic))
	}
	depths, err := c.cfg.Transport.queueDepths(ctx, queues...)
	if err != nil {
		return err
	}
	now := time.Now()
	for i, h := range c.cfg.Handlers {
		count, age := c.cfg.Transport.held.backlog(h.Handler, now)
		r.gauge(HandlerMessages, float64(depths[i]+count), h.Handler)
		r.gauge(HandlerOldestAge, age, h.Handler)
	}
	return nil
}

// readRetries counts the retry queue's messages by handler, every known
// handler included, and the age of each one's oldest first failure.
func (c *BacklogReader) readRetries(ctx context.Context, r *reading) error {
	type waiting struct {
		count       int64
		firstFailed int64 // Unix ms
	}
	byHandler := map[string]waiting{}
	for _, h := range c.cfg.Handlers {
		byHandler[h.Handler] = waiting{}
	}
	rows, err := c.cfg.DB.QueryContext(ctx,
		`SELECT handler, COUNT(*), MIN(first_failed_ms) FROM message_retries GROUP BY handler`)
	if err != nil {
		return fmt.Errorf("read the retry queue: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var (
			handler string
			w       waiting
		)
		if err := rows.Scan(&handler, &w.count, &w.firstFailed); err != nil {
			return fmt.Errorf("read the retry queue: %w", err)
		}
		byHandler[handler] = w
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the retry queue: %w", err)
	}
	handlers := make([]string, 0, len(byHandler))
	for h := range byHandler {
		handlers = append(handlers, h)
	}
	sort.Strings(handlers)
	now := time.Now()
	for _, h := range handlers {
		w := byHandler[h]
		age := 0.0
		if w.count > 0 {
			age = max(0, now.Sub(time.UnixMilli(w.firstFailed)).Seconds())
		}
		r.gauge(RetryMessages, float64(w.count), h)
		r.gauge(RetryOldestAge, age, h)
	}
	return nil
}

// queueDepths reads the ready messages of RabbitMQ queues by a passive
// declare each, on a channel of its own.
func (t *Transport) queueDepths(ctx context.Context, queues ...string) ([]int, error) {
	conn := t.amqpConn.Connection()
	if !t.amqpConn.IsConnected() || conn == nil {
		return nil, errors.New("RabbitMQ connection is down")
	}
	type result struct {
		depths []int
		err    error
	}
	done := make(chan result, 1)
	go func() { // amqp091 takes no context: a broker that hangs is waited for here
		ch, err := conn.Channel()
		if err != nil {
			done <- result{err: fmt.Errorf("open a channel: %w", err)}
			return
		}
		defer func() { _ = ch.Close() }()
		depths := make([]int, len(queues))
		for i, q := range queues {
			info, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
			if err != nil {
				done <- result{err: fmt.Errorf("queue %s: %w", q, err)}
				return
			}
			depths[i] = info.Messages
		}
		done <- result{depths: depths}
	}()
	select {
	case r := <-done:
		return r.depths, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("read RabbitMQ queues: %w", ctx.Err())
	}
}
