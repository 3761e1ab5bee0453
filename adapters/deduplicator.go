package adapters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/onboard/onboard/adapters/sqldb"
)

// Deduplicator runs an effect at most once per (handler, key) with a claim
// in processed_messages: a run first claims the key for a lease, runs the
// effect with no transaction open (an SMTP send can take seconds, and an open
// PostgreSQL transaction would hold back every watermill-sql reader), then
// marks the key done. A failed effect releases its claim. A concurrent run
// waits while the claim is live, then does nothing if the key is done, or
// claims it if it was released or its lease ran out (its holder crashed).
type Deduplicator struct {
	db      *sql.DB
	lease   time.Duration
	queries dedupQueries
	// takenOver counts the claims taken over; nil: not counted (WithMetrics).
	takenOver *prometheus.CounterVec
}

type dedupQueries struct{ claim, takeOver, state, release, done string }

// ClaimLease is how long a claim holds before another run may take it over;
// it must outlast the slowest effect (the SMTP client gives up after 10 s).
const ClaimLease = 30 * time.Second

// claimPollInterval is how often a run waiting on another's claim looks again.
const claimPollInterval = 20 * time.Millisecond

// claimWriteTimeout bounds a claim write, which is not canceled with its message.
const claimWriteTimeout = 10 * time.Second

const (
	stateClaimed = "claimed"
	stateDone    = "done"
)

// NewDeduplicator returns the deduplicator.
func NewDeduplicator(db *sql.DB) Deduplicator {
	d := sqldb.Of(db)
	where := ` WHERE handler = ? AND message_key = ?`
	return Deduplicator{db: db, lease: ClaimLease, queries: dedupQueries{
		claim: d.Rebind(d.InsertOrIgnore(`INSERT INTO processed_messages
			(handler, message_key, state, claimed_until_ms) VALUES (?, ?, '`+stateClaimed+`', ?)`, "handler")),
		takeOver: d.Rebind(`UPDATE processed_messages SET claimed_until_ms = ?` + where +
			` AND state = '` + stateClaimed + `' AND claimed_until_ms < ?`),
		state:   d.Rebind(`SELECT state FROM processed_messages` + where),
		release: d.Rebind(`DELETE FROM processed_messages` + where + ` AND state = '` + stateClaimed + `'`),
		done:    d.Rebind(`UPDATE processed_messages SET state = '` + stateDone + `'` + where),
	}}
}

// Once runs effect unless handler already did key.
func (d Deduplicator) Once(ctx context.Context, handler, key string, effect func(ctx context.Context) error) error {
	for {
		claimed, done, err := d.claim(ctx, handler, key)
		switch {
		case err != nil:
			return err
		case done:
			return nil
		case claimed:
			return d.run(ctx, handler, key, effect)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for another run of %s: %w", handler, ctx.Err())
		case <-time.After(claimPollInterval):
		}
	}
}

func (d Deduplicator) run(ctx context.Context, handler, key string, effect func(ctx context.Context) error) error {
	if err := effect(ctx); err != nil {
		// Let the retry (or a concurrent run) do it; a release that fails
		// leaves a claim that expires with its lease.
		if _, releaseErr := d.db.ExecContext(context.WithoutCancel(ctx), d.queries.release, handler, key); releaseErr != nil {
			return errors.Join(err, fmt.Errorf("release claim: %w", releaseErr))
		}
		return err
	}
	return d.markDone(ctx, handler, key)
}

// markDone records that the effect happened. It keeps trying through a
// database outage for as long as the claim's lease lasts: giving up would
// let the next delivery repeat an effect that already happened.
func (d Deduplicator) markDone(ctx context.Context, handler, key string) error {
	ctx = context.WithoutCancel(ctx)
	deadline := time.Now().Add(d.lease)
	wait := 100 * time.Millisecond
	for {
		_, err := d.db.ExecContext(ctx, d.queries.done, handler, key)
		if err == nil {
			return nil
		}
		if !sqldb.Transient(err) || time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("mark processed: %w", err)
		}
		time.Sleep(wait) // backoff between attempts
		wait = min(2*wait, 2*time.Second)
	}
}

// claim tries to own the key: by inserting it, or by taking over a claim
// whose lease ran out. done reports that the key was already processed.
func (d Deduplicator) claim(ctx context.Context, handler, key string) (claimed, done bool, err error) {
	now := time.Now()
	until := now.Add(d.lease).UnixMilli()
	if err := ctx.Err(); err != nil {
		return false, false, err
	}
	// Not canceled halfway: a claim written but not seen would hold the key
	// until its lease ran out.
	writeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimWriteTimeout)
	defer cancel()
	res, err := d.db.ExecContext(writeCtx, d.queries.claim, handler, key, until)
	if err != nil {
		return false, false, fmt.Errorf("claim processed message: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err == nil, false, err
	}
	res, err = d.db.ExecContext(writeCtx, d.queries.takeOver, until, handler, key, now.UnixMilli())
	if err != nil {
		return false, false, fmt.Errorf("take over expired claim: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		if err == nil {
			d.countTakeOver(handler)
		}
		return err == nil, false, err
	}
	var state string
	err = d.db.QueryRowContext(ctx, d.queries.state, handler, key).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, nil // released meanwhile: claim again
	}
	if err != nil {
		return false, false, fmt.Errorf("read processed message: %w", err)
	}
	return false, state == stateDone, nil
}
