package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testenv"
)

// poisonRetriesTimeout covers an outage's in-process retries (about 5 s),
// and a message's trip to the poison queue.
const poisonRetriesTimeout = 20 * time.Second

// TestE2E_MalformedEventsArePoisoned: a message that is not JSON and one of
// an unknown schema version, published on the event topic, end in the poison
// queue once per handler, at once; the pipeline keeps flowing;
// `app poison list` shows them and `app poison requeue` sends one back to
// its handler, which fails on it again.
func TestE2E_MalformedEventsArePoisoned(t *testing.T) {
	t.Parallel()
	for _, pubsub := range []string{transport.KindSQL, transport.KindAMQP, transport.KindNATS, transport.KindRedis,
		transport.KindGoogleCloud, transport.KindSQS} {
		t.Run(pubsub, func(t *testing.T) {
			t.Parallel()
			d := postgresDeployment(t, pubsub)
			proc, api := d.Serve(t)

			tr, err := transport.NewTransport(d.Transport())
			require.NoError(t, err)
			t.Cleanup(func() { _ = tr.Close() })
			notJSON := message.NewMessage(uuid.NewString(), []byte(`{"user_id": "truncated`))
			futureVersion := message.NewMessage(uuid.NewString(),
				[]byte(`{"user_id":"`+uuid.NewString()+`","name":"Future","email":"future@example.com"}`))
			futureVersion.Metadata.Set(transport.SchemaVersionKey, "9")
			for _, msg := range []*message.Message{notJSON, futureVersion} {
				msg.Metadata.Set("name", "UserRegistered") // the event name cqrs routes on
				require.NoError(t, tr.Publisher.Publish(transport.EventTopic("UserRegistered"), msg))
			}

			// The pipeline keeps flowing meanwhile.
			user := api.MustRegister(t, e2e.User{Name: "After Poison", Email: "after.poison@example.com", Password: "pw-after-poison"})
			require.Eventually(t, func() bool { return d.SMTP.CountTo(user.Email) == 1 },
				poisonRetriesTimeout, e2e.Poll, "the next registration gets its email")

			handlers := []string{event.SendWelcomeEmailName, event.SeedSignupPointsName}
			var listed string
			require.Eventually(t, func() bool {
				listed = poisonCommand(t, d, "list")
				return strings.Count(listed, notJSON.UUID) == len(handlers) &&
					strings.Count(listed, futureVersion.UUID) == len(handlers)
			}, poisonRetriesTimeout, e2e.CommandPoll, "each handler poisons both messages")
			for _, handler := range handlers {
				assert.Contains(t, listed, handler)
			}
			assert.Contains(t, listed, "unknown schema version")
			assert.Contains(t, listed, transport.EventTopic("UserRegistered"))
			assert.Zero(t, d.SMTP.CountTo("future@example.com"), "no email for an event this build cannot read")

			// Each copy has an id of its own; requeue one: it goes back to
			// its handler alone, fails again (one attempt), and returns
			// once, as a copy of a new id.
			copies := poisonedCopies(t, d, futureVersion.UUID)
			require.Len(t, copies, len(handlers))
			assert.NotEqual(t, copies[0], copies[1], "one id per poisoned copy")
			require.Equal(t, len(handlers), failedAttempts(proc, futureVersion.UUID), "one attempt per handler")
			out := poisonCommand(t, d, "requeue", copies[0])
			assert.Contains(t, out, "requeued "+copies[0])
			var again []string
			require.Eventually(t, func() bool {
				again = poisonedCopies(t, d, futureVersion.UUID)
				return len(again) == len(handlers) && !slices.Contains(again, copies[0])
			}, poisonRetriesTimeout, e2e.CommandPoll, "the requeued message was tried again and poisoned again")
			assert.Contains(t, again, copies[1], "the copy not requeued stays")
			// Checked in this goroutine, not in assert.Never's: a listing
			// still running when the test ends would fail it afterwards.
			for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
				require.False(t, failedAttempts(proc, futureVersion.UUID) > len(handlers)+1 ||
					strings.Count(poisonCommand(t, d, "list"), futureVersion.UUID) > len(handlers),
					"the handler that did not requeue it does not try or poison it again")
			}
			assert.Equal(t, len(handlers)+1, failedAttempts(proc, futureVersion.UUID), "one attempt more, by one handler")

			proc.Stop(t)
			assert.NotContains(t, proc.Stdout.String(), "$2a$", "no hash in the logs")
		})
	}
}

// failedAttempts counts the "message failed" lines about a message.
func failedAttempts(p *e2e.Process, messageUUID string) int {
	n := 0
	for _, record := range p.Stdout.JSONLines() {
		if record["msg"] == "message failed" && record["message_uuid"] == messageUUID {
			n++
		}
	}
	return n
}

// poisonCommand runs `app poison ARGS…` on d and returns its output.
func poisonCommand(t *testing.T, d *e2e.Deployment, args ...string) string {
	t.Helper()
	return d.Operator(t, append([]string{"poison"}, args...)...)
}

// poisonedCopies returns the ids of the poisoned copies of one message,
// from `app poison list`.
func poisonedCopies(t *testing.T, d *e2e.Deployment, messageUUID string) []string {
	t.Helper()
	var ids []string
	for _, line := range strings.Split(poisonCommand(t, d, "list"), "\n") {
		if fields := strings.Fields(line); len(fields) > 1 && fields[1] == messageUUID {
			ids = append(ids, fields[0])
		}
	}
	return ids
}

// TestE2E_SMTPOutageLosesNoEmail: while the SMTP server answers 451, welcome
// emails are retried past their in-process retries without being poisoned;
// once it is back, each arrives exactly once.
func TestE2E_SMTPOutageLosesNoEmail(t *testing.T) {
	t.Parallel()
	for _, pubsub := range []string{transport.KindSQL, transport.KindAMQP, transport.KindNATS, transport.KindRedis,
		transport.KindGoogleCloud, transport.KindSQS} {
		t.Run(pubsub, func(t *testing.T) {
			t.Parallel()
			d := postgresDeployment(t, pubsub)
			smtpServer := d.SMTP
			smtpServer.SetFailing(true)
			proc, api := d.Serve(t)

			users := newUsers("outage", e2e.RunID(), 5)
			for _, u := range users {
				api.MustRegister(t, u)
			}
			// One delivery makes 7 attempts (6 retries) before the poison
			// queue would take it: outlast that twice over.
			require.Eventually(t, func() bool { return smtpServer.Rejected() >= 14 },
				poisonRetriesTimeout, e2e.Poll, "the emails are retried through the outage")
			assert.Empty(t, smtpServer.Messages())

			smtpServer.SetFailing(false)
			require.Eventually(t, func() bool { return len(smtpServer.Messages()) >= len(users) },
				poisonRetriesTimeout, e2e.Poll, "every email arrives once the server is back")
			for _, u := range users {
				assert.Equal(t, 1, smtpServer.CountTo(u.Email), "one email to %s", u.Email)
			}
			assert.Equal(t, "no poisoned messages\n", poisonCommand(t, d, "list"))
			proc.Stop(t)
			assert.Len(t, smtpServer.Messages(), len(users), "no email twice")
		})
	}
}

// postgresDeployment is a deployment on pubsub with a fresh PostgreSQL
// database and an SMTP sink.
func postgresDeployment(t *testing.T, pubsub string) *e2e.Deployment {
	t.Helper()
	return e2e.Deploy(t, e2e.Config{PubSub: pubsub, Database: testenv.PostgresDatabase, SMTP: true})
}
