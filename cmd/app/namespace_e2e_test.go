package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testsmtp"
)

// deployment is one onboard deployment of a test: its own database and
// mail server, on a broker it may share.
type deployment struct {
	env  map[string]string
	proc *e2eProcess
	api  *e2eAPI
	smtp *testsmtp.Server
}

// startDeployment runs the binary on amqp with a database of its own and
// the given PUBSUB_NAMESPACE ("" for the database's default), and deletes
// its RabbitMQ queues and exchanges when the test ends.
func startDeployment(t *testing.T, amqpURL, namespace string) *deployment {
	t.Helper()
	d := &deployment{smtp: testsmtp.Start(t)}
	d.env = map[string]string{
		"PUBSUB":           "amqp",
		"DATABASE_URL":     testenv.PostgresDatabase(t),
		"AMQP_URL":         amqpURL,
		"SMTP_URL":         d.smtp.URL(),
		"PUBSUB_NAMESPACE": namespace,
	}
	d.proc = runBinary(t, d.env)
	d.api = newE2EAPI(d.proc.waitServing(t))
	ns := servingNamespace(t, d.proc)
	if namespace != "" {
		require.Equal(t, namespace, ns)
	}
	t.Cleanup(func() { deleteNamespaceTopology(t, amqpURL, ns) })
	return d
}

// servingNamespace reads the namespace the service logged at start.
func servingNamespace(t *testing.T, p *e2eProcess) string {
	t.Helper()
	for _, line := range p.stdout.Lines() {
		var record struct {
			Msg       string `json:"msg"`
			Namespace string `json:"namespace"`
		}
		if json.Unmarshal([]byte(line), &record) == nil && record.Msg == "onboard is serving" {
			require.NotEmpty(t, record.Namespace, "the start line names the namespace")
			return record.Namespace
		}
	}
	t.Fatal("no start line")
	return ""
}

// deleteNamespaceTopology removes the service's queues and exchanges of a
// namespace from RabbitMQ.
func deleteNamespaceTopology(t *testing.T, amqpURL, namespace string) {
	t.Helper()
	var queues []string
	for _, q := range e2eServiceQueues {
		queues = append(queues, namespace+strings.TrimPrefix(q, e2eNamespace))
	}
	deleteAMQP(t, amqpURL, queues, []string{namespace + ".events.UserRegistered", namespace + ".commands.RegisterUser",
		namespace + ".poison"})
}

// Two deployments on one RabbitMQ, each with its own database: with the
// default namespaces (one per database) each one's handlers get its own
// events only, so every user gets its email and points from its own
// deployment and nothing is poisoned.
func TestE2E_TwoDeploymentsOnOneBroker(t *testing.T) {
	amqpURL := testenv.URL(t, testenv.AMQPURLVar)
	a, b := startDeployment(t, amqpURL, ""), startDeployment(t, amqpURL, "")
	assert.NotEqual(t, servingNamespace(t, a.proc), servingNamespace(t, b.proc), "each database its own namespace")

	usersA, usersB := registerMany(t, a, "a", 10), registerMany(t, b, "b", 10)
	for _, c := range []struct {
		d     *deployment
		users []e2eUser
	}{{a, usersA}, {b, usersB}} {
		for _, u := range c.users {
			require.Eventually(t, func() bool { return c.d.smtp.CountTo(u.Email) == 1 }, poisonRetriesTimeout, e2ePoll,
				"%s gets its email from its own deployment", u.Email)
			points, ok := c.d.api.pointsOf(u.ID)
			assert.True(t, ok && points.Balance == e2eSignupPoints, "%s gets its points", u.Email)
		}
		assert.Len(t, c.d.smtp.Messages(), len(c.users), "no email for the other deployment's users")
		assert.Equal(t, "no poisoned messages\n", operatorCommand(t, c.d.env, "poison", "list"))
	}
}

// Two deployments forced into one namespace share their queues: each
// handler then receives some of the other's events, and refuses them
// (poisoned, with the reason) rather than email or credit a stranger.
func TestE2E_SharedNamespaceNeverServesStrangers(t *testing.T) {
	amqpURL := testenv.URL(t, testenv.AMQPURLVar)
	shared := "t" + strings.ReplaceAll(uuid.NewString(), "-", "")[:10]
	a, b := startDeployment(t, amqpURL, shared), startDeployment(t, amqpURL, shared)
	usersA := registerMany(t, a, "a", 10)

	var listed string
	require.Eventually(t, func() bool {
		listed = operatorCommand(t, a.env, "poison", "list")
		for _, u := range usersA {
			if a.smtp.CountTo(u.Email) == 0 && !strings.Contains(listed, u.ID) {
				return false
			}
		}
		return true
	}, poisonRetriesTimeout, e2ePoll, "each event is handled by its own deployment or refused by the other")
	assert.Empty(t, b.smtp.Messages(), "no email for a user of another database")
	assert.Contains(t, listed, "does not hold", "the other deployment received some, and refused them")
	refusedEmails := 0
	for _, line := range strings.Split(listed, "\n") {
		if strings.Contains(line, event.SendWelcomeEmailName) && strings.Contains(line, "does not hold") {
			refusedEmails++
		}
	}
	t.Logf("shared namespace: of %d welcome emails, %d sent by their own deployment, %d refused (poisoned) by the other",
		len(usersA), len(a.smtp.Messages()), refusedEmails)
}

// deleteAMQP deletes queues and exchanges, those missing included.
func deleteAMQP(t *testing.T, amqpURL string, queues, exchanges []string) {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Logf("clean up RabbitMQ: %v", err)
		return
	}
	defer func() { _ = conn.Close() }()
	for i, name := range append(queues, exchanges...) {
		ch, err := conn.Channel() // a new channel per call: an error closes the channel it happens on
		if err != nil {
			t.Logf("clean up RabbitMQ: %v", err)
			return
		}
		if i < len(queues) {
			_, err = ch.QueueDelete(name, false, false, false)
		} else {
			err = ch.ExchangeDelete(name, false, false)
		}
		var amqpErr *amqp.Error
		if err != nil && (!errors.As(err, &amqpErr) || amqpErr.Code != amqp.NotFound) {
			t.Logf("clean up RabbitMQ %s: %v", name, err)
		}
		_ = ch.Close()
	}
}

func registerMany(t *testing.T, d *deployment, prefix string, n int) []e2eUser {
	t.Helper()
	run := strings.ReplaceAll(uuid.NewString(), "-", "")[:8]
	users := make([]e2eUser, n)
	for i := range users {
		users[i] = e2eUser{Name: "Deployment User", Email: fmt.Sprintf("%s%02d.%s@example.com", prefix, i, run),
			Password: fmt.Sprintf("pw-%s-%02d-%s-deploy", prefix, i, run)}
		r, err := d.api.register(users[i], nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		users[i].ID, _ = r.JSON()["id"].(string)
	}
	return users
}
