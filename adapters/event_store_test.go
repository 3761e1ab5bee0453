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
	UserID string `json:"user_id" personal:"no"`
	Note   string `json:"note" personal:"no"`
}

func (noteAdded) EventName() string { return "NoteAdded" }

func (e noteAdded) StreamID() string { return e.UserID }

// Two event types in one stream: each is stored, and published into the
// outbox, with its own registered version, and read back as its own type.
func TestEventStore_TwoEventTypesInOneStream(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := storeDB(t, backend)
		events := domain.NewRegistry(
			domain.Register[domain.PasswordChanged](1, nil),
			domain.Register[noteAdded](3, nil),
		)
		store := adapters.NewEventStore(db.DB, events, quietLogger())
		changed := domain.PasswordChanged{UserID: "u-1", Reason: domain.ReasonPasswordReset,
			ChangedAt: time.Now().UTC().Truncate(time.Microsecond)}
		noted := noteAdded{UserID: "u-1", Note: "hello"}

		ctx := testTimeoutCtx(t)
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		require.NoError(t, store.Append(ctx, tx, "u-1", 0, nil, changed, noted))
		require.NoError(t, tx.Commit())

		got, err := store.Load(ctx, "u-1")
		require.NoError(t, err)
		assert.Equal(t, []domain.Event{changed, noted}, got)
		assert.Equal(t, []string{"(PasswordChanged,1,1)", "(NoteAdded,2,3)"}, db.RowsAsText(t,
			`SELECT event_type, stream_version, schema_version FROM events WHERE stream_id = ? ORDER BY stream_version`, "u-1"))
		var versions []string
		for _, env := range outboxEnvelopes(t, db) {
			versions = append(versions, env.Metadata[transport.SchemaVersionKey])
		}
		assert.Equal(t, []string{"1", "3"}, versions, "each outbox message carries its event's version")

		// The same version again: another writer appended first.
		tx, err = db.BeginTx(ctx, nil)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback() }()
		assert.ErrorIs(t, store.Append(ctx, tx, "u-1", 1, nil, noted), adapters.ErrVersionConflict)
	})
}

func TestEventStore_RefusesAnUnregisteredEvent(t *testing.T) {
	db := storeDB(t, testenv.Backends()[0])
	store := adapters.NewEventStore(db.DB, domain.Events, quietLogger())
	ctx := testTimeoutCtx(t)
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	assert.ErrorContains(t, store.Append(ctx, tx, "u-1", 0, nil, noteAdded{UserID: "u-1"}), `unknown event "NoteAdded"`)
}
