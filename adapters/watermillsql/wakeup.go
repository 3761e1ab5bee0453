package watermillsql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/onboard/onboard/adapters/sqldb"
)

// wakeupChannel is the PostgreSQL NOTIFY channel of the queue tables: a
// trigger on each (see QueueSchema) notifies the topic at every commit that
// inserted into it.
const wakeupChannel = "watermill_queue"

// IdlePollInterval is how often an idle subscriber woken by notifications
// still polls, in case a notification was missed (a LISTEN connection lost).
const IdlePollInterval = time.Second

// Wakeup LISTENs for the queue tables' notifications on a PostgreSQL
// connection of its own and wakes the subscribers of the notified topic, so
// that they need not poll often: a message is read as soon as it commits,
// and an idle service costs its database little.
type Wakeup struct {
	mu      sync.Mutex
	seq     map[string]uint64        // notifications seen, per topic
	waiting map[string]chan struct{} // closed at the topic's next notification
	cancel  context.CancelFunc
	done    chan struct{}
}

// NewWakeup starts listening with the connection settings of db, a
// PostgreSQL handle; it reconnects by itself until closed.
func NewWakeup(db *sql.DB) (*Wakeup, error) {
	if !sqldb.Of(db).Notifies() {
		return nil, errors.New("notifications need PostgreSQL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	var config *pgx.ConnConfig
	err = conn.Raw(func(driverConn any) error {
		config = driverConn.(*stdlib.Conn).Conn().Config().Copy()
		return nil
	})
	_ = conn.Close()
	if err != nil {
		return nil, err
	}
	w := &Wakeup{seq: map[string]uint64{}, waiting: map[string]chan struct{}{}, done: make(chan struct{})}
	var listenCtx context.Context
	listenCtx, w.cancel = context.WithCancel(context.Background())
	go w.listen(listenCtx, config)
	return w, nil
}

// Close stops listening and releases every waiting subscriber.
func (w *Wakeup) Close() error {
	w.cancel()
	<-w.done
	return nil
}

func (w *Wakeup) listen(ctx context.Context, config *pgx.ConnConfig) {
	defer close(w.done)
	defer w.wakeAll()
	for ctx.Err() == nil {
		if err := w.listenOnce(ctx, config); err != nil && ctx.Err() == nil {
			// Subscribers fall back to IdlePollInterval meanwhile.
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (w *Wakeup) listenOnce(ctx context.Context, config *pgx.ConnConfig) error {
	config = config.Copy()
	// The copy still points at the pool connection's notification buffer.
	config.OnNotification = nil
	conn, err := pgx.ConnectConfig(ctx, config)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err := conn.Exec(ctx, "LISTEN "+wakeupChannel); err != nil {
		return err
	}
	w.wakeAll() // anything committed while not listening
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n != nil {
			w.wake(n.Payload)
		}
	}
}

func (w *Wakeup) wake(topic string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq[topic]++
	if ch, ok := w.waiting[topic]; ok {
		close(ch)
		delete(w.waiting, topic)
	}
}

func (w *Wakeup) wakeAll() {
	w.mu.Lock()
	topics := make([]string, 0, len(w.waiting))
	for topic := range w.waiting {
		topics = append(topics, topic)
	}
	w.mu.Unlock()
	for _, topic := range topics {
		w.wake(topic)
	}
}

// next returns the topic's notification count and a channel closed at its
// next notification.
func (w *Wakeup) next(topic string) (uint64, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch, ok := w.waiting[topic]
	if !ok {
		ch = make(chan struct{})
		w.waiting[topic] = ch
	}
	return w.seq[topic], ch
}

// backoff is a watermill-sql BackoffManager for one subscriber of topic:
// after an empty poll it waits for the topic's next notification, or for
// IdlePollInterval; errors are handled as by default.
func (w *Wakeup) backoff(topic string, retryInterval time.Duration) wsql.BackoffManager {
	return &wakeupBackoff{wakeup: w, topic: topic,
		errors: wsql.NewDefaultBackoffManager(IdlePollInterval, retryInterval)}
}

type wakeupBackoff struct {
	wakeup *Wakeup
	topic  string
	errors wsql.BackoffManager
	seen   uint64 // the notification count when the last poll started
}

func (b *wakeupBackoff) HandleError(logger watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	seq, notified := b.wakeup.next(b.topic)
	if err != nil || !noMsg {
		b.seen = seq
		return b.errors.HandleError(logger, noMsg, err)
	}
	if seq == b.seen { // nothing committed since the empty poll started
		select {
		case <-notified:
		case <-b.wakeup.done:
		case <-time.After(IdlePollInterval):
		}
	}
	b.seen, _ = b.wakeup.next(b.topic)
	return 0
}

// notifyTriggerQueries make inserts into the queue table notify its topic.
// They take no lock once the trigger exists: CREATE TRIGGER would wait for
// every transaction writing the table. watermill-sql runs schema queries a
// second time outside their transaction, so a first creation may race: a
// duplicate is ignored (and no OR REPLACE, whose updates collide).
func notifyTriggerQueries(queueTable, topic string) []wsql.Query {
	return []wsql.Query{{Query: fmt.Sprintf(`DO $do$ BEGIN
		IF NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'watermill_queue_notify') THEN
			BEGIN
				CREATE FUNCTION watermill_queue_notify() RETURNS trigger LANGUAGE plpgsql AS $f$
					BEGIN PERFORM pg_notify('%s', TG_ARGV[0]); RETURN NULL; END $f$;
			EXCEPTION WHEN duplicate_function OR unique_violation THEN NULL;
			END;
		END IF;
		IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'notify_insert' AND tgrelid = %s::regclass) THEN
			BEGIN
				CREATE TRIGGER notify_insert AFTER INSERT ON %s
					FOR EACH STATEMENT EXECUTE FUNCTION watermill_queue_notify('%s');
			EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
			END;
		END IF;
	END $do$`, wakeupChannel, "'"+queueTable+"'", queueTable, topic)}}
}
