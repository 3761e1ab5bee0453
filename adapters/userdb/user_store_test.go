package userdb_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/adapters/hasher"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
)

// storeTestTimeout bounds every database call of these tests.
const storeTestPassword = "correct horse battery staple"

var storeTestNow = testenv.RegisteredAt

// outboxTable is the quoted name of the outbox table watermill-sql creates.
func outboxTable(db *testenv.DB) string {
	return db.Quote(watermillsql.MessagesTable(db.DB, transport.OutboxTopic))
}

func newStoreUser(t testing.TB, id, name, email string) *domain.User {
	t.Helper()
	user, err := domain.NewUser(id, name, email, storeTestPassword, "", storeTestNow)
	require.NoError(t, err)
	return user
}

func passwordHash(t *testing.T) []byte {
	t.Helper()
	hash, err := mustHasher(t, hasher.Config{Cost: bcrypt.MinCost}).Hash(context.Background(), storeTestPassword)
	require.NoError(t, err)
	return hash
}

func mustHasher(t testing.TB, cfg hasher.Config) *hasher.Bcrypt {
	t.Helper()
	h, err := hasher.New(cfg)
	require.NoError(t, err)
	return h
}

// outboxEnvelope is the forwarder's envelope as stored in the outbox table.
type outboxEnvelope struct {
	DestinationTopic string            `json:"destination_topic"`
	UUID             string            `json:"uuid"`
	Payload          []byte            `json:"payload"`
	Metadata         map[string]string `json:"metadata"`
}

func outboxEnvelopes(t *testing.T, db *testenv.DB) []outboxEnvelope {
	t.Helper()
	var out []outboxEnvelope
	for _, raw := range outboxRows(t, db) {
		var env outboxEnvelope
		require.NoError(t, json.Unmarshal(raw.payload, &env), "outbox payload is an envelope: %q", raw.payload)
		out = append(out, env)
	}
	return out
}

type outboxRow struct{ payload, metadata []byte }

// outboxRows reads the outbox table's payloads (whatever their column type,
// JSON or bytes) and metadata (empty when NULL).
func outboxRows(t *testing.T, db *testenv.DB) []outboxRow {
	t.Helper()
	rows, err := db.QueryContext(testenv.Context(t),
		`SELECT payload, metadata FROM `+outboxTable(db)+` ORDER BY `+db.Quote("offset"))
	require.NoError(t, err)
	defer func() { _ = rows.Close() }()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		require.NoError(t, rows.Scan(&r.payload, &r.metadata))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

func TestUserStore_RegisterThenLoad(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		id := uuid.NewString()
		user := newStoreUser(t, id, "  Ada Lovelace ", "Ada.Lovelace@Example.com")

		require.NoError(t, store.Register(testenv.Context(t), user, passwordHash(t), nil))

		loaded, err := store.LoadUser(testenv.Context(t), id)
		require.NoError(t, err)
		assert.Equal(t, id, loaded.ID())
		assert.Equal(t, "Ada Lovelace", loaded.Name())
		assert.Equal(t, "Ada.Lovelace@Example.com", loaded.Email().String(), "the address as typed")
		assert.Equal(t, "ada.lovelace@example.com", loaded.Email().Key())
		assert.True(t, loaded.RegisteredAt().Equal(storeTestNow.Truncate(time.Microsecond)),
			"registered at %v, want %v", loaded.RegisteredAt(), storeTestNow)
		assert.Equal(t, 1, loaded.Version())
		assert.Empty(t, loaded.PendingEvents(), "a loaded user has nothing pending")
	})
}

// On PostgreSQL a registration commits as one pipeline; one that does not
// (a taken address, a repeat) falls back to a transaction, which answers
// as before and leaves the registered user readable.
func TestUserStore_RegistersAsAPipelineOnPostgreSQL(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		want := int64(0)
		if backend.Name == "postgres" {
			want = 1
		}
		id := uuid.NewString()

		require.NoError(t, store.Register(testenv.Context(t), newStoreUser(t, id, "Ada", "ada@example.com"), passwordHash(t), nil))
		err := store.Register(testenv.Context(t), newStoreUser(t, uuid.NewString(), "Eve", "ada@example.com"), passwordHash(t), nil)
		require.ErrorIs(t, err, domain.ErrEmailTaken)
		err = store.Register(testenv.Context(t), newStoreUser(t, id, "Ada", "ada@example.com"), passwordHash(t), nil)
		require.ErrorIs(t, err, command.ErrAlreadyRegistered)

		assert.Equal(t, want, store.PipelinedRegistrations())
		loaded, err := store.LoadUser(testenv.Context(t), id)
		require.NoError(t, err)
		assert.Equal(t, "ada@example.com", loaded.Email().String())
		assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM credentials`))
	})
}

// A registration stores the session it is given in its own transaction,
// pipelined on PostgreSQL; one that does not commit stores none.
func TestUserStore_RegisterStoresItsSession(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		sessions, err := adapters.NewSessionStore(adapters.SessionStoreConfig{DB: db.DB})
		require.NoError(t, err)
		ctx := testenv.Context(t)
		register := func(id, name string) (command.Session, error) {
			session, err := sessions.Open(id)
			require.NoError(t, err)
			return session, store.Register(ctx, newStoreUser(t, id, name, "ada@example.com"), passwordHash(t), &session)
		}
		id := uuid.NewString()

		first, err := register(id, "Ada")
		require.NoError(t, err)
		taken, err := register(uuid.NewString(), "Eve")
		require.ErrorIs(t, err, domain.ErrEmailTaken)
		repeat, err := register(id, "Ada")
		require.ErrorIs(t, err, command.ErrAlreadyRegistered)

		owner, err := sessions.User(ctx, first.Token)
		require.NoError(t, err)
		assert.Equal(t, id, owner)
		for _, s := range []command.Session{taken, repeat} {
			_, err = sessions.User(ctx, s.Token)
			assert.ErrorIs(t, err, domain.ErrUnauthenticated, "a registration that did not commit stored its session")
		}
		assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM sessions`))
		if backend.Name == "postgres" {
			assert.Equal(t, int64(1), store.PipelinedRegistrations(), "the session went in the pipeline")
		}
	})
}

func TestUserStore_LoadUnknownUser(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))

		user, err := store.LoadUser(testenv.Context(t), uuid.NewString())
		require.ErrorIs(t, err, domain.ErrUserNotFound)
		assert.Nil(t, user)
	})
}

func TestUserStore_SameUserTwiceIsAlreadyRegistered(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		id := uuid.NewString()

		require.NoError(t, store.Register(testenv.Context(t), newStoreUser(t, id, "Ada", "ada@example.com"), passwordHash(t), nil))
		// A redelivered command builds the very same user again.
		err := store.Register(testenv.Context(t), newStoreUser(t, id, "Ada", "ada@example.com"), passwordHash(t), nil)
		require.ErrorIs(t, err, command.ErrAlreadyRegistered)

		assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM events WHERE stream_id = ?`, id))
		assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM events`))
		assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM `+outboxTable(db)))
		assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM credentials`))
	})
}

func TestUserStore_Conflicts(t *testing.T) {
	tests := []struct {
		name    string
		id      func(first string) string
		email   string
		wantErr error
	}{
		{
			name:    "another id, same email in other case",
			id:      func(string) string { return uuid.NewString() },
			email:   "ADA@example.COM",
			wantErr: domain.ErrEmailTaken,
		},
		{
			name:    "another id, same email",
			id:      func(string) string { return uuid.NewString() },
			email:   "ada@example.com",
			wantErr: domain.ErrEmailTaken,
		},
		{
			name:    "same id, other email",
			id:      func(first string) string { return first },
			email:   "grace@example.com",
			wantErr: domain.ErrUserExists,
		},
	}
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				db := testenv.StoreDB(t, backend)
				store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
				first := uuid.NewString()
				require.NoError(t, store.Register(testenv.Context(t), newStoreUser(t, first, "Ada", "ada@example.com"), passwordHash(t), nil))
				second := tt.id(first)

				err := store.Register(testenv.Context(t), newStoreUser(t, second, "Other", tt.email), passwordHash(t), nil)
				require.ErrorIs(t, err, tt.wantErr)
				assert.NotErrorIs(t, err, command.ErrAlreadyRegistered)

				// The failed transaction left nothing behind.
				assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM events`))
				assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM `+outboxTable(db)))
				assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM credentials`))
				assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM user_emails`))
				if second != first {
					assert.Zero(t, db.Count(t, `SELECT count(*) FROM events WHERE stream_id = ?`, second))
					assert.Zero(t, db.Count(t, `SELECT count(*) FROM credentials WHERE user_id = ?`, second))
				}
				loaded, err := store.LoadUser(testenv.Context(t), first)
				require.NoError(t, err)
				assert.Equal(t, "ada@example.com", loaded.Email().String(), "the first registration is untouched")
				assert.Equal(t, "Ada", loaded.Name())
			})
		}
	})
}

func TestUserStore_ConcurrentRegistrationsOfOneEmail(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		hash := passwordHash(t)
		const n = 20
		ids := make([]string, n)
		users := make([]*domain.User, n)
		for i := range n {
			ids[i] = uuid.NewString()
			// The same address, in varying case.
			email := "ada@example.com"
			if i%2 == 1 {
				email = "Ada@Example.com"
			}
			users[i] = newStoreUser(t, ids[i], fmt.Sprintf("Ada %d", i), email)
		}

		start := make(chan struct{})
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = store.Register(testenv.Context(t), users[i], hash, nil)
			}()
		}
		close(start)
		wg.Wait()

		winner := -1
		for i, err := range errs {
			if err == nil {
				assert.Equal(t, -1, winner, "a second registration succeeded: %d and %d", winner, i)
				winner = i
				continue
			}
			assert.ErrorIs(t, err, domain.ErrEmailTaken, "registration %d", i)
		}
		require.NotEqual(t, -1, winner, "exactly one registration succeeds")

		assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM events`))
		assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM events WHERE stream_id = ?`, ids[winner]))
		assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM `+outboxTable(db)))
		assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM credentials`))
		assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM user_emails WHERE user_id = ?`, ids[winner]))
	})
}

func TestUserStore_RegisterWritesOneEventAndOneOutboxMessage(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		id := uuid.NewString()
		hash := passwordHash(t)
		const correlationID, clientRequestID = "corr-0f5e2a", "client-7d1c"
		ctx := app.WithClientRequestID(app.WithCorrelationID(testenv.Context(t), correlationID), clientRequestID)

		require.NoError(t, store.Register(ctx, newStoreUser(t, id, "Ada Lovelace", "ada@example.com"), hash, nil))

		// The event store: one row, version 1 of the user's stream.
		require.Equal(t, 1, db.Count(t, `SELECT count(*) FROM events`))
		var (
			eventID, streamID, eventType string
			streamVersion, schemaVersion int
			payload, metadata            []byte
		)
		require.NoError(t, db.QueryRowContext(testenv.Context(t),
			`SELECT event_id, stream_id, stream_version, event_type, schema_version, payload, metadata FROM events`).
			Scan(&eventID, &streamID, &streamVersion, &eventType, &schemaVersion, &payload, &metadata))
		assert.Equal(t, id, streamID)
		assert.Equal(t, 1, streamVersion)
		assert.Equal(t, "UserRegistered", eventType)
		assert.Equal(t, domain.UserRegisteredSchemaVersion, schemaVersion)
		assert.Equal(t, 2, schemaVersion)
		var meta map[string]any
		require.NoError(t, json.Unmarshal(metadata, &meta))
		assert.Equal(t, correlationID, meta["correlation_id"], "metadata %s", metadata)
		assert.Equal(t, clientRequestID, meta["client_request_id"], "metadata %s", metadata)
		var stored domain.UserRegistered
		require.NoError(t, json.Unmarshal(payload, &stored))
		assert.Equal(t, id, stored.UserID)
		assert.True(t, strings.HasPrefix(stored.Name, "v1:"), "the name is stored sealed: %s", payload)
		assert.True(t, strings.HasPrefix(stored.Email, "v1:"), "the address is stored sealed: %s", payload)
		loaded, err := store.LoadUser(testenv.Context(t), id)
		require.NoError(t, err)
		assert.Equal(t, "Ada Lovelace", loaded.Name(), "the store opens what it sealed")
		assert.Equal(t, "ada@example.com", loaded.Email().String())

		// The outbox: one envelope for events.UserRegistered, carrying the same
		// message as the event store.
		envelopes := outboxEnvelopes(t, db)
		require.Len(t, envelopes, 1)
		env := envelopes[0]
		assert.Equal(t, transport.EventTopic("UserRegistered"), env.DestinationTopic)
		assert.Equal(t, "events.UserRegistered", env.DestinationTopic)
		assert.Equal(t, eventID, env.UUID, "the outbox message id is the event id")
		assert.Equal(t, correlationID, env.Metadata[middleware.CorrelationIDMetadataKey], "metadata %v", env.Metadata)
		assert.Equal(t, clientRequestID, env.Metadata[transport.ClientRequestIDKey], "metadata %v", env.Metadata)
		var published domain.UserRegistered
		require.NoError(t, json.Unmarshal(env.Payload, &published), "inner payload %s", env.Payload)
		assert.Equal(t, stored, published)

		// No secret outside credentials.
		var storedHash string
		require.NoError(t, db.QueryRowContext(testenv.Context(t),
			db.Rebind(`SELECT password_hash FROM credentials WHERE user_id = ?`), id).Scan(&storedHash))
		assert.Equal(t, string(hash), storedHash)
		assert.True(t, strings.HasPrefix(storedHash, "$2a$"), "credentials hold the bcrypt hash")
		assert.NoError(t, bcrypt.CompareHashAndPassword([]byte(storedHash), []byte(storeTestPassword)))
		var texts []string
		for _, row := range db.RowsAsText(t, `SELECT * FROM `+db.Quote("events")) {
			texts = append(texts, "events row: "+row)
		}
		for _, row := range outboxRows(t, db) {
			texts = append(texts, "outbox payload: "+string(row.payload), "outbox metadata: "+string(row.metadata))
		}
		texts = append(texts, "inner outbox payload: "+string(env.Payload))
		require.Len(t, texts, 4)
		require.Contains(t, texts[0], id, "the events row reads as text")
		for _, text := range texts {
			assert.NotContains(t, text, "$2a$")
			assert.NotContains(t, text, storedHash)
			assert.NotContains(t, text, storeTestPassword)
			assert.NotContains(t, text, "Ada Lovelace", "no name in the clear")
			assert.NotContains(t, text, "ada@example", "no address in the clear")
		}
	})
}

func TestUserStore_NoCorrelationIDMeansNoneRecorded(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))

		require.NoError(t, store.Register(testenv.Context(t), newStoreUser(t, uuid.NewString(), "Ada", "ada@example.com"), passwordHash(t), nil))

		var metadata []byte
		require.NoError(t, db.QueryRowContext(testenv.Context(t), `SELECT metadata FROM events`).Scan(&metadata))
		var meta map[string]any
		require.NoError(t, json.Unmarshal(metadata, &meta))
		assert.NotContains(t, meta, "correlation_id")
		assert.NotContains(t, meta, "client_request_id")
	})
}

func TestUserStore_FailedRegistrationLeavesNothing(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		first := uuid.NewString()
		require.NoError(t, store.Register(testenv.Context(t), newStoreUser(t, first, "Ada", "ada@example.com"), passwordHash(t), nil))

		loser := uuid.NewString()
		err := store.Register(testenv.Context(t), newStoreUser(t, loser, "Eve", "ada@EXAMPLE.com"), passwordHash(t), nil)
		require.ErrorIs(t, err, domain.ErrEmailTaken)

		assert.Zero(t, db.Count(t, `SELECT count(*) FROM events WHERE stream_id = ?`, loser), "no event")
		assert.Zero(t, db.Count(t, `SELECT count(*) FROM credentials WHERE user_id = ?`, loser), "no credential")
		assert.Zero(t, db.Count(t, `SELECT count(*) FROM user_emails WHERE user_id = ?`, loser), "no email reservation")
		envelopes := outboxEnvelopes(t, db)
		require.Len(t, envelopes, 1, "no outbox row")
		var published domain.UserRegistered
		require.NoError(t, json.Unmarshal(envelopes[0].Payload, &published))
		assert.Equal(t, first, published.UserID)

		_, err = store.LoadUser(testenv.Context(t), loser)
		assert.ErrorIs(t, err, domain.ErrUserNotFound)

		// The loser can still register with a free address afterwards.
		require.NoError(t, store.Register(testenv.Context(t), newStoreUser(t, loser, "Eve", "eve@example.com"), passwordHash(t), nil))
		assert.Equal(t, 2, db.Count(t, `SELECT count(*) FROM `+outboxTable(db)))
	})
}

func TestUserStore_FailureAfterOutboxPublishRollsBackEverything(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		id := uuid.NewString()
		// The stream already has version 1 while the email and the credential are
		// free: the event append, which comes after the outbox publish, fails.
		_, err := db.ExecContext(testenv.Context(t), db.Rebind(`INSERT INTO events
			(event_id, stream_id, stream_version, event_type, schema_version, payload, metadata)
			VALUES (?, ?, 1, 'UserRegistered', 1, '{}', '{}')`), uuid.NewString(), id)
		require.NoError(t, err)

		err = store.Register(testenv.Context(t), newStoreUser(t, id, "Ada", "ada@example.com"), passwordHash(t), nil)
		require.ErrorIs(t, err, domain.ErrUserExists)

		assert.Empty(t, outboxEnvelopes(t, db), "the outbox message rolled back with the event")
		assert.Zero(t, db.Count(t, `SELECT count(*) FROM credentials`), "no credential")
		assert.Zero(t, db.Count(t, `SELECT count(*) FROM user_emails`), "no email reservation")
		assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM events`), "only the row already there")
	})
}

func TestUserStore_CanceledContextWritesNothing(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()

		err := store.Register(ctx, newStoreUser(t, uuid.NewString(), "Ada", "ada@example.com"), passwordHash(t), nil)
		require.Error(t, err)

		assert.Zero(t, db.Count(t, `SELECT count(*) FROM events`))
		assert.Zero(t, db.Count(t, `SELECT count(*) FROM `+outboxTable(db)))
		assert.Zero(t, db.Count(t, `SELECT count(*) FROM credentials`))
		assert.Zero(t, db.Count(t, `SELECT count(*) FROM user_emails`))
	})
}
