package userdb_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/adapters/dedup"
	"github.com/onboard/onboard/adapters/hasher"
	"github.com/onboard/onboard/adapters/mail"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
)

// The hot paths beside bcrypt, on each database:
//
//	go test -run '^$' -bench . -benchmem ./adapters/
//
// PostgreSQL and MySQL run when their URLs are set, as for the tests.

// benchHash stands for a bcrypt hash: these benchmarks measure what the
// service does besides hashing, which cmd/loadgen measures on its own.
var benchHash = []byte("$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy")

type precomputedHasher struct{}

func (precomputedHasher) Hash(context.Context, string) ([]byte, error)          { return benchHash, nil }
func (precomputedHasher) Matches(context.Context, []byte, string) (bool, error) { return true, nil }

func forEachBackendB(b *testing.B, bench func(b *testing.B, db *testenv.DB)) {
	for _, backend := range testenv.Backends() {
		b.Run(backend.Name, func(b *testing.B) {
			bench(b, testenv.StoreDB(b, backend))
		})
	}
}

// BenchmarkRegisterUser_WithoutBcrypt: command handling from validation to
// commit (email reservation, credential, event append, outbox publish).
func BenchmarkRegisterUser_WithoutBcrypt(b *testing.B) {
	forEachBackendB(b, func(b *testing.B, db *testenv.DB) {
		handler := command.NewRegisterUserHandler(testenv.NewUserStore(b, db.DB, slog.New(slog.DiscardHandler)), precomputedHasher{}, nil, nil, nil)
		ctx := context.Background()
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			n++
			err := handler.Handle(ctx, &command.RegisterUser{
				UserID:   uuid.Must(uuid.NewV7()).String(),
				Name:     "Bench User",
				Email:    fmt.Sprintf("bench%d@example.com", n),
				Password: storeTestPassword,
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRegisterUser_SignedIn: a registration with its first session,
// the session stored in the registration's transaction (RegisterSignedIn,
// the API's path) beside in a statement of its own after it (the API's
// path before).
func BenchmarkRegisterUser_SignedIn(b *testing.B) {
	forEachBackendB(b, func(b *testing.B, db *testenv.DB) {
		sessions, err := adapters.NewSessionStore(adapters.SessionStoreConfig{DB: db.DB})
		if err != nil {
			b.Fatal(err)
		}
		handler := command.NewRegisterUserHandler(testenv.NewUserStore(b, db.DB, slog.New(slog.DiscardHandler)),
			precomputedHasher{}, nil, nil, nil).WithSessions(sessions)
		ctx := context.Background()
		ways := []struct {
			name     string
			register func(cmd *command.RegisterUser) error
		}{
			{"in its transaction", func(cmd *command.RegisterUser) error {
				_, _, err := handler.RegisterSignedIn(ctx, cmd)
				return err
			}},
			{"after it", func(cmd *command.RegisterUser) error {
				user, err := handler.Register(ctx, cmd)
				if err == nil {
					_, err = sessions.Start(ctx, user.ID(), nil)
				}
				return err
			}},
		}
		n := 0
		for _, way := range ways {
			b.Run(way.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					n++
					err := way.register(&command.RegisterUser{UserID: uuid.Must(uuid.NewV7()).String(),
						Name: "Bench User", Email: fmt.Sprintf("bench%d@example.com", n), Password: storeTestPassword})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
}

// BenchmarkUserStore_Register: the registration transaction alone, which
// appends the event to the event store and publishes it into the outbox.
func BenchmarkUserStore_Register(b *testing.B) {
	forEachBackendB(b, func(b *testing.B, db *testenv.DB) {
		store := testenv.NewUserStore(b, db.DB, slog.New(slog.DiscardHandler))
		ctx := context.Background()
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			n++
			user := newStoreUser(b, uuid.Must(uuid.NewV7()).String(), "Bench User", fmt.Sprintf("bench%d@example.com", n))
			if err := store.Register(ctx, user, benchHash, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkOutboxPublish: one event message into the outbox table, in a
// transaction of its own.
func BenchmarkOutboxPublish(b *testing.B) {
	forEachBackendB(b, func(b *testing.B, db *testenv.DB) {
		var schema wsql.SchemaAdapter = watermillsql.QueueSchema{MySQL: db.Dialect == "mysql"}
		if db.Dialect == "sqlite" {
			schema = watermillsql.SQLiteSchema{}
		}
		payload := []byte(`{"user_id":"0190f5c4-7b9e-7000-8000-000000000001","name":"Bench User","email":"bench@example.com"}`)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			publisher, err := wsql.NewPublisher(wsql.TxFromStdSQL(tx), wsql.PublisherConfig{SchemaAdapter: schema}, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := publisher.Publish(transport.OutboxTopic, message.NewMessage(uuid.NewString(), payload)); err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSendWelcomeEmail: the handler with its deduplication claim, and
// a mailer that writes to a discarded log.
func BenchmarkSendWelcomeEmail(b *testing.B) {
	forEachBackendB(b, func(b *testing.B, db *testenv.DB) {
		mailer := mail.LogMailer{From: "welcome@onboard.test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		users := testenv.NewUserStore(b, db.DB, slog.New(slog.DiscardHandler))
		handler := event.NewSendWelcomeEmail(mailer, dedup.NewDeduplicator(db.DB, users), event.VerificationLinks{
			URL: "http://localhost:8080/verify-email", TTL: 48 * time.Hour, Key: make(domain.VerificationKey, 32),
		})
		benchEventHandler(b, handler.Handle)
	})
}

// BenchmarkSeedSignupPoints: the handler and its ledger insert.
func BenchmarkSeedSignupPoints(b *testing.B) {
	forEachBackendB(b, func(b *testing.B, db *testenv.DB) {
		handler := event.NewSeedSignupPoints(adapters.NewPointsLedger(db.DB), 100, nil)
		benchEventHandler(b, handler.Handle)
	})
}

func benchEventHandler(b *testing.B, handle func(context.Context, *domain.UserRegistered) error) {
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		e := &domain.UserRegistered{
			UserID:       uuid.Must(uuid.NewV7()).String(),
			Name:         "Bench User",
			Email:        fmt.Sprintf("bench%d@example.com", n),
			RegisteredAt: time.Now(),
		}
		if err := handle(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBcryptHash: the cost every registration pays on purpose, at the
// default BCRYPT_COST, for comparison with the paths above.
func BenchmarkBcryptHash(b *testing.B) {
	hasher := mustHasher(b, hasher.Config{Cost: 10, Concurrency: 1, MaxWait: time.Minute})
	for b.Loop() {
		if _, err := hasher.Hash(context.Background(), storeTestPassword); err != nil {
			b.Fatal(err)
		}
	}
}
