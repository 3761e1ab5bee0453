package service

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
)

func TestService_RegisterUserCommandTwiceRegistersOnce(t *testing.T) {
	t.Parallel()
	s := startService(t)
	poisoned := s.poisoned()
	// A consumer group nobody reads keeps a copy of every outbox message.
	tap, err := watermillsql.NewSQLSubscriber(s.db.DB, "TestOutboxTap", watermill.NopLogger{})
	require.NoError(t, err)
	require.NoError(t, tap.SubscribeInitialize(transport.OutboxTopic))
	id := uuid.NewString()
	cmd := &command.RegisterUser{
		UserID:   id,
		Name:     "Ada Lovelace",
		Email:    "ada@example.com",
		Password: "correct horse battery staple",
	}

	s.send(cmd)
	s.send(cmd) // a redelivered or resent command

	s.waitRegistered(id, cmd.Email)
	s.assertRegisteredOnce(id, cmd.Name, cmd.Email)
	assert.Equal(t, 1, s.mailer.Count(), "no other email")
	assert.Equal(t, 1, s.count(`SELECT count(*) FROM events`))
	assert.Equal(t, 1, s.count(`SELECT count(*) FROM `+s.db.Quote(watermillsql.MessagesTable(s.db.DB, transport.OutboxTopic))+
		` WHERE consumer_group = 'TestOutboxTap'`),
		"the second command published nothing")
	assert.Empty(t, poisoned(), "nothing went to the poison queue")
	assert.NotContains(t, s.logs.String(), `msg="message failed"`, "no handler attempt failed")

	s.stop()
	assert.NotContains(t, s.logs.String(), cmd.Password, "the password is never logged")
	assert.NotContains(t, s.logs.String(), "$2a$", "the hash is never logged")
}

func TestService_RejectedCommandsAreAckedAndDoNotBlockTheQueue(t *testing.T) {
	t.Parallel()
	s := startService(t)
	poisoned := s.poisoned()

	badID := uuid.NewString()
	s.send(&command.RegisterUser{UserID: badID, Name: "Eve", Email: "not-an-email", Password: "correct horse battery staple"})

	id := uuid.NewString()
	valid := &command.RegisterUser{UserID: id, Name: "Grace Hopper", Email: "grace@example.com", Password: "correct horse battery staple"}
	s.send(valid)
	s.waitRegistered(id, valid.Email)
	s.assertRegisteredOnce(id, valid.Name, valid.Email)
	s.assertNothingFor(badID, "")

	// A conflict is rejected the same way: another id, the same address.
	takenID := uuid.NewString()
	s.send(&command.RegisterUser{UserID: takenID, Name: "Mallory", Email: "GRACE@example.com", Password: "correct horse battery staple"})
	s.assertNothingFor(takenID, "")

	// And the queue still moves.
	nextID := uuid.NewString()
	next := &command.RegisterUser{UserID: nextID, Name: "Barbara Liskov", Email: "barbara@example.com", Password: "correct horse battery staple"}
	s.send(next)
	s.waitRegistered(nextID, next.Email)
	s.assertRegisteredOnce(nextID, next.Name, next.Email)

	assert.Len(t, s.mailer.To("grace@example.com"), 1, "the conflicting command sent no email")
	assert.Equal(t, 2, s.mailer.Count())
	assert.Equal(t, 2, s.count(`SELECT count(*) FROM events`))
	assert.Empty(t, poisoned(), "nothing went to the poison queue")
	logs := s.logs.String()
	assert.Equal(t, 2, strings.Count(logs, `msg="command rejected"`), "each rejected command is logged once")
	// A retried command would log a failed attempt and end in the poison queue.
	assert.NotContains(t, logs, `msg="message failed"`, "each rejected command is acked at once, not retried")

	s.stop()
}

func TestService_RunReturnsNilWhenCanceled(t *testing.T) {
	t.Parallel()
	s := startService(t)
	status, body := s.get("/healthz")
	require.Equal(t, http.StatusOK, status, "%s", body)
	status, body = s.get("/readyz")
	require.Equal(t, http.StatusOK, status, "%s", body)

	s.stop()

	resp, err := s.client.Get(fmt.Sprintf("http://%s/healthz", s.svc.Addr()))
	if err == nil {
		_ = resp.Body.Close()
	}
	assert.Error(t, err, "the API no longer listens")
}

// An event about a user this database does not hold (published by another
// deployment on the same broker and namespace) is refused by every handler
// and poisoned with the reason, instead of emailing or crediting a stranger.
func TestService_EventForAUserOfAnotherDatabaseIsPoisoned(t *testing.T) {
	t.Parallel()
	s := startService(t)
	poisoned := s.poisoned()
	stranger := uuid.NewString()
	events := []domain.Event{
		&domain.UserRegistered{UserID: stranger, Name: "Stranger", Email: "stranger@example.com", RegisteredAt: time.Now()},
		&domain.EmailChanged{UserID: stranger, OldEmail: "stranger@example.com", NewEmail: "new.stranger@example.com",
			ChangedAt: time.Now()},
	}
	for _, e := range events {
		msg, err := transport.NewMarshaler(domain.Events).Marshal(e)
		require.NoError(t, err)
		go func() { _ = s.svc.transport.Publisher.Publish(transport.EventTopic(e.EventName()), msg) }()
	}

	require.Eventually(t, func() bool { return len(poisoned()) == 4 }, serviceWait, 20*time.Millisecond,
		"each handler of each event refuses it")
	for _, p := range poisoned() {
		assert.Contains(t, p.Metadata.Get(middleware.ReasonForPoisonedKey), "database does not hold")
	}
	assert.Zero(t, s.mailer.Count(), "no email to a stranger")
	assert.Zero(t, s.count(`SELECT count(*) FROM points_entries`), "no points for a stranger")
	s.stop()
}

// Once the stop has begun, every answer says "Connection: close", so no
// client sends its next request on a connection the shutdown closes as
// idle; the drain goes on answering requests on new connections.
func TestService_DrainClosesEachConnectionAfterItsAnswer(t *testing.T) {
	t.Parallel()
	s := startServiceOnSQLite(t)
	resp, err := s.client.Get("http://" + s.svc.Addr() + "/healthz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.False(t, resp.Close, "kept alive while serving")

	s.cancel()
	require.Eventually(t, func() bool {
		resp, err := s.client.Get("http://" + s.svc.Addr() + "/healthz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.Close
	}, serviceWait, 20*time.Millisecond, "an answer during the drain closes its connection")
	s.stop()
}

// A client that connected before the stop but sends its request only after
// the drain's quiet period still gets an answer: the drain waits for every
// accepted connection's request (net/http drops one read after the
// shutdown has begun).
func TestService_DrainWaitsForTheRequestOfAnAcceptedConnection(t *testing.T) {
	t.Parallel()
	s := startServiceOnSQLite(t)
	conn, err := net.Dial("tcp", s.svc.Addr())
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	require.Eventually(t, func() bool { return s.svc.unread.count() == 1 }, serviceWait, 10*time.Millisecond,
		"the connection is accepted")

	s.cancel()
	require.Eventually(t, func() bool {
		return s.svc.draining.Load() && time.Since(time.Unix(0, s.svc.lastRequest.Load())) > 2*drainQuiet
	}, serviceWait, 10*time.Millisecond, "the drain has been quiet for longer than its quiet period")
	_, err = conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: onboard\r\n\r\n"))
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(serviceWait)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "an answer, not a closed connection")
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.True(t, resp.Close, "and the connection closes after it")
	s.stop()
}

// On the sql transport the registration's transaction writes its event into
// the transport's queue table itself: the outbox stays empty, and a
// consumer group registered on the topic gets the event once.
func TestService_SQLTransportPublishesInTheRegistrationsTransaction(t *testing.T) {
	t.Parallel()
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		dbURL := backend.URL(t)
		s := startServiceOn(t, testenv.OpenDB(t, dbURL), dbURL, func(c *Config) { c.PubSub = transport.KindSQL })
		topic := s.svc.transport.Topic(transport.EventTopic("UserRegistered"))
		// A consumer group nobody reads keeps a copy of what each gets.
		tapped := func(topic string) int {
			query := `SELECT count(*) FROM ` + s.db.Quote(watermillsql.MessagesTable(s.db.DB, topic))
			if watermillsql.HasGroupQueues(s.db.DB) {
				query += ` WHERE consumer_group = 'TestTap'`
			}
			return s.count(query)
		}
		tap, err := watermillsql.NewSQLSubscriber(s.db.DB, "TestTap", watermill.NopLogger{})
		require.NoError(t, err)
		require.NoError(t, tap.SubscribeInitialize(topic))
		require.NoError(t, tap.SubscribeInitialize(transport.OutboxTopic))
		require.NoError(t, tap.Close())

		id, email := uuid.NewString(), "ada@example.com"
		s.send(&command.RegisterUser{UserID: id, Name: "Ada Lovelace", Email: email, Password: "correct horse battery staple"})
		s.waitRegistered(id, email)

		assert.Zero(t, tapped(transport.OutboxTopic), "nothing went through the outbox")
		assert.Equal(t, 1, tapped(topic), "the event on its topic, once")
	})
}

// A start on a sqlite: path that names no file says it makes a new, empty
// database there (a mistyped path would otherwise go unseen); a start on
// the file it made says nothing of the kind.
func TestService_NewSQLiteDatabaseIsLogged(t *testing.T) {
	t.Parallel()
	dbURL := testenv.SQLiteDatabase(t)
	const made = "a new, empty database is made there"
	first := startServiceOn(t, testenv.OpenDB(t, dbURL), dbURL)
	first.stop()
	assert.Contains(t, first.logs.String(), made)
	path, _ := sqldb.SQLitePath(dbURL)
	assert.Contains(t, first.logs.String(), path, "it names the path")

	again := startServiceOn(t, testenv.OpenDB(t, dbURL), dbURL)
	again.stop()
	assert.NotContains(t, again.logs.String(), made)
}
