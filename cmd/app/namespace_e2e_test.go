package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testenv"
)

// deployment is a running deployment of a test: its own database and mail
// server, on a broker it may share.
type deployment struct {
	*e2e.Deployment
	proc *e2e.Process
	api  *e2e.Client
}

// brokers are the transports whose deployments may share a broker.
var brokers = []string{transport.KindAMQP, transport.KindNATS, transport.KindRedis, transport.KindGoogleCloud,
	transport.KindSQS}

// startDeployment serves the binary on pubsub (amqp, nats or redis) with a
// PostgreSQL database of its own and namespace as PUBSUB_NAMESPACE; ""
// leaves it unset, for the database's default. Its queues and exchanges,
// streams or keys, go when the test ends.
func startDeployment(t *testing.T, pubsub, namespace string) *deployment {
	t.Helper()
	d := &deployment{Deployment: e2e.Deploy(t, e2e.Config{
		PubSub: pubsub, Database: testenv.PostgresDatabase, SMTP: true,
		Namespace: namespace, DefaultNamespace: namespace == "",
	})}
	d.proc, d.api = d.Serve(t)
	ns, _ := d.proc.StartLine()["namespace"].(string)
	require.NotEmpty(t, ns, "the start line names the namespace")
	if namespace != "" {
		require.Equal(t, namespace, ns)
	}
	return d
}

// Two deployments on one RabbitMQ, NATS, Redis or Pub/Sub, each with its own database:
// with the default namespaces (one per database) each one's handlers get
// its own events only, so every user gets its email and points from its
// own deployment and nothing is poisoned.
func TestE2E_TwoDeploymentsOnOneBroker(t *testing.T) {
	t.Parallel()
	for _, pubsub := range brokers {
		t.Run(pubsub, func(t *testing.T) {
			t.Parallel()
			testTwoDeploymentsOnOneBroker(t, pubsub)
		})
	}
}

func testTwoDeploymentsOnOneBroker(t *testing.T, pubsub string) {
	a, b := startDeployment(t, pubsub, ""), startDeployment(t, pubsub, "")
	assert.NotEqual(t, a.ServingNamespace(), b.ServingNamespace(), "each database its own namespace")

	usersA, usersB := registerMany(t, a, "a", 10), registerMany(t, b, "b", 10)
	for _, c := range []struct {
		d     *deployment
		users []e2e.User
	}{{a, usersA}, {b, usersB}} {
		for _, u := range c.users {
			require.Eventually(t, func() bool { return c.d.SMTP.CountTo(u.Email) == 1 }, poisonRetriesTimeout, e2e.Poll,
				"%s gets its email from its own deployment", u.Email)
			assert.Eventually(t, func() bool { return c.d.api.HasSignupPoints(u.ID) }, e2e.EffectsTimeout, e2e.Poll,
				"%s gets its points", u.Email) // apart from its email
		}
		assert.Len(t, c.d.SMTP.Messages(), len(c.users), "no email for the other deployment's users")
		assert.Equal(t, "no poisoned messages\n", c.d.Operator(t, "poison", "list"))
	}
}

// Two deployments forced into one namespace share their queues (or
// consumers): each handler then receives some of the other's events, and
// refuses them (poisoned, with the reason) rather than email or credit a
// stranger.
func TestE2E_SharedNamespaceNeverServesStrangers(t *testing.T) {
	t.Parallel()
	for _, pubsub := range brokers {
		t.Run(pubsub, func(t *testing.T) {
			t.Parallel()
			testSharedNamespaceNeverServesStrangers(t, pubsub)
		})
	}
}

func testSharedNamespaceNeverServesStrangers(t *testing.T, pubsub string) {
	shared := e2e.NewNamespace()
	a, b := startDeployment(t, pubsub, shared), startDeployment(t, pubsub, shared)
	// Which subscription gets a message is the broker's choice: the Pub/Sub
	// emulator hands each to the first stream free, so B's gets some only
	// when several wait at once. Rounds of 10 registered at once, until B
	// has received some.
	var usersA []e2e.User
	var listed string
	for round := 0; round < 5 && !strings.Contains(listed, "does not hold"); round++ {
		usersA = append(usersA, registerAtOnce(t, a, fmt.Sprintf("a%d", round), 10)...)
		require.Eventually(t, func() bool {
			listed = a.Operator(t, "poison", "list")
			for _, u := range usersA {
				if a.SMTP.CountTo(u.Email) == 0 && !strings.Contains(listed, u.ID) {
					return false
				}
			}
			return true
		}, poisonRetriesTimeout, e2e.CommandPoll, "each event is handled by its own deployment or refused by the other")
	}
	assert.Empty(t, b.SMTP.Messages(), "no email for a user of another database")
	assert.Contains(t, listed, "does not hold", "the other deployment received some, and refused them")
	refusedEmails := 0
	for _, line := range strings.Split(listed, "\n") {
		if strings.Contains(line, event.SendWelcomeEmailName) && strings.Contains(line, "does not hold") {
			refusedEmails++
		}
	}
	t.Logf("shared namespace: of %d welcome emails, %d sent by their own deployment, %d refused (poisoned) by the other",
		len(usersA), len(a.SMTP.Messages()), refusedEmails)
}

// registerAtOnce registers n users of prefix on d, all at once.
func registerAtOnce(t *testing.T, d *deployment, prefix string, n int) []e2e.User {
	t.Helper()
	users := newUsers(prefix, e2e.RunID(), n)
	answers, errs := make([]e2e.Response, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range users {
		wg.Go(func() { answers[i], errs[i] = d.api.Register(users[i], nil) })
	}
	wg.Wait()
	for i, r := range answers {
		require.NoError(t, errs[i])
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		users[i].ID = r.ID()
		require.NotEmpty(t, users[i].ID, r.String())
	}
	return users
}

// registerMany registers n users of prefix on d.
func registerMany(t *testing.T, d *deployment, prefix string, n int) []e2e.User {
	t.Helper()
	users := newUsers(prefix, e2e.RunID(), n)
	for i := range users {
		users[i] = d.api.MustRegister(t, users[i])
	}
	return users
}
