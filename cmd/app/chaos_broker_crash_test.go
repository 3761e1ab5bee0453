//go:build chaos

package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testenv"
)

// 9. Redis, a server of the test's own keeping an append-only file
// (appendfsync everysec), killed (kill -9) and started again while it
// holds the welcome emails of the load: it keeps every message it
// acknowledged, and its groups, so every 201 gets its effects once, and no
// group has to be created again.
func TestChaos_RedisCrashWithAppendOnlyFile(t *testing.T) {
	chaosParallel(t)
	server := testenv.StartRedis(t, "--appendonly", "yes", "--appendfsync", "everysec")
	proc := crashTheBroker(t, e2e.Config{PubSub: transport.KindRedis, RedisURL: server.URL}, server)
	assert.NotContains(t, proc.Stdout.String(), "is created again", "Redis kept its consumer groups")
}

// 10. NATS, a server of the test's own with JetStream on a file store,
// killed (kill -9) and started again while it holds the welcome emails of
// the load: its streams and consumers come back from the store, so every
// 201 gets its effects once.
func TestChaos_NATSCrashWithFileStore(t *testing.T) {
	chaosParallel(t)
	server := testenv.StartNATS(t)
	crashTheBroker(t, e2e.Config{PubSub: transport.KindNATS, NATSURL: server.URL}, server)
	if t.Failed() {
		t.Logf("JetStream's consumers at the end:\n%s", describeNATSConsumers(server.URL))
	}
}

// describeNATSConsumers lists every consumer of the server's streams with
// what it holds, for a failure's message.
func describeNATSConsumers(url string) string {
	conn, err := nats.Connect(url, nats.Timeout(time.Second), nats.NoReconnect())
	if err != nil {
		return err.Error()
	}
	defer conn.Close()
	js, err := jetstream.New(conn)
	if err != nil {
		return err.Error()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out strings.Builder
	for name := range js.StreamNames(ctx).Name() {
		stream, err := js.Stream(ctx, name)
		if err != nil {
			return err.Error()
		}
		fmt.Fprintf(&out, "stream %s: %+v\n", name, stream.CachedInfo().State)
		for info := range stream.ListConsumers(ctx).Info() {
			fmt.Fprintf(&out, "  %s: pending %d, ack pending %d, redelivered %d, waiting pulls %d, delivered %+v, ack floor %+v\n",
				info.Name, info.NumPending, info.NumAckPending, info.NumRedelivered, info.NumWaiting, info.Delivered, info.AckFloor)
		}
	}
	return out.String()
}

// brokerServer is a broker of the test's own, which it may kill and start
// again.
type brokerServer interface {
	Kill(t testing.TB)
	Start(t testing.TB)
}

// crashTheBroker serves the deployment of cfg on server under the load,
// with the SMTP server refusing the welcome emails, so that the broker
// holds them; kills the broker once every event is forwarded, starts it
// again, lets the emails through and checks that every 201 gets its
// effects once. It returns the service's process, stopped.
func crashTheBroker(t *testing.T, cfg e2e.Config, server brokerServer) *e2e.Process {
	t.Helper()
	e := newChaosEnvOf(t, cfg, chaosProxies{})
	name := cfg.PubSub + "-crash"
	users := e.users(name, 0, chaosSize.brokerLoad)
	e.SMTP.SetFailing(true) // the welcome emails wait in the broker
	proc, api := e.Serve(t)
	startLoad(users, func(int) *e2e.Client { return api }).wait(t)
	created := 0
	for _, u := range users {
		if u.Status == http.StatusCreated {
			created++
		}
	}
	require.Eventually(t, func() bool {
		s, err := e.snapshot()
		require.NoError(t, err)
		return s.outbox == 0 && len(s.grants) == created
	}, chaosSettleTimeout, e2e.Poll, "every event forwarded to the broker, and its points granted")
	waiting := created - len(e.SMTP.Messages())

	server.Kill(t)
	killedAt := time.Now()
	assert.Eventually(t, func() bool { ok, _ := api.Ready(); return !ok }, chaosSize.recovery, e2e.Poll,
		"/readyz reports the broker down")
	server.Start(t)
	startedAt := time.Now()
	readyAgain := "never"
	if assert.Eventually(t, func() bool { ok, _ := api.Ready(); return ok }, chaosSettleTimeout, e2e.Poll,
		"/readyz reports ready once the broker is back") {
		readyAgain = time.Since(startedAt).Round(time.Millisecond).String()
	}
	e.SMTP.SetFailing(false)
	e.settle(t, users)
	settled := time.Since(startedAt)

	c := e.tally(t, users)
	e.report(t, c, name,
		fmt.Sprintf("emails waiting in the broker at the kill %d", waiting),
		fmt.Sprintf("down %s", startedAt.Sub(killedAt).Round(time.Millisecond)),
		fmt.Sprintf("ready again after %s", readyAgain),
		fmt.Sprintf("settled %s after the start", settled.Round(time.Millisecond)),
		fmt.Sprintf("poisoned %d", e.poisoned(t)))
	assert.Zero(t, c.other, "every answer is a 201: %v", c.statuses)
	assert.Zero(t, c.noAnswer, "every registration is answered")
	assert.Positive(t, waiting, "emails waited in the broker at the kill")
	proc.Stop(t)
	e2e.AssertNoPanic(t, proc)
	return proc
}
