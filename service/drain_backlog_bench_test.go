package service

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testfake"
)

// backlogFields is how a backlog's events hold their personal fields.
type backlogFields bool

const (
	plainFields  backlogFields = false // as an older version wrote them
	sealedFields backlogFields = true  // under the users' keys, as the event store writes them
)

func (f backlogFields) String() string {
	if f == sealedFields {
		return "sealed"
	}
	return "plain"
}

// sealedPrefix starts a personal field sealed under its user's key.
const sealedPrefix = "v1:"

// backlogUsers are backlogEvents users registered in a database of their
// own, which no connection holds open, so that each drain may copy it,
// and the UserRegistered events the event store wrote for them.
type backlogUsers struct {
	dbURL      string
	masterKeys *secrets.MasterKeys
	events     []backlogEvent
	addresses  map[string]bool
}

// backlogEvent is a stored UserRegistered: its payload as the event store
// wrote it, and the same with the personal fields in the clear.
type backlogEvent struct {
	id            string
	schemaVersion int
	sealed, plain []byte
}

// registerBacklog registers backlogEvents users, a few at a time, through
// the user store of a service built on a database of their own (not run),
// with a precomputed hash, and reads their events; their outbox rows are
// deleted, so that the forwarder of a drain does not publish them too.
func registerBacklog(b *testing.B) *backlogUsers {
	b.Helper()
	ctx := context.Background()
	users := &backlogUsers{dbURL: testenv.PostgresDatabase(b), addresses: make(map[string]bool, backlogEvents)}
	users.masterKeys = testMasterKeys(b, users.dbURL)
	cfg := Config{PubSub: transport.KindGoChannel, DatabaseURL: users.dbURL, HTTPAddr: "127.0.0.1:0",
		BcryptCost: 10, MailFrom: DefaultMailFrom, MasterKeys: users.masterKeys}
	svc := benchService(ctx, b, cfg, &testfake.Mailer{}) // the schema, the server keys, the outbox
	svc.closeResources()
	db, err := sql.Open("pgx", users.dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = db.Close() }() // before a drain copies the database
	store, err := OpenUserStore(ctx, cfg, db)
	if err != nil {
		b.Fatal(err)
	}

	const name = "Backlog User"
	hash := []byte("$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy")
	emails := make(map[string]string, backlogEvents) // by user id
	var registered sync.Mutex
	next := make(chan int)
	errs := make(chan error, 1)
	var workers sync.WaitGroup
	for range 8 {
		workers.Go(func() {
			for i := range next {
				id, email := uuid.Must(uuid.NewV7()).String(), fmt.Sprintf("backlog%d@example.com", i)
				user, err := domain.NewUser(id, name, email, "correct horse battery staple", "", time.Now())
				if err == nil {
					err = store.Register(ctx, user, hash, nil)
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				registered.Lock()
				emails[id] = email
				registered.Unlock()
			}
		})
	}
	for i := range backlogEvents {
		next <- i
	}
	close(next)
	workers.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	for _, email := range emails {
		users.addresses[email] = true
	}
	if _, err := db.ExecContext(ctx, "DELETE FROM "+pq(watermillsql.MessagesTable(db, transport.OutboxTopic))); err != nil {
		b.Fatal(err)
	}

	rows, err := db.QueryContext(ctx, `SELECT event_id, schema_version, payload FROM events WHERE event_type = 'UserRegistered'`)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var (
			e      backlogEvent
			opened domain.UserRegistered
		)
		if err := rows.Scan(&e.id, &e.schemaVersion, &e.sealed); err != nil {
			b.Fatal(err)
		}
		if err := json.Unmarshal(e.sealed, &opened); err != nil {
			b.Fatal(err)
		}
		if !strings.HasPrefix(opened.Name, sealedPrefix) || !strings.HasPrefix(opened.Email, sealedPrefix) {
			b.Fatalf("the event store wrote the event of user %s with a plain personal field", opened.UserID)
		}
		opened.Name, opened.Email = name, emails[opened.UserID]
		if e.plain, err = json.Marshal(opened); err != nil {
			b.Fatal(err)
		}
		users.events = append(users.events, e)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	if len(users.events) != backlogEvents {
		b.Fatalf("%d UserRegistered events stored, want %d", len(users.events), backlogEvents)
	}
	return users
}

// pq quotes a PostgreSQL identifier.
func pq(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// copyPostgresDatabase creates a copy of the database at dbURL, which no
// connection may hold open, on the TEST_POSTGRES_URL server, drops it when
// the benchmark ends, and returns its URL.
func copyPostgresDatabase(b *testing.B, dbURL string) string {
	b.Helper()
	admin, err := sql.Open("pgx", testenv.URL(b, testenv.PostgresURLVar))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = admin.Close() }()
	source, err := url.Parse(dbURL)
	if err != nil {
		b.Fatal(err)
	}
	name := "onboard_test_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" TEMPLATE "+pq(strings.TrimPrefix(source.Path, "/"))); err != nil {
		b.Fatalf("copy the backlog's database: %v", err)
	}
	b.Cleanup(func() {
		admin, err := sql.Open("pgx", testenv.URL(b, testenv.PostgresURLVar))
		if err == nil {
			_, err = admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			_ = admin.Close()
		}
		if err != nil {
			b.Errorf("drop database %s: %v", name, err)
		}
	})
	copied := *source
	copied.Path = "/" + name
	return copied.String()
}
