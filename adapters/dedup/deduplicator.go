package dedup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/adapters/userdb"
	"github.com/onboard/onboard/app/event"
)

// Deduplicator runs an effect at most once per (handler, key) with a claim
// in processed_messages: a run first claims the key for a lease, runs the
// effect with no transaction open (an SMTP send can take seconds, and an open
// PostgreSQL transaction would hold back every watermill-sql reader), then
// marks the key done. A failed effect releases its claim. A concurrent run
// waits while the claim is live, then does nothing if the key is done, or
// claims it if it was released or its lease ran out (its holder crashed).
//
// A claim's event is opened with the user's key, which on PostgreSQL the
// claim's own statement reads: sealing adds no trip to the database.
//
// On the sql transport on PostgreSQL the "done" mark is held until the
// message's ack at most (see heldMarks) and goes with the next claim, in
// its round trip and its commit: a backlog's emails so cost one commit
// each, not two.
type Deduplicator struct {
	db      *sql.DB
	lease   time.Duration
	queries dedupQueries
	// users opens the claims' events; nil: claims carry none.
	users *userdb.UserStore
	// onTakeOver is told of each claim taken over, by its handler; nil: none.
	onTakeOver func(handler string)
	// held keeps the "done" marks not written yet; nil: each is written
	// at once (MySQL, SQLite).
	held *heldMarks
	// onMarkLost is told of held marks that could not be written; nil: none.
	onMarkLost func(err error)
}

// OnTakeOver returns the deduplicator telling count of each claim it takes
// over once its lease ran out (its holder crashed or hung), by handler.
func (d Deduplicator) OnTakeOver(count func(handler string)) Deduplicator {
	d.onTakeOver = count
	return d
}

// OnMarkLost returns the deduplicator telling lost of held "done" marks
// that no claim took and that could not be written on their own before
// their claims' leases ended: a redelivery of their messages would repeat
// the effect.
func (d Deduplicator) OnMarkLost(lost func(err error)) Deduplicator {
	d.onMarkLost = lost
	return d
}

type dedupQueries struct {
	claim, takeOver, state, release, done string
	// claimReadingKey is claim that also reads the user's wrapped key
	// (the key read's arguments after claim's), where the database runs
	// both in one statement; "": it does not.
	claimReadingKey string
}

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

// NewDeduplicator returns the deduplicator, which opens the claims' events
// with the keys of users (nil: claims carry no event).
func NewDeduplicator(db *sql.DB, users *userdb.UserStore) Deduplicator {
	d := sqldb.Of(db)
	where := ` WHERE handler = ? AND message_key = ?`
	claim := d.InsertOrIgnore(`INSERT INTO processed_messages
			(handler, message_key, state, claimed_until_ms) VALUES (?, ?, '`+stateClaimed+`', ?)`, "handler")
	claimReadingKey, _ := d.InsertAndSelect(claim, userdb.UserKeyQuery) // "" where no statement does both
	var held *heldMarks
	if d.Is(sqldb.Postgres) {
		held = &heldMarks{holdFor: markHoldMax}
	}
	return Deduplicator{db: db, lease: ClaimLease, users: users, held: held, queries: dedupQueries{
		claim:           d.Rebind(claim),
		claimReadingKey: d.Rebind(claimReadingKey),
		takeOver: d.Rebind(`UPDATE processed_messages SET claimed_until_ms = ?` + where +
			` AND state = '` + stateClaimed + `' AND claimed_until_ms < ?`),
		state:   d.Rebind(`SELECT state FROM processed_messages` + where),
		release: d.Rebind(`DELETE FROM processed_messages` + where + ` AND state = '` + stateClaimed + `'`),
		done:    d.Rebind(`UPDATE processed_messages SET state = '` + stateDone + `'` + where),
	}}
}

// Once runs effect, its claim's event opened, unless the claim's handler
// already did its key.
func (d Deduplicator) Once(ctx context.Context, c event.Claim, effect func(ctx context.Context) error) error {
	if c.Event != nil && d.users == nil {
		return fmt.Errorf("%s: the deduplicator has no user store to open its event with", c.Handler)
	}
	for {
		claimed, done, key, err := d.claim(ctx, c)
		switch {
		case err != nil:
			return err
		case done:
			return nil
		case claimed:
			return d.run(ctx, c, key, effect)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for another run of %s: %w", c.Handler, ctx.Err())
		case <-time.After(claimPollInterval):
		}
	}
}

// run opens the claim's event with the key its claim read, runs effect,
// and marks the key done, or releases the claim when either fails.
func (d Deduplicator) run(ctx context.Context, c event.Claim, key claimedKey, effect func(ctx context.Context) error) error {
	err := d.open(ctx, c, key)
	if err == nil {
		if err = effect(ctx); err == nil {
			if d.held != nil && d.holdUntilAck(ctx, c.Handler, c.Key) {
				return nil
			}
			return d.markDone(ctx, c.Handler, c.Key)
		}
	}
	// Let the retry (or a concurrent run) do it; a release that fails
	// leaves a claim that expires with its lease.
	if _, releaseErr := d.db.ExecContext(context.WithoutCancel(ctx), d.queries.release, c.Handler, c.Key); releaseErr != nil {
		return errors.Join(err, fmt.Errorf("release claim: %w", releaseErr))
	}
	return err
}

// open opens the claim's event, if any, with the key the claim read, or
// else with the key it reads now.
func (d Deduplicator) open(ctx context.Context, c event.Claim, key claimedKey) error {
	if c.Event == nil {
		return nil
	}
	if !key.read {
		return d.users.OpenEvent(ctx, c.EventID, c.Event, nil)
	}
	return d.users.OpenEvent(ctx, c.EventID, c.Event, &key.wrapped)
}

// claimedKey is the user's wrapped key as the claim read it, when it did
// (read): a nil wrapped.Nonce when the user has no key.
type claimedKey struct {
	read    bool
	wrapped secrets.WrappedSecret
}

// markDone records that the effect happened. It keeps trying through a
// database outage for as long as the claim's lease lasts: giving up would
// let the next delivery repeat an effect that already happened.
func (d Deduplicator) markDone(ctx context.Context, handler, key string) error {
	ctx = context.WithoutCancel(ctx)
	return untilLeaseEnds(time.Now().Add(d.lease), func() error {
		_, err := d.db.ExecContext(ctx, d.queries.done, handler, key)
		return err
	})
}

// untilLeaseEnds runs write until it succeeds, fails for good, or the
// lease ends (deadline).
func untilLeaseEnds(deadline time.Time, write func() error) error {
	wait := 100 * time.Millisecond
	for {
		err := write()
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
// An insert of a claim with an event reads the user's key too where one
// statement can (key).
func (d Deduplicator) claim(ctx context.Context, c event.Claim) (claimed, done bool, key claimedKey, err error) {
	handler := c.Handler
	now := time.Now()
	until := now.Add(d.lease).UnixMilli()
	if err := ctx.Err(); err != nil {
		return false, false, key, err
	}
	// Not canceled halfway: a claim written but not seen would hold the key
	// until its lease ran out.
	writeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimWriteTimeout)
	defer cancel()
	inserted, key, err := d.insertClaim(writeCtx, c, until, d.takeHeld())
	if err != nil || inserted {
		return inserted, false, key, err
	}
	res, err := d.db.ExecContext(writeCtx, d.queries.takeOver, until, handler, c.Key, now.UnixMilli())
	if err != nil {
		return false, false, key, fmt.Errorf("take over expired claim: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		if err == nil {
			if d.onTakeOver != nil {
				d.onTakeOver(handler)
			}
		}
		return err == nil, false, key, err
	}
	var state string
	err = d.db.QueryRowContext(ctx, d.queries.state, handler, c.Key).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, key, nil // released meanwhile: claim again
	}
	if err != nil {
		return false, false, key, fmt.Errorf("read processed message: %w", err)
	}
	return false, state == stateDone, key, nil
}

// insertClaim inserts the claim unless its key is claimed already, and
// reads the user's key with it when the claim has an event and one
// statement can do both. The held marks go with it.
func (d Deduplicator) insertClaim(ctx context.Context, c event.Claim, until int64, marks []heldMark) (inserted bool, key claimedKey, err error) {
	if len(marks) > 0 {
		inserted, key, err = d.insertClaimWithMarks(ctx, c, until, marks)
		if err != nil {
			d.holdAgain(marks)
		}
		return inserted, key, err
	}
	if c.Event == nil || d.queries.claimReadingKey == "" {
		res, err := d.db.ExecContext(ctx, d.queries.claim, c.Handler, c.Key, until)
		if err != nil {
			return false, key, fmt.Errorf("claim processed message: %w", err)
		}
		n, err := res.RowsAffected()
		return n == 1, key, err
	}
	var (
		n           int
		masterKeyID sql.NullString
	)
	err = d.db.QueryRowContext(ctx, d.queries.claimReadingKey, c.Handler, c.Key, until, c.Event.StreamID()).
		Scan(&n, &masterKeyID, &key.wrapped.Nonce, &key.wrapped.Ciphertext)
	if err != nil {
		return false, key, fmt.Errorf("claim processed message: %w", err)
	}
	key.read, key.wrapped.MasterKeyID = true, masterKeyID.String
	return n == 1, key, nil
}
