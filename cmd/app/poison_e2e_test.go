package main

import (
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testsmtp"
)

// poisonRetriesTimeout covers a message's in-process retries (about 5 s)
// and its trip to the poison queue.
const poisonRetriesTimeout = 20 * time.Second

// TestE2E_MalformedEventsArePoisoned: a message that is not JSON and one of
// an unknown schema version, published on the event topic, end in the poison
// queue once per handler after their retries; the pipeline keeps flowing;
// `app poison list` shows them and `app poison requeue` sends one back to
// its handler, which fails on it again.
func TestE2E_MalformedEventsArePoisoned(t *testing.T) {
	for _, pubsub := range []string{transport.TransportSQL, transport.TransportAMQP} {
		t.Run(pubsub, func(t *testing.T) {
			env, db, smtpServer := postgresE2E(t, pubsub)
			proc := runBinary(t, env)
			api := newE2EAPI(proc.waitServing(t))

			tr, err := transport.NewTransport(transport.TransportConfig{
				Kind: pubsub, DB: db.DB, AMQPURL: env["AMQP_URL"], Namespace: e2eNamespace,
			})
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
			user := e2eUser{Name: "After Poison", Email: "after.poison@example.com", Password: "pw-after-poison"}
			r, err := api.register(user, nil)
			require.NoError(t, err)
			require.Equal(t, http.StatusCreated, r.Status, r.String())
			require.Eventually(t, func() bool { return smtpServer.CountTo(user.Email) == 1 },
				poisonRetriesTimeout, e2ePoll, "the next registration gets its email")

			handlers := []string{event.SendWelcomeEmailName, event.SeedSignupPointsName}
			var listed string
			require.Eventually(t, func() bool {
				listed = poisonCommand(t, env, "list")
				return strings.Count(listed, notJSON.UUID) == len(handlers) &&
					strings.Count(listed, futureVersion.UUID) == len(handlers)
			}, poisonRetriesTimeout, e2ePoll, "each handler poisons both messages")
			for _, handler := range handlers {
				assert.Contains(t, listed, handler)
			}
			assert.Contains(t, listed, "unknown schema version")
			assert.Contains(t, listed, transport.EventTopic("UserRegistered"))
			assert.Zero(t, smtpServer.CountTo("future@example.com"), "no email for an event this build cannot read")

			// Each copy has an id of its own; requeue one: it goes back to
			// its handler alone, fails again, and returns once.
			copies := poisonedCopies(t, env, futureVersion.UUID)
			require.Len(t, copies, len(handlers))
			assert.NotEqual(t, copies[0], copies[1], "one id per poisoned copy")
			out := poisonCommand(t, env, "requeue", copies[0])
			assert.Contains(t, out, "requeued "+copies[0])
			assert.Equal(t, len(handlers)-1, strings.Count(poisonCommand(t, env, "list"), futureVersion.UUID))
			require.Eventually(t, func() bool {
				return strings.Count(poisonCommand(t, env, "list"), futureVersion.UUID) == len(handlers)
			}, poisonRetriesTimeout, e2ePoll, "the requeued message was retried and poisoned again")
			assert.Never(t, func() bool {
				return strings.Count(poisonCommand(t, env, "list"), futureVersion.UUID) > len(handlers)
			}, 2*time.Second, 200*time.Millisecond, "the handler that did not requeue it does not poison it again")

			proc.stop(t)
			assert.NotContains(t, proc.stdout.String(), "$2a$", "no hash in the logs")
		})
	}
}

// poisonCommand runs `app poison ARGS…` with env and returns its output.
func poisonCommand(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	return operatorCommand(t, env, append([]string{"poison"}, args...)...)
}

// operatorCommand runs `app ARGS…` with env and returns its output.
func operatorCommand(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	cmd := exec.Command(onboardBinary(t), args...)
	cmd.Env = e2eEnv(env)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "app %s: %s", strings.Join(args, " "), out)
	return string(out)
}

// poisonedCopies returns the ids of the poisoned copies of one message,
// from `app poison list`.
func poisonedCopies(t *testing.T, env map[string]string, messageUUID string) []string {
	t.Helper()
	var ids []string
	for _, line := range strings.Split(poisonCommand(t, env, "list"), "\n") {
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
	for _, pubsub := range []string{transport.TransportSQL, transport.TransportAMQP} {
		t.Run(pubsub, func(t *testing.T) {
			env, _, smtpServer := postgresE2E(t, pubsub)
			smtpServer.SetFailing(true)
			proc := runBinary(t, env)
			api := newE2EAPI(proc.waitServing(t))

			var users []e2eUser
			for i := range 5 {
				u := e2eUser{Name: "Outage User", Email: fmt.Sprintf("outage%d@example.com", i), Password: "pw-outage-user"}
				r, err := api.register(u, nil)
				require.NoError(t, err)
				require.Equal(t, http.StatusCreated, r.Status, r.String())
				users = append(users, u)
			}
			// One delivery makes 7 attempts (6 retries) before the poison
			// queue would take it: outlast that twice over.
			require.Eventually(t, func() bool { return smtpServer.Rejected() >= 14 },
				poisonRetriesTimeout, e2ePoll, "the emails are retried through the outage")
			assert.Empty(t, smtpServer.Messages())

			smtpServer.SetFailing(false)
			require.Eventually(t, func() bool { return len(smtpServer.Messages()) >= len(users) },
				poisonRetriesTimeout, e2ePoll, "every email arrives once the server is back")
			for _, u := range users {
				assert.Equal(t, 1, smtpServer.CountTo(u.Email), "one email to %s", u.Email)
			}
			assert.Equal(t, "no poisoned messages\n", poisonCommand(t, env, "list"))
			proc.stop(t)
			assert.Len(t, smtpServer.Messages(), len(users), "no email twice")
		})
	}
}

// postgresE2E prepares a run of the binary with pubsub on a fresh PostgreSQL
// database: an SMTP server, and, for amqp, RabbitMQ's service queues emptied
// and held for this test. It returns the binary's environment.
func postgresE2E(t *testing.T, pubsub string) (map[string]string, *testenv.DB, *testsmtp.Server) {
	t.Helper()
	dbURL := testenv.PostgresDatabase(t)
	db := testenv.OpenDB(t, dbURL)
	amqpURL := e2eUnreachableAMQP
	if pubsub == transport.TransportAMQP {
		amqpURL = testenv.URL(t, testenv.AMQPURLVar)
		lockServiceQueues(t, db)
		resetServiceQueues(t, amqpURL)
	}
	smtpServer := testsmtp.Start(t)
	env := map[string]string{"PUBSUB": pubsub, "DATABASE_URL": dbURL, "AMQP_URL": amqpURL, "SMTP_URL": smtpServer.URL()}
	return env, db, smtpServer
}
