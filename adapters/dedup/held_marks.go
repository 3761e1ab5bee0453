package dedup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/jackc/pgx/v5"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/app/event"
)

// heldMarks are "done" marks not written yet. A mark must be durable
// before its message's ack: a message acked while its mark is lost would
// leave a claim that a later copy of the event takes over once its lease
// ran out, repeating the effect. A message handed over in the transaction
// that acks it (the sql transport on PostgreSQL, up to a batch of them in
// one transaction) is acked only when that transaction commits, so its
// mark may wait until then, and go with the process's next claim, in its
// round trip and its commit: a backlog's effects then cost one commit
// each, not two. The transaction ends only once its marks are written: by
// a claim, after markHoldMax, or by the transaction itself.
type heldMarks struct {
	holdFor time.Duration // markHoldMax but in tests

	mu    sync.Mutex
	marks []heldMark
	timer *time.Timer // writes the marks when no claim took them; nil when none are held
}

type heldMark struct {
	handler, key string
	until        time.Time     // the claim's lease ends
	durable      chan struct{} // closed once the mark is written
}

// txEnd is the transaction that acks a message, which runs f before it
// ends (watermillsql's on PostgreSQL).
type txEnd interface {
	BeforeEnd(f func() error) error
}

// markHoldMax is how long a "done" mark waits for a claim to go with: a
// backlog's next claim comes within it. Longer, a crash would find more
// emails sent whose marks were not written (5 ms sent several times as
// many again in the kill scenario).
const markHoldMax = 500 * time.Microsecond

// holdUntilAck holds the mark when the message comes in a transaction
// that acks it and runs what it is given before it ends; false: it does
// not, and the mark is the caller's to write.
func (d Deduplicator) holdUntilAck(ctx context.Context, handler, key string) bool {
	tx, ok := wsql.TxFromContext(ctx)
	if !ok {
		return false
	}
	mark := heldMark{handler: handler, key: key, until: time.Now().Add(d.lease), durable: make(chan struct{})}
	end, ok := tx.(txEnd)
	if !ok || end.BeforeEnd(d.untilDurable(mark)) != nil {
		return false
	}
	d.holdAgain([]heldMark{mark})
	return true
}

// untilDurable writes the marks held until the mark is written: by that
// write, or by another in flight meanwhile (a claim carrying it, the
// timer), or by a next one once such a write failed and held them again;
// it gives up once the mark's claim has expired.
func (d Deduplicator) untilDurable(mark heldMark) func() error {
	return func() error {
		for {
			select {
			case <-mark.durable:
				return nil
			default:
			}
			if err := d.writeHeldNow(); err != nil {
				return err
			}
			select {
			case <-mark.durable:
				return nil
			case <-time.After(time.Millisecond): // written elsewhere, or held again
			}
			if time.Now().After(mark.until) {
				return errors.New("mark processed: not written before the claim's lease ended")
			}
		}
	}
}

// written closes the marks' durable channels.
func written(marks []heldMark) {
	for _, m := range marks {
		close(m.durable)
	}
}

// holdAgain keeps marks, ahead of those held since.
func (d Deduplicator) holdAgain(marks []heldMark) {
	d.held.mu.Lock()
	defer d.held.mu.Unlock()
	d.held.marks = append(marks, d.held.marks...)
	if d.held.timer == nil {
		d.held.timer = time.AfterFunc(d.held.holdFor, d.writeHeld)
	}
}

// takeHeld returns the marks held, which its caller now writes.
func (d Deduplicator) takeHeld() []heldMark {
	if d.held == nil {
		return nil
	}
	d.held.mu.Lock()
	defer d.held.mu.Unlock()
	marks := d.held.marks
	d.held.marks = nil
	if d.held.timer != nil {
		d.held.timer.Stop()
		d.held.timer = nil
	}
	return marks
}

// writeHeld writes the marks that no claim took.
func (d Deduplicator) writeHeld() {
	if err := d.writeHeldNow(); err != nil && d.onMarkLost != nil {
		d.onMarkLost(err)
	}
}

// writeHeldNow writes the marks held, through an outage for as long as
// their leases last.
func (d Deduplicator) writeHeldNow() error {
	marks := d.takeHeld()
	if len(marks) == 0 {
		return nil
	}
	deadline := marks[0].until
	for _, m := range marks[1:] {
		if m.until.Before(deadline) {
			deadline = m.until
		}
	}
	err := untilLeaseEnds(deadline, func() error { return d.writeMarks(context.Background(), marks) })
	if err != nil {
		// Held again for the transactions that wait for them, while their
		// claims hold.
		now := time.Now()
		var live []heldMark
		for _, m := range marks {
			if m.until.After(now) {
				live = append(live, m)
			}
		}
		if len(live) > 0 {
			d.holdAgain(live)
		}
		return err
	}
	written(marks)
	return nil
}

// Close writes the marks held, once: a process that stops leaves none.
func (d Deduplicator) Close() error {
	marks := d.takeHeld()
	if len(marks) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), claimWriteTimeout)
	defer cancel()
	if err := d.writeMarks(ctx, marks); err != nil {
		return fmt.Errorf("mark processed: %w", err)
	}
	written(marks)
	return nil
}

// writeMarks writes the marks in one round trip and one commit.
func (d Deduplicator) writeMarks(ctx context.Context, marks []heldMark) error {
	return sqldb.OnPooledPgx(ctx, d.db, func(pg *pgx.Conn) error {
		return pg.SendBatch(ctx, d.marksBatch(marks)).Close()
	})
}

// marksBatch queues one UPDATE per mark: a statement each PostgreSQL plans
// once per connection, where one for all marks (an IN list of pairs) is
// planned again at every run.
func (d Deduplicator) marksBatch(marks []heldMark) *pgx.Batch {
	batch := &pgx.Batch{}
	for _, m := range marks {
		batch.Queue(d.queries.done, m.handler, m.key)
	}
	return batch
}

// insertClaimWithMarks writes the marks and inserts the claim in one
// round trip and one implicit transaction (a pgx batch): both or neither.
func (d Deduplicator) insertClaimWithMarks(ctx context.Context, c event.Claim, until int64, marks []heldMark) (inserted bool, key claimedKey, err error) {
	readsKey := c.Event != nil && d.queries.claimReadingKey != ""
	err = sqldb.OnPooledPgx(ctx, d.db, func(pg *pgx.Conn) error {
		batch := d.marksBatch(marks)
		if readsKey {
			batch.Queue(d.queries.claimReadingKey, c.Handler, c.Key, until, c.Event.StreamID())
		} else {
			batch.Queue(d.queries.claim, c.Handler, c.Key, until)
		}
		results := pg.SendBatch(ctx, batch)
		err := func() error {
			for range marks {
				if _, err := results.Exec(); err != nil {
					return err
				}
			}
			if !readsKey {
				tag, err := results.Exec()
				inserted = tag.RowsAffected() == 1
				return err
			}
			var (
				n           int
				masterKeyID sql.NullString
			)
			if err := results.QueryRow().Scan(&n, &masterKeyID, &key.wrapped.Nonce, &key.wrapped.Ciphertext); err != nil {
				return err
			}
			inserted = n == 1
			key.read, key.wrapped.MasterKeyID = true, masterKeyID.String
			return nil
		}()
		if closeErr := results.Close(); err == nil {
			err = closeErr
		}
		return err
	})
	if err != nil {
		return false, claimedKey{}, fmt.Errorf("claim processed message: %w", err)
	}
	written(marks)
	return inserted, key, nil
}
