// Package testfake holds the tests' doubles of what the application calls
// out to, one of each for every package's tests.
package testfake

import (
	"context"
	"maps"
	"strings"
	"sync"

	"github.com/onboard/onboard/app/event"
)

// Mailer is an event.Mailer that keeps what it is asked to send. Its first
// Failures sends fail with FailWith, and every send to an address of
// Refuse (as typed) with its error; Gate, when set, holds every send until
// it is closed (or the send's context ends), and Entered receives a value,
// when it has room, each time a send starts.
type Mailer struct {
	Failures int
	FailWith error
	Refuse   map[string]error
	Gate     chan struct{}
	Entered  chan struct{}

	mu         sync.Mutex
	sent       []event.Mail
	attempts   int
	attemptsTo map[string]int
}

// Send records the email, or fails as Failures says.
func (m *Mailer) Send(ctx context.Context, mail event.Mail) error {
	if m.Entered != nil {
		select {
		case m.Entered <- struct{}{}:
		default:
		}
	}
	if m.Gate != nil {
		select {
		case <-m.Gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attempts++
	if m.attemptsTo == nil {
		m.attemptsTo = map[string]int{}
	}
	m.attemptsTo[mail.To]++
	if err, refused := m.Refuse[mail.To]; refused {
		return err
	}
	if m.attempts <= m.Failures {
		return m.FailWith
	}
	m.sent = append(m.sent, mail)
	return nil
}

// Mails are the emails sent so far.
func (m *Mailer) Mails() []event.Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]event.Mail(nil), m.sent...)
}

// To are the emails sent to address, in any letter case.
func (m *Mailer) To(address string) []event.Mail {
	var out []event.Mail
	for _, mail := range m.Mails() {
		if strings.EqualFold(mail.To, address) {
			out = append(out, mail)
		}
	}
	return out
}

// Count is how many emails were sent.
func (m *Mailer) Count() int { return len(m.Mails()) }

// Attempts is how many sends were asked for, failed ones included.
func (m *Mailer) Attempts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.attempts
}

// AttemptsByRecipient is how many sends were asked for to each address
// (as typed), failed ones included.
func (m *Mailer) AttemptsByRecipient() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.attemptsTo)
}
