package event_test

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/onboard/onboard/adapters/mail"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/event"
)

// errSMTPDown is an outage, as the SMTP mailer classes a 421: retried at
// once, then nacked and redelivered until it passes; never poisoned.
var errSMTPDown error = outage("smtp: 421 service not available")

// errNoSuchUser is the SMTP mailer's error for a 550 to the recipient: this
// message's own failure, for good.
var errNoSuchUser error = &mail.SMTPError{Step: "RCPT TO", Code: 550, Enhanced: "5.1.1"}

// errGreylisted is a refusal of one recipient, as the SMTP mailer classes
// a 4xx to one address: a failure of this message alone.
var errGreylisted error = recipientRefusal{}

type recipientRefusal struct{}

func (recipientRefusal) Error() string        { return "smtp: 450 greylisted, try again later" }
func (recipientRefusal) Failure() app.Failure { return app.FailureMessage }

// memDeduplicator honours the event.Deduplicator contract in memory: one
// lock per (handler, key), held while the effect runs, so a concurrent second
// run waits for the first; the record is kept only when the effect succeeded.
// The tests' events are in the clear: opening one leaves it as it is.
type memDeduplicator struct {
	mu    sync.Mutex
	locks map[[2]string]*sync.Mutex
	done  map[[2]string]bool
	calls atomic.Int32
}

func newMemDeduplicator() *memDeduplicator {
	return &memDeduplicator{locks: map[[2]string]*sync.Mutex{}, done: map[[2]string]bool{}}
}

func (d *memDeduplicator) Once(ctx context.Context, claim event.Claim, effect func(ctx context.Context) error) error {
	d.calls.Add(1)
	id := [2]string{claim.Handler, claim.Key}
	d.mu.Lock()
	lock, ok := d.locks[id]
	if !ok {
		lock = &sync.Mutex{}
		d.locks[id] = lock
	}
	d.mu.Unlock()

	lock.Lock()
	defer lock.Unlock()
	d.mu.Lock()
	done := d.done[id]
	d.mu.Unlock()
	if done {
		return nil
	}
	if err := effect(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	d.done[id] = true
	d.mu.Unlock()
	return nil
}

func (d *memDeduplicator) records() map[[2]string]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	records := map[[2]string]bool{}
	for id, done := range d.done {
		records[id] = done
	}
	return records
}
