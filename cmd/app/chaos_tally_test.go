//go:build chaos

package main

// The final count of the fault suite (chaos_test.go): what the database and
// the SMTP server hold, the wait until it settles, and the count and report
// of every registration's effects.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testenv"
)

// chaosState is what the database and the SMTP server hold.
type chaosState struct {
	owner   map[string]string // email key → user id
	creds   map[string]bool   // user id
	events  map[string]int    // user id → events in its stream
	grants  map[string]int    // user id → points entries
	emails  map[string]int    // lower-cased recipient → distinct messages (by Message-ID)
	claimed int               // effects claimed and not marked done
	outbox  int               // messages not yet forwarded
	total   int               // emails in all
	resent  int               // copies of a message already received (same Message-ID)
}

func countRows(db *testenv.DB, query string, args ...any) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	err := db.QueryRowContext(ctx, db.Rebind(query), args...).Scan(&n)
	return n, err
}

// keyCounts runs a query of (key, count) rows.
func keyCounts(db *testenv.DB, query string) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	out := map[string]int{}
	for rows.Next() {
		var key string
		var n int
		if err := rows.Scan(&key, &n); err != nil {
			return nil, err
		}
		out[key] = n
	}
	return out, rows.Err()
}

// keyOwners reads a two-column result as a map.
func keyOwners(ctx context.Context, db *testenv.DB, query string) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	out := map[string]string{}
	for rows.Next() {
		var key, id string
		if err := rows.Scan(&key, &id); err != nil {
			return nil, err
		}
		out[key] = id
	}
	return out, rows.Err()
}

// snapshot reads the state; it never fails the test, so that it can run
// inside a wait.
func (e *chaosEnv) snapshot() (*chaosState, error) {
	s := &chaosState{owner: map[string]string{}, creds: map[string]bool{}, emails: map[string]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// user_emails keys an address by its hash under the server's email
	// lookup key, and the users row holds it encrypted: the addresses the
	// scenario made are hashed to find their owners.
	lookupKey, err := e.keys.Secret(ctx, secrets.EmailLookupSecret)
	if err != nil {
		return nil, err
	}
	byHash, err := keyOwners(ctx, e.DB, `SELECT email_key, user_id FROM user_emails`)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	for _, address := range e.addresses {
		mac := hmac.New(sha256.New, lookupKey)
		mac.Write([]byte(address))
		if id, ok := byHash[hex.EncodeToString(mac.Sum(nil))]; ok {
			s.owner[address] = id
		}
	}
	e.mu.Unlock()
	creds, err := keyCounts(e.DB, `SELECT user_id, count(*) FROM credentials GROUP BY user_id`)
	if err != nil {
		return nil, err
	}
	for id := range creds {
		s.creds[id] = true
	}
	if s.events, err = keyCounts(e.DB, `SELECT stream_id, count(*) FROM events GROUP BY stream_id`); err != nil {
		return nil, err
	}
	if s.grants, err = keyCounts(e.DB, `SELECT user_id, count(*) FROM points_entries GROUP BY user_id`); err != nil {
		return nil, err
	}
	if s.claimed, err = countRows(e.DB, `SELECT count(*) FROM processed_messages WHERE state <> 'done'`); err != nil {
		return nil, err
	}
	outbox := e.DB.Quote(watermillsql.MessagesTable(e.DB.DB, transport.OutboxTopic))
	if s.outbox, err = countRows(e.DB, `SELECT count(*) FROM `+outbox+` WHERE consumer_group <> ?`, e2e.TapGroup); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i, m := range e.SMTP.Messages() {
		s.total++
		id := m.MessageID()
		if id == "" {
			id = fmt.Sprintf("without Message-ID %d", i)
		}
		if seen[id] {
			s.resent++
			continue
		}
		seen[id] = true
		for _, to := range m.To {
			s.emails[strings.ToLower(to)]++
		}
	}
	return s, nil
}

// unsettled says what keeps the state from being settled: a stored
// registration without its email or grant, an effect half done, a message
// in the outbox, anything that could still add an effect; "" when nothing.
func (s *chaosState) unsettled(users []*chaosUser) string {
	var left []string
	if s.claimed > 0 {
		left = append(left, fmt.Sprintf("%d effects claimed and not done", s.claimed))
	}
	if s.outbox > 0 {
		left = append(left, fmt.Sprintf("%d messages in the outbox", s.outbox))
	}
	noEmail, noGrant := 0, 0
	for _, u := range users {
		id, stored := s.owner[strings.ToLower(u.Email)]
		if u.Status == http.StatusCreated {
			id, stored = u.ID, true
		}
		if stored && s.emails[strings.ToLower(u.Email)] == 0 {
			noEmail++
		}
		if stored && s.grants[id] == 0 {
			noGrant++
		}
	}
	if noEmail > 0 {
		left = append(left, fmt.Sprintf("%d stored registrations without their email", noEmail))
	}
	if noGrant > 0 {
		left = append(left, fmt.Sprintf("%d without their grant", noGrant))
	}
	return strings.Join(left, ", ")
}

// settle waits until the state is settled, and says how long that took;
// if it never is, what was left.
func (e *chaosEnv) settle(t *testing.T, users []*chaosUser) time.Duration {
	t.Helper()
	start := time.Now()
	var left atomic.Value // the wait's last reading, read again once it gave up
	if !e2e.AssertProgress(t, e.DB, func() bool {
		s, err := e.snapshot()
		if err != nil {
			left.Store("the state could not be read: " + err.Error())
			return false
		}
		left.Store(s.unsettled(users))
		return left.Load() == ""
	}, chaosSettleTimeout, "every stored registration has its email and grant, and nothing is in progress") {
		t.Logf("left unsettled: %v", left.Load())
	}
	return time.Since(start)
}

// chaosTally is the final count of a scenario.
type chaosTally struct {
	sent, created, other, noAnswer int
	noAnswerStored, otherStored    int
	emails, grants                 int
	duplicates, lost               int
	resent                         int            // emails sent again after a crash, as the same message
	statuses                       map[string]int // "503 unavailable" → count
	users                          []*chaosUser   // the registrations counted
	problems                       []string
	suspects                       []*chaosUser // the registrations with a problem
	unanswered                     []string     // the registrations without an answer, and why
}

// tally counts the effects of every sent registration: a 201 must have
// exactly one email and one grant; a registration without a 201 must be
// stored in full (user, credential, event, email, grant) or not at all.
func (e *chaosEnv) tally(t *testing.T, users []*chaosUser) chaosTally {
	t.Helper()
	s, err := e.snapshot()
	require.NoError(t, err, "read the final state")
	c := chaosTally{statuses: map[string]int{}, resent: s.resent, users: users}
	var suspect *chaosUser
	problem := func(format string, args ...any) {
		c.problems = append(c.problems, fmt.Sprintf(format, args...))
		if suspect != nil && (len(c.suspects) == 0 || c.suspects[len(c.suspects)-1] != suspect) {
			c.suspects = append(c.suspects, suspect)
		}
	}
	sentTo := map[string]bool{}
	for _, u := range users {
		if !u.Sent {
			continue
		}
		c.sent++
		suspect = u
		key := strings.ToLower(u.Email)
		sentTo[key] = true
		id, stored := s.owner[key]
		switch u.Status {
		case http.StatusCreated:
			c.created++
			if !stored || id != u.ID {
				c.lost++
				problem("%s: 201 with id %s, but its email belongs to %q", u.Email, u.ID, id)
				continue
			}
		case 0:
			c.noAnswer++
			if stored {
				c.noAnswerStored++
			}
			c.unanswered = append(c.unanswered, fmt.Sprintf("%s after %s", u, u.Took.Round(time.Millisecond)))
		default:
			c.other++
			c.statuses[fmt.Sprintf("%d %s", u.Status, u.Code)]++
			if stored {
				c.otherStored++
			}
		}
		emails := s.emails[key]
		c.emails += emails
		if !stored {
			if emails > 0 {
				c.lost++
				problem("%s: %d email(s), but no user stored", u, emails)
			}
			continue
		}
		grants := s.grants[id]
		c.grants += grants
		if emails > 1 {
			c.duplicates += emails - 1
			problem("%s: %d emails", u, emails)
		}
		if grants > 1 {
			c.duplicates += grants - 1
			problem("%s: %d grants", u, grants)
		}
		if emails == 0 || grants == 0 || !s.creds[id] || s.events[id] != 1 {
			c.lost++
			problem("%s: stored as %s with %d email(s), %d grant(s), credential %t, %d event(s)",
				u, id, emails, grants, s.creds[id], s.events[id])
		}
	}
	suspect = nil
	for to, n := range s.emails {
		if !sentTo[to] {
			c.duplicates += n
			problem("%d email(s) to %s, which nobody registered", n, to)
		}
	}
	return c
}

// report logs the scenario's line and fails the test on any loss or
// duplicate, with the service's log lines about the first registrations
// that went wrong.
func (e *chaosEnv) report(t *testing.T, c chaosTally, scenario string, extra ...string) {
	t.Helper()
	pubsub := e.PubSub
	line := fmt.Sprintf("chaos %s pubsub=%s: sent %d, 201 %d, other %d, emails %d (%d resent with the same Message-ID), grants %d, duplicates %d, lost %d, no answer %d (%d stored)",
		scenario, pubsub, c.sent, c.created, c.other, c.emails, c.resent, c.grants, c.duplicates, c.lost, c.noAnswer, c.noAnswerStored)
	if len(c.statuses) > 0 {
		var statuses []string
		for status, n := range c.statuses {
			statuses = append(statuses, fmt.Sprintf("%s ×%d", status, n))
		}
		sort.Strings(statuses)
		line += fmt.Sprintf(", other statuses [%s] (%d stored)", strings.Join(statuses, ", "), c.otherStored)
	}
	for _, x := range extra {
		line += ", " + x
	}
	t.Log(line)
	logSome(t, "problem: ", c.problems)
	logSome(t, "", c.unanswered)
	const traced = 3
	for _, u := range c.suspects[:min(traced, len(c.suspects))] {
		var lines []string
		for i, p := range e.Processes() {
			for _, line := range p.Stdout.Lines() {
				if strings.Contains(line, `"client_request_id":"`+u.RequestID+`"`) {
					lines = append(lines, fmt.Sprintf("process %d: %s", i+1, line))
				}
			}
		}
		t.Logf("the service's lines about %s:\n\t%s", u.Email, strings.Join(lines, "\n\t"))
	}
	assert.Zero(t, c.lost, "registrations lost or half done")
	assert.Zero(t, c.duplicates, "effects done twice")
	assert.Positive(t, c.created, "some registrations succeeded")
	e.assertNoSecrets(t, c.users)
}

// assertNoSecrets scans the database, the service's output, the emails and
// the messages published on RabbitMQ for a bcrypt hash, a password or the
// master key.
func (e *chaosEnv) assertNoSecrets(t *testing.T, users []*chaosUser) {
	t.Helper()
	secretUsers := make([]e2e.User, len(users))
	for i, u := range users {
		secretUsers[i] = u.User
	}
	secrets := e.Secrets(secretUsers...)
	e2e.AssertNoSecrets(t, e.DB, secrets, e.Processes(), e.SMTP, e.taps...)
	if e.PubSub == transport.KindRedis {
		e2e.AssertNoSecretsInRedis(t, e.RedisEntries(t), secrets)
	}
}

// logSome logs the first lines, and how many more there are.
func logSome(t *testing.T, prefix string, lines []string) {
	t.Helper()
	const shown = 10
	for i, line := range lines {
		if i == shown {
			t.Logf("  ... and %d more", len(lines)-shown)
			break
		}
		t.Log("  " + prefix + line)
	}
}
