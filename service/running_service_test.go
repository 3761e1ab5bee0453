package service

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/apitest"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testfake"
)

// serviceWait bounds every wait of these tests.
const serviceWait = 60 * time.Second

// runningService is a Service on gochannel and a fresh database, running
// until the test ends, with a command bus on its transport.
type runningService struct {
	t      *testing.T
	svc    *Service
	db     *testenv.DB // the service's database, through a connection of the test's own
	mailer *testfake.Mailer
	logs   *testenv.LockedBuffer
	bus    *cqrs.CommandBus
	cancel context.CancelFunc
	runErr chan error
	client *http.Client
}

func startService(t *testing.T) *runningService {
	t.Helper()
	db, dbURL := testenv.OpenPostgres(t)
	t.Cleanup(func() {
		if t.Failed() {
			testenv.LogOldTransactions(t, db)
		}
	})
	return startServiceOn(t, testenv.NewDB(db), dbURL)
}

// startServiceOnSQLite is startService on a SQLite file of the test's own,
// for the tests that need no server.
func startServiceOnSQLite(t *testing.T) *runningService {
	t.Helper()
	dbURL := testenv.SQLiteDatabase(t)
	return startServiceOn(t, testenv.OpenDB(t, dbURL), dbURL)
}

// startServiceOn runs the service on the database at dbURL; db is the
// test's own connection to it.
func startServiceOn(t *testing.T, db *testenv.DB, dbURL string, configure ...func(*Config)) *runningService {
	t.Helper()
	logs := &testenv.LockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("service log:\n%s", logs.String())
		}
	})
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mailer := &testfake.Mailer{}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	cfg := Config{
		PubSub:      "gochannel",
		DatabaseURL: dbURL,
		HTTPAddr:    "127.0.0.1:0",
		// The lowest cost bcrypt takes: these tests check behaviour, not the
		// hash's cost, and share two cores with the end-to-end tests.
		BcryptCost:   bcrypt.MinCost,
		SignupPoints: 100,
		MailFrom:     "no-reply@onboard.local",
		AdminToken:   testAdminToken,
		MasterKeys:   testMasterKeys(t, dbURL),
		// The budget has tests of its own: these send many emails.
		EmailBudget: EmailBudget{Off: true},
	}
	for _, c := range configure {
		c(&cfg)
	}
	svc, err := New(ctx, cfg, mailer, logger)
	require.NoError(t, err)

	s := &runningService{
		t: t, svc: svc, db: db, mailer: mailer, logs: logs, cancel: cancel,
		runErr: make(chan error, 1),
		// Every exchange with the API is checked against its contract.
		client: &http.Client{Timeout: 5 * time.Second, Transport: apitest.New(t).Transport(nil)},
	}
	go func() { s.runErr <- svc.Run(ctx) }()
	t.Cleanup(func() {
		// Stop the service if the test did not, before its database goes.
		cancel()
		select {
		case err := <-s.runErr:
			_ = err // the test that stopped it checked the result
		case <-time.After(serviceWait):
			t.Error("the service did not stop")
		}
	})
	// gochannel drops what is published before a subscription exists: wait
	// until the router subscribed every handler.
	select {
	case <-svc.handlers.Running():
	case err := <-s.runErr:
		s.runErr <- err
		t.Fatalf("the service stopped at start: %v", err)
	case <-time.After(serviceWait):
		t.Fatal("the handlers router did not start")
	}

	s.bus, err = cqrs.NewCommandBusWithConfig(svc.transport.Publisher, cqrs.CommandBusConfig{
		GeneratePublishTopic: func(p cqrs.CommandBusGeneratePublishTopicParams) (string, error) {
			return transport.CommandTopic(p.CommandName), nil
		},
		Marshaler: transport.NewMarshaler(domain.Events),
	})
	require.NoError(t, err)
	return s
}

// send puts the command on the bus. gochannel's Publish returns once the
// command handler acked the message, so send returning means "acked".
func (s *runningService) send(cmd *command.RegisterUser) {
	s.t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.bus.Send(context.Background(), cmd) }()
	select {
	case err := <-done:
		require.NoError(s.t, err, "send %s", cmd.UserID)
	case <-time.After(serviceWait):
		s.t.Fatalf("the command %s was not acknowledged within %s", cmd.UserID, serviceWait)
	}
}

// stop cancels the service's context and checks that Run returns nil.
func (s *runningService) stop() {
	s.t.Helper()
	s.cancel()
	select {
	case err := <-s.runErr:
		assert.NoError(s.t, err, "Run returns nil after its context is canceled")
		s.runErr <- err // for the cleanup
	case <-time.After(serviceWait):
		s.t.Fatal("Run did not return after its context was canceled")
	}
}

// get returns the status and body of a GET on the service's API, sent
// with the operators' token, which reads any user.
func (s *runningService) get(path string) (int, []byte) {
	s.t.Helper()
	status, body, err := s.tryGet(path)
	require.NoError(s.t, err, "GET %s", path)
	return status, body
}

// tryGet is get for conditions polled by require.Eventually.
func (s *runningService) tryGet(path string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+s.svc.Addr()+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var body bytes.Buffer
	_, err = body.ReadFrom(resp.Body)
	return resp.StatusCode, body.Bytes(), err
}

// count runs a count query written with ? placeholders.
func (s *runningService) count(query string, args ...any) int {
	s.t.Helper()
	return s.db.Count(s.t, query, args...)
}

func (s *runningService) tryCount(query string, args ...any) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	err := s.db.QueryRowContext(ctx, query, args...).Scan(&n)
	return n, err
}

// outboxDrained reports whether the forwarder acked every outbox row. On
// gochannel the forwarder's publish returns only once every event handler
// acked, so a drained outbox means every handler is done.
func (s *runningService) outboxDrained() bool {
	outbox := s.db.Quote(watermillsql.MessagesTable(s.db.DB, transport.OutboxTopic))
	query := `SELECT count(*) FROM ` + outbox + ` WHERE consumer_group = 'forwarder'`
	if s.db.Dialect == "sqlite" {
		// Offsets per consumer group: the rows after the forwarder's last ack.
		query = `SELECT count(*) FROM ` + outbox + ` WHERE "offset" > COALESCE((SELECT offset_acked FROM ` +
			s.db.Quote("watermill_offsets_"+transport.OutboxTopic) + ` WHERE consumer_group = 'forwarder'), 0)`
	}
	pending, err := s.tryCount(query)
	return err == nil && pending == 0
}

type pointsBody struct {
	UserID  string `json:"user_id"`
	Balance int    `json:"balance"`
	Entries []struct {
		Amount int    `json:"amount"`
		Reason string `json:"reason"`
	} `json:"entries"`
}

// waitRegistered waits until the user is readable, got their email and
// their points, and every handler is done.
func (s *runningService) waitRegistered(id, email string) {
	s.t.Helper()
	require.Eventually(s.t, func() bool {
		status, _, err := s.tryGet("/users/" + id)
		return err == nil && status == http.StatusOK
	}, serviceWait, 20*time.Millisecond, "GET /users/%s is 200", id)
	require.Eventually(s.t, func() bool { return len(s.mailer.To(email)) >= 1 }, serviceWait, 20*time.Millisecond,
		"a welcome email to %s", email)
	require.Eventually(s.t, func() bool {
		status, body, err := s.tryGet("/users/" + id + "/points")
		var points pointsBody
		return err == nil && status == http.StatusOK && json.Unmarshal(body, &points) == nil && points.Balance > 0
	}, serviceWait, 20*time.Millisecond, "points for %s", id)
	require.Eventually(s.t, s.outboxDrained, serviceWait, 20*time.Millisecond, "the forwarder acks the outbox")
}

func (s *runningService) assertRegisteredOnce(id, name, email string) {
	s.t.Helper()
	t := s.t
	status, body := s.get("/users/" + id)
	require.Equal(t, http.StatusOK, status, "%s", body)
	var user struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	require.NoError(t, json.Unmarshal(body, &user), "%s", body)
	assert.Equal(t, id, user.ID)
	assert.Equal(t, name, user.Name)
	assert.Equal(t, email, user.Email)

	mails := s.mailer.To(email)
	require.Len(t, mails, 1, "exactly one welcome email to %s", email)
	assert.Equal(t, email, mails[0].To)
	assert.NotEmpty(t, mails[0].Subject)
	assert.NotContains(t, mails[0].Body, name, "the email never carries the name")

	status, body = s.get("/users/" + id + "/points")
	require.Equal(t, http.StatusOK, status, "%s", body)
	var points pointsBody
	require.NoError(t, json.Unmarshal(body, &points), "%s", body)
	assert.Equal(t, id, points.UserID)
	assert.Equal(t, 100, points.Balance)
	require.Len(t, points.Entries, 1, "%s", body)
	assert.Equal(t, 100, points.Entries[0].Amount)
	assert.Equal(t, "signup", points.Entries[0].Reason)

	assert.Equal(t, 1, s.count(`SELECT count(*) FROM events WHERE stream_id = ?`, id), "one event in the stream")
	assert.Equal(t, 1, s.count(`SELECT count(*) FROM credentials WHERE user_id = ?`, id))
}

// assertNothingFor checks that a rejected command left no trace.
func (s *runningService) assertNothingFor(id, email string) {
	s.t.Helper()
	t := s.t
	assert.Zero(t, s.count(`SELECT count(*) FROM events WHERE stream_id = ?`, id), "no event")
	assert.Zero(t, s.count(`SELECT count(*) FROM credentials WHERE user_id = ?`, id), "no credential")
	assert.Zero(t, s.count(`SELECT count(*) FROM user_emails WHERE user_id = ?`, id), "no email reservation")
	assert.Zero(t, s.count(`SELECT count(*) FROM points_entries WHERE user_id = ?`, id), "no points")
	status, body := s.get("/users/" + id)
	assert.Equal(t, http.StatusNotFound, status, "%s", body)
	if email != "" {
		assert.Empty(t, s.mailer.To(email), "no email")
	}
}

// poisoned collects what reaches the poison topic.
func (s *runningService) poisoned() func() []*message.Message {
	s.t.Helper()
	sub, err := s.svc.transport.Subscriber("TestPoisonWatcher", transport.PoisonTopic)
	require.NoError(s.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	s.t.Cleanup(cancel)
	messages, err := sub.Subscribe(ctx, transport.PoisonTopic)
	require.NoError(s.t, err)
	var mu sync.Mutex
	var got []*message.Message
	go func() {
		for msg := range messages {
			mu.Lock()
			got = append(got, msg)
			mu.Unlock()
			msg.Ack()
		}
	}()
	return func() []*message.Message {
		mu.Lock()
		defer mu.Unlock()
		return append([]*message.Message(nil), got...)
	}
}
