package main

// What the other tests of this package used from the former e2e_test.go:
// the benchmarks' namespace on RabbitMQ and its lock, the binary for
// TestE2E_Help, and the polling interval. The end-to-end tests use
// internal/e2e, each deployment with a namespace of its own.

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testenv"
)

const (
	// e2eNamespace is the benchmarks' PUBSUB_NAMESPACE.
	e2eNamespace       = "e2e"
	e2eUnreachableAMQP = e2e.UnreachableAMQP
	e2ePoll            = e2e.Poll
)

func onboardBinary(t testing.TB) string { return e2e.Binary(t) }

// resetServiceQueues deletes the queues and exchanges of e2eNamespace.
func resetServiceQueues(t testing.TB, amqpURL string) { e2e.DeleteNamespace(t, amqpURL, e2eNamespace) }

// lockServiceQueues holds a PostgreSQL advisory lock until the benchmark
// ends, so that two runs never share e2eNamespace's queues.
func lockServiceQueues(t testing.TB, _ *testenv.DB) {
	t.Helper()
	const key = 0x6f6e626f617264 // "onboard"
	pg, err := sql.Open("pgx", testenv.URL(t, testenv.PostgresURLVar))
	require.NoError(t, err)
	t.Cleanup(func() { _ = pg.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := pg.Conn(ctx)
	require.NoError(t, err)
	_, err = conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(key))
	require.NoError(t, err, "wait for another run on RabbitMQ")
	t.Cleanup(func() {
		_, _ = conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(key))
		_ = conn.Close()
	})
}
