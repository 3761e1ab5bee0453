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
//
// A notification wakes one waiting subscriber of each consumer group of the
// topic, not all of them: every insert puts a row for each group, and the
// others would each read the queue for nothing. A subscriber that finds a
// message twice in a row (a backlog) wakes one more of its group, so a
// backlog is read by every subscriber of the group within a few messages.
type Wakeup struct {
	mu      sync.Mutex
	seq     map[string]uint64              // notifications seen, per topic
	waiting map[string]map[string][]waiter // per topic and group, first come first woken
	cancel  context.CancelFunc
	done    chan struct{}
}

// waiter is one subscriber waiting for a notification: wake is closed to
// wake it.
type waiter struct{ wake chan struct{} }

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
	w := &Wakeup{seq: map[string]uint64{}, waiting: map[string]map[string][]waiter{}, done: make(chan struct{})}
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

// wake counts a notification of topic and wakes the first waiting
// subscriber of each of its groups.
func (w *Wakeup) wake(topic string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq[topic]++
	for group := range w.waiting[topic] {
		w.wakeOneLocked(topic, group)
	}
}

// wakeOne wakes the first waiting subscriber of topic's group, if any.
func (w *Wakeup) wakeOne(topic, group string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.wakeOneLocked(topic, group)
}

func (w *Wakeup) wakeOneLocked(topic, group string) {
	queue := w.waiting[topic][group]
	if len(queue) == 0 {
		return
	}
	close(queue[0].wake)
	w.waiting[topic][group] = queue[1:]
}

// wakeAll wakes every waiting subscriber, and counts a notification of
// every topic: one busy meanwhile reads again before it waits.
func (w *Wakeup) wakeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for topic := range w.seq {
		w.seq[topic]++
	}
	for topic, groups := range w.waiting {
		if _, counted := w.seq[topic]; !counted {
			w.seq[topic]++
		}
		for group, queue := range groups {
			for _, waiting := range queue {
				close(waiting.wake)
			}
			delete(groups, group)
		}
		delete(w.waiting, topic)
	}
}

// notifications returns the topic's notification count.
func (w *Wakeup) notifications(topic string) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seq[topic]
}

// wait queues a subscriber of topic's group unless a notification came
// after seen: it returns a channel closed once the subscriber is woken, and
// leave, which takes it out of the queue when it stops waiting unwoken.
func (w *Wakeup) wait(topic, group string, seen uint64) (woken <-chan struct{}, leave func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	me := waiter{wake: make(chan struct{})}
	if w.seq[topic] != seen { // something committed since the last poll started
		close(me.wake)
		return me.wake, func() {}
	}
	if w.waiting[topic] == nil {
		w.waiting[topic] = map[string][]waiter{}
	}
	w.waiting[topic][group] = append(w.waiting[topic][group], me)
	return me.wake, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		queue := w.waiting[topic][group]
		for i, other := range queue {
			if other.wake == me.wake {
				w.waiting[topic][group] = append(queue[:i:i], queue[i+1:]...)
				return
			}
		}
	}
}

// backoff is a watermill-sql BackoffManager for one subscriber of topic's
// group: after an empty poll, or one that drained the queue (drained, when
// not nil, says the last select read less than a batch) with nothing
// committed since, it waits to be woken, or for IdlePollInterval; errors
// are handled as by default.
func (w *Wakeup) backoff(topic, group string, retryInterval time.Duration, drained func() bool) wsql.BackoffManager {
	return &wakeupBackoff{wakeup: w, topic: topic, group: group, drained: drained,
		errors: wsql.NewDefaultBackoffManager(IdlePollInterval, retryInterval)}
}

type wakeupBackoff struct {
	wakeup       *Wakeup
	topic, group string
	drained      func() bool
	errors       wsql.BackoffManager
	seen         uint64 // the notification count when the last poll started
	found        bool   // the last poll found a message
}

func (b *wakeupBackoff) HandleError(logger watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	if err != nil || (!noMsg && (b.drained == nil || !b.drained())) {
		if err == nil && b.found { // a backlog: one more reader
			b.wakeup.wakeOne(b.topic, b.group)
		}
		b.found = err == nil
		b.seen = b.wakeup.notifications(b.topic)
		return b.errors.HandleError(logger, noMsg, err)
	}
	// Empty, or drained: what commits from now on notifies, and what
	// committed meanwhile has (wait returns at once).
	b.found = false
	woken, leave := b.wakeup.wait(b.topic, b.group, b.seen)
	select {
	case <-woken:
	case <-b.wakeup.done:
	case <-time.After(IdlePollInterval):
	}
	leave()
	b.seen = b.wakeup.notifications(b.topic)
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
