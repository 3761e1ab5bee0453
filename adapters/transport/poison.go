package transport

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/adapters/watermillsql"
)

// PoisonedMessage describes a message in the poison queue. Its payload is
// left out on purpose: a command's payload holds a password.
type PoisonedMessage struct {
	// ID is this copy's in the poison queue: one per handler that failed.
	ID string `json:"id"`
	// MessageUUID is the message's own.
	MessageUUID string `json:"message_uuid"`
	Topic       string `json:"topic"`
	Handler     string `json:"handler"`
	Reason      string `json:"reason"`
	Bytes       int    `json:"bytes"`
}

// ErrPoisonedMessageNotFound is returned when requeuing an id the poison
// queue does not hold.
var ErrPoisonedMessageNotFound = errors.New("no poisoned message with this id")

// PoisonQueue lets operators see what failed for good and send it back to
// the handler that failed, once the cause is fixed.
type PoisonQueue interface {
	List(ctx context.Context) ([]PoisonedMessage, error)
	// Requeue moves one message back to the handler that poisoned it.
	Requeue(ctx context.Context, id string) (PoisonedMessage, error)
}

// NewPoisonQueue opens the poison queue of the transport cfg names.
func NewPoisonQueue(cfg Config) (PoisonQueue, error) {
	if cfg.Kind == KindGoChannel {
		return nil, errors.New("PUBSUB=gochannel keeps no poisoned messages: they are only in the log")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Kind == KindSQL {
		return sqlPoisonQueue{db: cfg.DB, dialect: sqldb.Of(cfg.DB), namespace: cfg.Namespace}, nil
	}
	if cfg.Kind == KindNATS {
		return newNATSPoisonQueue(cfg)
	}
	if cfg.Kind == KindRedis {
		return newRedisPoisonQueue(cfg)
	}
	if cfg.Kind == KindSQS {
		return newSQSPoisonQueue(cfg)
	}
	if cfg.Kind == KindGoogleCloud {
		return newGoogleCloudPoisonQueue(cfg)
	}
	return amqpPoisonQueue{url: cfg.AMQPURL, namespace: cfg.Namespace}, nil
}

func describePoisoned(msg *message.Message) PoisonedMessage {
	own := msg.Metadata.Get(PoisonedUUIDKey)
	if own == "" { // poisoned before copies had ids of their own
		own = msg.UUID
	}
	return PoisonedMessage{
		ID:          msg.UUID,
		MessageUUID: own,
		Topic:       msg.Metadata.Get(middleware.PoisonedTopicKey),
		Handler:     msg.Metadata.Get(middleware.PoisonedHandlerKey),
		Reason:      msg.Metadata.Get(middleware.ReasonForPoisonedKey),
		Bytes:       len(msg.Payload),
	}
}

// PoisonedUUIDKey keeps a poisoned message's own UUID; the copy in the
// poison queue gets a new one, so that each copy (one per handler that
// failed on it) has an id of its own there.
const PoisonedUUIDKey = "onboard_poisoned_uuid"

// UniquePoisonIDs gives each message published to the poison queue a new
// UUID, keeping its own under PoisonedUUIDKey.
func UniquePoisonIDs(pub message.Publisher) message.Publisher { return uniquePoisonIDs{pub} }

type uniquePoisonIDs struct{ message.Publisher }

func (p uniquePoisonIDs) Publish(topic string, msgs ...*message.Message) error {
	copies := make([]*message.Message, len(msgs))
	for i, msg := range msgs {
		copies[i] = msg.Copy()
		copies[i].UUID = uuid.Must(uuid.NewV7()).String()
		copies[i].Metadata.Set(PoisonedUUIDKey, msg.UUID)
	}
	return p.Publisher.Publish(topic, copies...)
}

// unpoisoned is msg as it was before it was poisoned, for the handler that
// failed on it alone, with its retries counted afresh.
func unpoisoned(msg *message.Message, handler string) *message.Message {
	out := msg.Copy()
	if id := out.Metadata.Get(PoisonedUUIDKey); id != "" {
		out.UUID = id
	}
	for _, key := range []string{middleware.PoisonedTopicKey, middleware.PoisonedHandlerKey,
		middleware.ReasonForPoisonedKey, middleware.PoisonedSubscriberKey,
		PoisonedUUIDKey, RetryAttemptsKey, FirstFailedKey} {
		delete(out.Metadata, key)
	}
	for key := range out.Metadata {
		if strings.HasPrefix(key, "x-") { // RabbitMQ's own: its deliveries, its dead-letterings
			delete(out.Metadata, key)
		}
	}
	out.Metadata.Set(ForHandlerKey, handler)
	return out
}

func checkRequeueTarget(p PoisonedMessage) error {
	if p.Topic == "" || p.Handler == "" {
		return fmt.Errorf("poisoned message %s names no topic or handler to go back to", p.ID)
	}
	return nil
}

// sqlPoisonQueue reads the poison topic's table.
type sqlPoisonQueue struct {
	db        *sql.DB
	dialect   sqldb.Dialect
	namespace string
}

func (q sqlPoisonQueue) table() string { return q.topicTable(PoisonTopic) }

// topicTable is the quoted name of the table of a topic of the namespace.
func (q sqlPoisonQueue) topicTable(topic string) string {
	return q.dialect.Quote(watermillsql.MessagesTable(q.db, NamespacedTopic(q.namespace, topic)))
}

// poisonRows selects the poisoned messages; on SQLite the poison table is a
// log without consumer groups.
func (q sqlPoisonQueue) poisonRows(where string) string {
	query := `SELECT ` + q.dialect.Quote("offset") + `, uuid, payload, metadata FROM ` + q.table()
	if watermillsql.HasGroupQueues(q.db) {
		query += ` WHERE consumer_group = '` + PoisonGroup + `'`
	} else {
		query += ` WHERE 1 = 1`
	}
	return q.dialect.Rebind(query + where + ` ORDER BY ` + q.dialect.Quote("offset"))
}

type poisonRow struct {
	offset int64
	msg    *message.Message
}

func scanPoisonRow(rows interface{ Scan(...any) error }) (poisonRow, error) {
	var (
		r        poisonRow
		id       string
		payload  []byte
		metadata sql.NullString
	)
	if err := rows.Scan(&r.offset, &id, &payload, &metadata); err != nil {
		return poisonRow{}, err
	}
	r.msg = message.NewMessage(id, payload)
	if metadata.Valid && metadata.String != "" {
		if err := json.Unmarshal([]byte(metadata.String), &r.msg.Metadata); err != nil {
			return poisonRow{}, fmt.Errorf("metadata of poisoned message %s: %w", id, err)
		}
	}
	return r, nil
}

func (q sqlPoisonQueue) List(ctx context.Context) ([]PoisonedMessage, error) {
	rows, err := q.db.QueryContext(ctx, q.poisonRows(""))
	if q.dialect.IsMissingTable(err) {
		return nil, nil // nothing was ever poisoned here
	}
	if err != nil {
		return nil, fmt.Errorf("list poisoned messages: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []PoisonedMessage
	for rows.Next() {
		r, err := scanPoisonRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, describePoisoned(r.msg))
	}
	return out, rows.Err()
}

// Requeue writes the message back for its handler's consumer group (on
// SQLite, to the topic, marked for that handler alone) and deletes it from
// the poison queue, in one transaction.
func (q sqlPoisonQueue) Requeue(ctx context.Context, id string) (PoisonedMessage, error) {
	tx, err := q.db.BeginTx(ctx, nil)
	if err != nil {
		return PoisonedMessage{}, err
	}
	defer func() { _ = tx.Rollback() }()
	r, err := scanPoisonRow(tx.QueryRowContext(ctx, q.poisonRows(" AND uuid = ?")+q.dialect.LockRows(false), id))
	if errors.Is(err, sql.ErrNoRows) || q.dialect.IsMissingTable(err) {
		return PoisonedMessage{}, ErrPoisonedMessageNotFound
	}
	if err != nil {
		return PoisonedMessage{}, fmt.Errorf("read poisoned message: %w", err)
	}
	poisoned := describePoisoned(r.msg)
	if err := checkRequeueTarget(poisoned); err != nil {
		return PoisonedMessage{}, err
	}
	msg := unpoisoned(r.msg, poisoned.Handler)
	metadata, err := json.Marshal(msg.Metadata)
	if err != nil {
		return PoisonedMessage{}, err
	}
	var insert string
	args := []any{msg.UUID, []byte(msg.Payload), string(metadata)}
	if !watermillsql.HasGroupQueues(q.db) {
		insert = `INSERT INTO ` + q.topicTable(poisoned.Topic) + ` (uuid, payload, metadata) VALUES (?, ?, ?)`
	} else {
		insert = `INSERT INTO ` + q.topicTable(poisoned.Topic) +
			` (consumer_group, uuid, payload, metadata) VALUES (?, ?, ?, ?)`
		args = append([]any{poisoned.Handler}, args...)
	}
	if _, err := tx.ExecContext(ctx, q.dialect.Rebind(insert), args...); err != nil {
		return PoisonedMessage{}, fmt.Errorf("requeue to %s: %w", poisoned.Topic, err)
	}
	if _, err := tx.ExecContext(ctx, q.dialect.Rebind(`DELETE FROM `+q.table()+` WHERE `+q.dialect.Quote("offset")+` = ?`), r.offset); err != nil {
		return PoisonedMessage{}, fmt.Errorf("delete from the poison queue: %w", err)
	}
	return poisoned, tx.Commit()
}

// amqpPoisonQueue reads the durable poison queue of the namespace on RabbitMQ.
type amqpPoisonQueue struct{ url, namespace string }

// amqpGetTimeout bounds the wait for RabbitMQ's answers.
const amqpGetTimeout = 10 * time.Second

// browse takes every message of the poison queue without acking it and
// calls visit on each; closing the channel at the end puts back every
// message not acked, in its order.
func (q amqpPoisonQueue) browse(ctx context.Context, visit func(ch *amqp091.Channel, d amqp091.Delivery, msg *message.Message) (stop bool, err error)) error {
	conn, err := amqp091.DialConfig(q.url, amqp091.Config{Dial: amqp091.DefaultDial(amqpGetTimeout)})
	if err != nil {
		return fmt.Errorf("RabbitMQ (AMQP_URL): %w", err)
	}
	defer func() { _ = conn.Close() }()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer func() { _ = ch.Close() }()
	var marshaler amqpMarshaler
	for ctx.Err() == nil {
		d, ok, err := ch.Get(NamespacedTopic(q.namespace, PoisonTopic), false)
		if err != nil {
			return fmt.Errorf("read the poison queue: %w", err)
		}
		if !ok {
			return nil
		}
		msg, err := marshaler.Unmarshal(d)
		if err != nil {
			return fmt.Errorf("poisoned message: %w", err)
		}
		stop, err := visit(ch, d, msg)
		if err != nil || stop {
			return err
		}
	}
	return ctx.Err()
}

func (q amqpPoisonQueue) List(ctx context.Context) ([]PoisonedMessage, error) {
	var out []PoisonedMessage
	err := q.browse(ctx, func(_ *amqp091.Channel, _ amqp091.Delivery, msg *message.Message) (bool, error) {
		out = append(out, deadLettered(describePoisoned(msg), msg.Metadata, q.namespace))
		return false, nil
	})
	return out, err
}

// Requeue publishes the message to the queue of the handler that poisoned
// it, waits for RabbitMQ's confirm, and only then acks it off the poison queue.
func (q amqpPoisonQueue) Requeue(ctx context.Context, id string) (PoisonedMessage, error) {
	var found *PoisonedMessage
	err := q.browse(ctx, func(ch *amqp091.Channel, d amqp091.Delivery, msg *message.Message) (bool, error) {
		if msg.UUID != id {
			return false, nil
		}
		poisoned := deadLettered(describePoisoned(msg), msg.Metadata, q.namespace)
		if err := checkRequeueTarget(poisoned); err != nil {
			return true, err
		}
		publishing, err := wamqp.DefaultMarshaler{}.Marshal(unpoisoned(msg, poisoned.Handler))
		if err != nil {
			return true, err
		}
		if err := ch.Confirm(false); err != nil {
			return true, err
		}
		queue := wamqp.GenerateQueueNameTopicNameWithSuffix(poisoned.Handler)(NamespacedTopic(q.namespace, poisoned.Topic))
		// RabbitMQ confirms even a message no queue took: check the queue first.
		if _, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil); err != nil {
			return true, fmt.Errorf("requeue to %s: %w", queue, err)
		}
		confirm, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, publishing)
		if err != nil {
			return true, fmt.Errorf("requeue to %s: %w", queue, err)
		}
		waitCtx, cancel := context.WithTimeout(ctx, amqpGetTimeout)
		defer cancel()
		acked, err := confirm.WaitContext(waitCtx)
		if err != nil {
			return true, fmt.Errorf("confirm the requeue to %s: %w", queue, err)
		}
		if !acked {
			return true, fmt.Errorf("RabbitMQ refused the requeue to %s", queue)
		}
		if err := d.Ack(false); err != nil {
			return true, err
		}
		found = &poisoned
		return true, nil
	})
	if err != nil {
		return PoisonedMessage{}, err
	}
	if found == nil {
		return PoisonedMessage{}, ErrPoisonedMessageNotFound
	}
	return *found, nil
}
