package transport

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/app"
)

// Metadata of a message that a handler retries later.
const (
	// ForHandlerKey names the only handler a redelivered message is for:
	// the others on its topic acknowledge it untouched (see ForNamedHandler).
	ForHandlerKey = "onboard_for_handler"
	// RetryAttemptsKey counts the attempts that failed for this message only.
	RetryAttemptsKey = "onboard_retry_attempts"
	// FirstFailedKey is when the first of them failed (RFC 3339).
	FirstFailedKey = "onboard_first_failed_at"
)

// RetryQueueConfig configures a RetryQueue.
type RetryQueueConfig struct {
	DB *sql.DB
	// Publisher takes a due message back to its topic (the transport's).
	// Only Run needs it.
	Publisher message.Publisher
	// MaxAge is how long after its first failure a message is still
	// retried; then it is poisoned with its last reason. 24 h by default.
	MaxAge time.Duration
	// FirstDelay is the wait before the first retry; each next one waits
	// twice as long, up to MaxDelay. 1 min and 1 h by default.
	FirstDelay time.Duration
	MaxDelay   time.Duration
	Logger     *slog.Logger
}

func (c *RetryQueueConfig) setDefaults() {
	if c.MaxAge == 0 {
		c.MaxAge = 24 * time.Hour
	}
	if c.FirstDelay == 0 {
		c.FirstDelay = time.Minute
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = time.Hour
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate returns every problem at once.
func (c RetryQueueConfig) Validate() error {
	var errs []error
	if c.DB == nil {
		errs = append(errs, errors.New("retry queue: no database"))
	}
	if c.MaxAge < 0 || c.FirstDelay < 0 || c.MaxDelay < c.FirstDelay {
		errs = append(errs, errors.New("retry queue: want 0 < first delay <= max delay, and a max age >= 0"))
	}
	return errors.Join(errs...)
}

// RetryQueue keeps the messages that failed for themselves alone (an SMTP
// 4xx to one recipient) off their queue, in the database, and gives each
// back to the handler that failed on it once its growing delay is over, so
// that one such message never holds back the others. A message still
// failing MaxAge after its first failure is poisoned with its reason.
type RetryQueue struct {
	cfg     RetryQueueConfig
	dialect sqldb.Dialect
	// poll is how often Run looks for due messages.
	poll time.Duration
}

// DeferredMessage describes a message waiting for its next attempt; its
// payload (which may hold personal data) is left out.
type DeferredMessage struct {
	ID          string    `json:"id"`
	Topic       string    `json:"topic"`
	Handler     string    `json:"handler"`
	Attempts    int       `json:"attempts"`
	FirstFailed time.Time `json:"first_failed_at"`
	NextAttempt time.Time `json:"next_attempt_at"`
	Reason      string    `json:"reason"`
	Bytes       int       `json:"bytes"`
}

// NewRetryQueue returns the retry queue of cfg.DB.
func NewRetryQueue(cfg RetryQueueConfig) (*RetryQueue, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Fine enough for short test delays, at most one cheap query a second.
	poll := min(max(cfg.FirstDelay/5, 50*time.Millisecond), time.Second)
	return &RetryQueue{cfg: cfg, dialect: sqldb.Of(cfg.DB), poll: poll}, nil
}

// retriesExhaustedError ends a message's retries: it is poisoned with the
// reason. It wraps nothing, so that the last failure's class is not read
// through it.
type retriesExhaustedError struct{ reason string }

func (e *retriesExhaustedError) Error() string { return e.reason }

// Middleware takes the failures of one message (app.FailureMessage) out of the
// handler's queue: the message is stored for a later attempt and acked. A
// failure to store it is returned, so the message is redelivered.
func (q *RetryQueue) Middleware(next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		produced, err := next(msg)
		if err == nil || Classify(err) != app.FailureMessage {
			return produced, err
		}
		ctx := msg.Context()
		now := time.Now()
		attempts, _ := strconv.Atoi(msg.Metadata.Get(RetryAttemptsKey))
		attempts++
		firstFailed, parseErr := time.Parse(time.RFC3339Nano, msg.Metadata.Get(FirstFailedKey))
		if parseErr != nil {
			firstFailed = now
		}
		giveUpAt := firstFailed.Add(q.cfg.MaxAge)
		if !now.Before(giveUpAt) {
			return nil, &retriesExhaustedError{reason: fmt.Sprintf("still failing %s after the first failure (%d attempts): %v",
				now.Sub(firstFailed).Round(time.Second), attempts, err)}
		}
		next := now.Add(q.delay(attempts))
		if next.After(giveUpAt) {
			next = giveUpAt // one last attempt at the maximum age
		}
		deferred := msg.Copy()
		deferred.Metadata.Set(RetryAttemptsKey, strconv.Itoa(attempts))
		deferred.Metadata.Set(FirstFailedKey, firstFailed.UTC().Format(time.RFC3339Nano))
		handler := message.HandlerNameFromCtx(ctx)
		if storeErr := q.store(ctx, handler, message.SubscribeTopicFromCtx(ctx), deferred, err.Error(), firstFailed, next); storeErr != nil {
			return nil, errors.Join(err, fmt.Errorf("defer the retry: %w", storeErr))
		}
		q.cfg.Logger.WarnContext(ctx, "message deferred", "handler", handler, "message_uuid", msg.UUID,
			"attempts", attempts, "next_attempt_at", next.UTC().Format(time.RFC3339), "reason", err.Error())
		return nil, nil // what a failed handler produced is not published
	}
}

// delay is the wait after the nth failed attempt, give or take a fifth, so
// that messages refused together are not all retried at once.
func (q *RetryQueue) delay(attempts int) time.Duration {
	d := q.cfg.FirstDelay
	for i := 1; i < attempts && d < q.cfg.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, q.cfg.MaxDelay)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// store replaces any earlier entry of this handler and message.
func (q *RetryQueue) store(ctx context.Context, handler, topic string, msg *message.Message, reason string, firstFailed, next time.Time) error {
	metadata, err := json.Marshal(msg.Metadata)
	if err != nil {
		return err
	}
	attempts, _ := strconv.Atoi(msg.Metadata.Get(RetryAttemptsKey))
	// Not canceled halfway by a stop: the message is acked only once stored.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), retryStoreTimeout)
	defer cancel()
	tx, err := q.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	d := q.dialect
	if _, err := tx.ExecContext(ctx, d.Rebind(`DELETE FROM message_retries WHERE handler = ? AND message_uuid = ?`),
		handler, msg.UUID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, d.Rebind(`INSERT INTO message_retries
		(id, handler, topic, message_uuid, payload, metadata, reason, attempts, first_failed_ms, next_attempt_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		uuid.Must(uuid.NewV7()).String(), handler, topic, msg.UUID, []byte(msg.Payload), string(metadata),
		reason, attempts, firstFailed.UnixMilli(), next.UnixMilli()); err != nil {
		return err
	}
	return tx.Commit()
}

// List returns the messages waiting for a retry, the next due first.
func (q *RetryQueue) List(ctx context.Context) ([]DeferredMessage, error) {
	rows, err := q.cfg.DB.QueryContext(ctx, `SELECT id, topic, handler, attempts, first_failed_ms, next_attempt_ms,
		reason, length(payload) FROM message_retries ORDER BY next_attempt_ms, id`)
	if err != nil {
		return nil, fmt.Errorf("list retries: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []DeferredMessage
	for rows.Next() {
		var (
			m               DeferredMessage
			firstMs, nextMs int64
		)
		if err := rows.Scan(&m.ID, &m.Topic, &m.Handler, &m.Attempts, &firstMs, &nextMs, &m.Reason, &m.Bytes); err != nil {
			return nil, err
		}
		m.FirstFailed, m.NextAttempt = time.UnixMilli(firstMs).UTC(), time.UnixMilli(nextMs).UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}

// Run gives due messages back to their handlers until ctx ends.
func (q *RetryQueue) Run(ctx context.Context) {
	var lastWarned time.Time
	for {
		n, err := q.redeliverDue(ctx)
		if err != nil && ctx.Err() == nil && time.Since(lastWarned) > retryWarnInterval {
			// Once in a while: through a database outage, every pass fails.
			q.cfg.Logger.WarnContext(ctx, "retry queue: redelivery failed", "error", err)
			lastWarned = time.Now()
		}
		if n == retryBatch && err == nil {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(q.poll): // look again
		}
	}
}

const (
	// retryBatch is how many due messages one pass takes.
	retryBatch = 32
	// retryLease is how long a pass holds the messages it took: if it dies
	// before they are published, they are due again after it.
	retryLease = time.Minute
	// retryWarnInterval spaces the warnings of failing passes.
	retryWarnInterval = 30 * time.Second
	// retryStoreTimeout bounds storing a message for later, which a stop
	// does not cancel.
	retryStoreTimeout = 10 * time.Second
)

type dueMessage struct {
	id, handler, topic string
	msg                *message.Message
}

// redeliverDue publishes the due messages to their topics, each marked for
// its handler alone, and deletes each once published. A message that fails
// again meanwhile has been stored anew under another id, which stays.
func (q *RetryQueue) redeliverDue(ctx context.Context) (int, error) {
	if q.cfg.Publisher == nil {
		return 0, errors.New("retry queue: no publisher")
	}
	due, err := q.takeDue(ctx)
	if err != nil {
		return 0, err
	}
	for _, m := range due {
		if err := q.cfg.Publisher.Publish(m.topic, m.msg); err != nil {
			return len(due), fmt.Errorf("redeliver to %s: %w", m.handler, err) // due again after the lease
		}
		if _, err := q.cfg.DB.ExecContext(context.WithoutCancel(ctx),
			q.dialect.Rebind(`DELETE FROM message_retries WHERE id = ?`), m.id); err != nil {
			return len(due), fmt.Errorf("delete a redelivered retry: %w", err) // delivered again: handlers are idempotent
		}
	}
	return len(due), nil
}

// takeDue leases the due messages to this process.
func (q *RetryQueue) takeDue(ctx context.Context) ([]dueMessage, error) {
	tx, err := q.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()
	now := time.Now()
	query := `SELECT id, handler, topic, message_uuid, payload, metadata FROM message_retries
		WHERE next_attempt_ms <= ? ORDER BY next_attempt_ms LIMIT ` + strconv.Itoa(retryBatch) + q.dialect.LockRows(true)
	due, err := scanDue(tx.QueryContext(ctx, q.dialect.Rebind(query), now.UnixMilli()))
	if err != nil {
		return nil, err
	}
	for _, m := range due {
		if _, err := tx.ExecContext(ctx, q.dialect.Rebind(`UPDATE message_retries SET next_attempt_ms = ? WHERE id = ?`),
			now.Add(retryLease).UnixMilli(), m.id); err != nil {
			return nil, err
		}
	}
	return due, tx.Commit()
}

// scanDue reads the rows of takeDue's query.
func scanDue(rows *sql.Rows, err error) ([]dueMessage, error) {
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var due []dueMessage
	for rows.Next() {
		var (
			m        dueMessage
			id       string
			payload  []byte
			metadata string
		)
		if err := rows.Scan(&m.id, &m.handler, &m.topic, &id, &payload, &metadata); err != nil {
			return nil, err
		}
		m.msg = message.NewMessage(id, payload)
		if err := json.Unmarshal([]byte(metadata), &m.msg.Metadata); err != nil {
			return nil, fmt.Errorf("metadata of retry %s: %w", m.id, err)
		}
		m.msg.Metadata.Set(ForHandlerKey, m.handler)
		due = append(due, m)
	}
	return due, rows.Err()
}

// ForNamedHandler acknowledges, untouched, a message redelivered for
// another handler of its topic (ForHandlerKey): a retry or a requeue
// published to a topic reaches every handler subscribed to it.
func ForNamedHandler(next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		if only := msg.Metadata.Get(ForHandlerKey); only != "" && only != message.HandlerNameFromCtx(msg.Context()) {
			return nil, nil
		}
		return next(msg)
	}
}
