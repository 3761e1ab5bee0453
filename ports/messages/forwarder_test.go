package messages_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/ports/messages"
)

// gatePublisher holds every publish until released, counting those held.
type gatePublisher struct {
	held, published atomic.Int32
	release         chan struct{}
}

func (p *gatePublisher) Publish(_ string, msgs ...*message.Message) error {
	p.held.Add(1)
	<-p.release
	p.published.Add(int32(len(msgs)))
	return nil
}

func (*gatePublisher) Close() error { return nil }

// On PostgreSQL, where each commit wakes a waiting subscriber of the
// outbox, the forwarder publishes a row while the publish of another waits
// for its broker's confirm. (Elsewhere a poll every 100 ms locks the rows
// it finds for one subscriber, and SQLite reads the outbox with one.)
func TestForwarder_PublishesARowWhileAnotherWaits(t *testing.T) {
	db := testenv.MigratedDB(t, testenv.Backend{Name: "postgres", URL: testenv.PostgresDatabase})
	wakeup, err := watermillsql.NewWakeup(db.DB)
	require.NoError(t, err)
	t.Cleanup(func() { _ = wakeup.Close() })
	tr, err := transport.NewTransport(transport.Config{Kind: transport.KindGoChannel})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	gate := &gatePublisher{release: make(chan struct{})}
	tr.Publisher = gate
	fwd, err := messages.NewForwarder(messages.ForwarderConfig{DB: db.DB, Wakeup: wakeup, Transport: tr,
		DeploymentID: "test", Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(testenv.Context(t))
	defer cancel()
	go func() { _ = fwd.Run(ctx) }()
	<-fwd.Running()

	sqlPublisher, err := wsql.NewPublisher(wsql.BeginnerFromStdSQL(db.DB),
		wsql.PublisherConfig{SchemaAdapter: watermillsql.SchemaAdapter(db.DB)}, watermill.NopLogger{})
	require.NoError(t, err)
	outbox := forwarder.NewPublisher(sqlPublisher, forwarder.PublisherConfig{ForwarderTopic: transport.OutboxTopic})
	publish := func() {
		require.NoError(t, outbox.Publish("events.Forwarded", message.NewMessage(watermill.NewUUID(), []byte(`{}`))))
	}
	publish()
	require.Eventually(t, func() bool { return gate.held.Load() == 1 }, 5*time.Second, 5*time.Millisecond,
		"the first row's publish waits")
	publish()
	assert.Eventually(t, func() bool { return gate.held.Load() == 2 }, 5*time.Second, 5*time.Millisecond,
		"the second row is published while the first waits")
	close(gate.release)
	assert.Eventually(t, func() bool { return gate.published.Load() == 2 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, fwd.Close())
}
