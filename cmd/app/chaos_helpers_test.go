//go:build chaos

package main

// Helpers of the fault suite (chaos_test.go), on internal/e2e: a scenario's
// deployment with its fault proxies. The registration load is in
// chaos_load_test.go, the final count of every registration's effects in
// chaos_tally_test.go.

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/dedup"
	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testenv"
)

const (
	// chaosWorkers is how many registrations the load keeps in flight.
	chaosWorkers = 8
	// chaosSettleTimeout bounds the wait for every effect after the last
	// fault: a handler killed while holding a claim leaves it to expire.
	chaosSettleTimeout = dedup.ClaimLease + 90*time.Second
	// chaosLoadTimeout bounds a whole load.
	chaosLoadTimeout = 5 * time.Minute
)

// chaosTransports are the transports every scenario runs on.
var chaosTransports = []string{"sql", "amqp", "nats", "redis", "googlecloud", "sqs"}

// The event handlers, as named in the "message handled" log lines.
var chaosEventHandlers = []string{"SendWelcomeEmailOnUserRegistered", "SeedSignupPointsOnUserRegistered"}

// chaosEnv is one scenario's world: a deployment on a fresh PostgreSQL
// database with an SMTP sink, RabbitMQ, NATS or Redis when the transport
// is amqp, nats or redis, and proxies in front of the database, the broker and the SMTP
// sink when the scenario cuts them.
type chaosEnv struct {
	*e2e.Deployment
	run string
	// Proxies, nil unless asked for.
	dbProxy, brokerProxy, smtpProxy *e2e.Proxy
	// taps keep a copy of every message published on RabbitMQ's event and
	// poison exchanges, or NATS's streams, for the secrets scan
	// (TapSQLTopics does it for the tables).
	taps []*e2e.Tap
	// keys opens the server keys, for the email lookup key under which
	// user_emails holds the hashes of addresses; addresses are every
	// address users made, lower case.
	keys      *secrets.ServerKeys
	mu        sync.Mutex
	addresses []string
}

type chaosProxies struct{ db, broker, smtp bool }

func newChaosEnv(t *testing.T, pubsub string, proxies chaosProxies) *chaosEnv {
	t.Helper()
	return newChaosEnvOf(t, e2e.Config{PubSub: pubsub}, proxies)
}

// newChaosEnvOf is newChaosEnv of a deployment configured as cfg, on a
// fresh PostgreSQL database with an SMTP sink.
func newChaosEnvOf(t *testing.T, cfg e2e.Config, proxies chaosProxies) *chaosEnv {
	t.Helper()
	cfg.Database, cfg.SMTP = testenv.PostgresDatabase, true
	pubsub := cfg.PubSub
	e := &chaosEnv{Deployment: e2e.Deploy(t, cfg), run: e2e.RunID()}
	e.keys = secrets.NewServerKeys(e.DB.DB, e.MasterKeys(t))
	e.TapSQLTopics(t)
	if proxies.smtp {
		e.smtpProxy, e.Vars["SMTP_URL"] = e2e.ProxyURL(t, "smtp", e.SMTP.URL(), "25")
	}
	if proxies.db {
		e.dbProxy, e.Vars["DATABASE_URL"] = e2e.ProxyURL(t, "postgres", e.DatabaseURL, "5432")
	}
	switch pubsub {
	case transport.KindAMQP:
		e.taps = []*e2e.Tap{e.TapEvents(t), e2e.TapExchange(t, e.AMQPURL, e2e.PoisonQueue(e.Namespace))}
		if proxies.broker {
			e.brokerProxy, e.Vars["AMQP_URL"] = e2e.ProxyURL(t, "rabbitmq", e.AMQPURL, "5672")
		}
	case transport.KindNATS:
		e.taps = e.TapEveryExchange(t)
		if proxies.broker {
			e.brokerProxy, e.Vars["NATS_URL"] = e2e.ProxyURL(t, "nats", e.NATSURL, "4222")
		}
	case transport.KindRedis:
		e.TapRedisStreams(t) // the streams keep every message, for the secrets scan
		if proxies.broker {
			e.brokerProxy, e.Vars["REDIS_URL"] = e2e.ProxyURL(t, "redis", e.RedisURL, "6379")
		}
	case transport.KindGoogleCloud:
		e.taps = e.TapEveryExchange(t)
		if proxies.broker {
			// The emulator keeps its state across the cut: only the connection goes.
			e.brokerProxy = e2e.StartProxy(t, "pubsub-emulator", e.PubSubEmulatorHost)
			e.Vars["PUBSUB_EMULATOR_HOST"] = e.brokerProxy.Addr
		}
	case transport.KindSQS:
		e.taps = e.TapEveryExchange(t)
		if proxies.broker {
			// So does the SQS emulator.
			e.brokerProxy, e.Vars["AWS_ENDPOINT_URL"] = e2e.ProxyURL(t, "sqs-emulator", e.SQSEndpoint, "80")
		}
	}
	return e
}

// users returns n new users of the scenario, with their own email addresses.
func (e *chaosEnv) users(scenario string, from, n int) []*chaosUser {
	out := make([]*chaosUser, n)
	for i := range out {
		k := from + i
		out[i] = &chaosUser{User: e2e.User{
			Name:     fmt.Sprintf("Chaos User %04d", k),
			Email:    fmt.Sprintf("chaos.%s.%04d.%s@example.com", scenario, k, e.run),
			Password: fmt.Sprintf("pw-%s-%04d-chaos", e.run, k),
		}, RequestID: fmt.Sprintf("chaos-%s-%04d-%s", scenario, k, e.run)}
		e.mu.Lock()
		e.addresses = append(e.addresses, strings.ToLower(out[i].Email))
		e.mu.Unlock()
	}
	return out
}

// poisoned counts the messages the scenario sent to the poison topic.
func (e *chaosEnv) poisoned(t *testing.T) int {
	t.Helper()
	switch e.PubSub {
	case transport.KindAMQP:
		return e2e.QueueDepth(t, e.AMQPURL, e2e.PoisonQueue(e.Namespace))
	case transport.KindNATS:
		return e2e.NATSPoisoned(t, e.NATSURL, e.Namespace)
	case transport.KindRedis:
		n := 0
		for _, entry := range e.RedisEntries(t) {
			if entry.Stream == e2e.PoisonQueue(e.Namespace) {
				n++
			}
		}
		return n
	case transport.KindGoogleCloud, transport.KindSQS:
		queue, err := transport.NewPoisonQueue(e.Transport())
		require.NoError(t, err)
		listed, err := queue.List(testenv.Context(t))
		require.NoError(t, err)
		return len(listed)
	}
	n, err := countRows(e.DB, `SELECT count(*) FROM `+e.DB.Quote(watermillsql.MessagesTable(e.DB.DB, e2e.PoisonQueue(e.Namespace)))+
		` WHERE consumer_group = ?`, transport.PoisonGroup)
	require.NoError(t, err)
	return n
}
