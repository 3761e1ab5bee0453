package watermillsql_test

import (
	"context"
	"database/sql"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/internal/testenv"
)

// A subscription asked for while the database hangs up on every
// connection waits for it, instead of failing the router that asked: once
// the database answers again, the subscription opens and delivers.
// The database may go away with connections open in the pool (pgx then
// answers "conn closed" on them) or before any was opened.
func TestSQLSubscriber_SubscribeWaitsForTheDatabase(t *testing.T) {
	for _, pooled := range []bool{false, true} {
		t.Run(map[bool]string{false: "no connection yet", true: "pooled connections cut"}[pooled], func(t *testing.T) {
			subscribeWaitsForTheDatabase(t, pooled)
		})
	}
}

func subscribeWaitsForTheDatabase(t *testing.T, pooled bool) {
	dbURL := testenv.PostgresDatabase(t)
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	gate := newHangUpGate(t, u.Host)
	u.Host = gate.addr
	db, err := sql.Open("pgx", u.String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	if pooled {
		gate.open()
		require.NoError(t, db.PingContext(testenv.Context(t)))
		gate.cut()
	}

	subscriber, err := watermillsql.NewSQLSubscriber(db, "waits", watermill.NopLogger{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = subscriber.Close() })
	topic := testenv.Name("waits")
	type subscription struct {
		messages <-chan *message.Message
		err      error
	}
	subscribed := make(chan subscription, 1)
	go func() {
		messages, err := subscriber.Subscribe(context.Background(), topic)
		subscribed <- subscription{messages, err}
	}()

	require.Eventually(t, func() bool { return gate.hungUp.Load() >= 2 }, 10*time.Second, 10*time.Millisecond,
		"the subscription is tried again while the database hangs up")
	select {
	case s := <-subscribed:
		t.Fatalf("Subscribe returned while the database was away: %v", s.err)
	default:
	}
	gate.open()
	var s subscription
	select {
	case s = <-subscribed:
	case <-time.After(10 * time.Second):
		t.Fatal("Subscribe did not return once the database was back")
	}
	require.NoError(t, s.err)

	publisher, err := wsql.NewPublisher(wsql.BeginnerFromStdSQL(db), wsql.PublisherConfig{
		SchemaAdapter: watermillsql.SchemaAdapter(db),
	}, watermill.NopLogger{})
	require.NoError(t, err)
	sent := message.NewMessage(watermill.NewUUID(), []byte(`{}`))
	require.NoError(t, publisher.Publish(topic, sent))
	select {
	case got := <-s.messages:
		assert.Equal(t, sent.UUID, got.UUID)
		got.Ack()
	case <-time.After(10 * time.Second):
		t.Fatal("no message on the subscription")
	}
}

// hangUpGate listens on a loopback port and closes every connection at
// once (a database that is away), until open, from when it relays them to
// upstream.
type hangUpGate struct {
	addr     string
	upstream string
	hungUp   atomic.Int64
	relaying atomic.Bool
	wg       sync.WaitGroup
	mu       sync.Mutex
	relayed  []net.Conn
}

func newHangUpGate(t *testing.T, upstream string) *hangUpGate {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := &hangUpGate{addr: listener.Addr().String(), upstream: upstream}
	t.Cleanup(func() {
		_ = listener.Close()
		g.wg.Wait()
	})
	g.wg.Go(func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			if !g.relaying.Load() {
				_ = conn.Close()
				g.hungUp.Add(1)
				continue
			}
			g.mu.Lock()
			g.relayed = append(g.relayed, conn)
			g.mu.Unlock()
			g.wg.Go(func() { relay(conn, upstream) })
		}
	})
	return g
}

func (g *hangUpGate) open() { g.relaying.Store(true) }

// cut closes the connections relayed so far and hangs up the next ones.
func (g *hangUpGate) cut() {
	g.relaying.Store(false)
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, conn := range g.relayed {
		_ = conn.Close()
	}
	g.relayed = nil
}

// relay copies both ways between conn and upstream until either side ends.
func relay(conn net.Conn, upstream string) {
	defer func() { _ = conn.Close() }()
	server, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer func() { _ = server.Close() }()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(server, conn); done <- struct{}{} }()
	go func() { _, _ = io.Copy(conn, server); done <- struct{}{} }()
	<-done
}
