package adapters_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
)

// noteAdded is a second event type, of the tests, at version 3 of its form.
type noteAdded struct {
	UserID string `json:"user_id"`
	Note   string `json:"note"`
}

func (noteAdded) EventName() string { return "NoteAdded" }

func (e noteAdded) StreamID() string { return e.UserID }

// Two event types in one stream: each is stored, and published into the
// outbox, with its own registered version, and read back as its own type.
func TestEventStore_TwoEventTypesInOneStream(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := storeDB(t, backend)
		events := domain.NewRegistry(
			domain.Register[domain.UserRegistered](domain.UserRegisteredSchemaVersion, nil),
			domain.Register[noteAdded](3, nil),
		)
		store := adapters.NewEventStore(db.DB, events, quietLogger())
		registered := domain.UserRegistered{UserID: "u-1", Name: "Ada", Email: "ada@example.com",
			RegisteredAt: time.Now().UTC().Truncate(time.Microsecond)}
		noted := noteAdded{UserID: "u-1", Note: "hello"}

		ctx := testTimeoutCtx(t)
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		require.NoError(t, store.Append(ctx, tx, "u-1", 0, registered, noted))
		require.NoError(t, tx.Commit())

		got, err := store.Load(ctx, "u-1")
		require.NoError(t, err)
		assert.Equal(t, []domain.Event{registered, noted}, got)
		assert.Equal(t, []string{"(UserRegistered,1,2)", "(NoteAdded,2,3)"}, db.RowsAsText(t,
			`SELECT event_type, stream_version, schema_version FROM events WHERE stream_id = ? ORDER BY stream_version`, "u-1"))
		var versions []string
		for _, env := range outboxEnvelopes(t, db) {
			versions = append(versions, env.Metadata[transport.SchemaVersionKey])
		}
		assert.Equal(t, []string{"2", "3"}, versions, "each outbox message carries its event's version")

		// The same version again: another writer appended first.
		tx, err = db.BeginTx(ctx, nil)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback() }()
		assert.ErrorIs(t, store.Append(ctx, tx, "u-1", 1, noted), adapters.ErrVersionConflict)
	})
}

func TestEventStore_RefusesAnUnregisteredEvent(t *testing.T) {
	db := storeDB(t, testenv.Backends()[0])
	store := adapters.NewEventStore(db.DB, domain.Events, quietLogger())
	ctx := testTimeoutCtx(t)
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	assert.ErrorContains(t, store.Append(ctx, tx, "u-1", 0, noteAdded{UserID: "u-1"}), `unknown event "NoteAdded"`)
}
