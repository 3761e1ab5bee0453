package eventstore_test

import (
	"context"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/eventstore"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
)

// A toy aggregate of the tests' own, with a registry of its own: a
// shopping cart of items, whose streams the store keeps beside nothing of
// the users'.

type cartOpened struct {
	CartID string `json:"cart_id" personal:"no"`
}

func (cartOpened) EventName() string  { return "CartOpened" }
func (e cartOpened) StreamID() string { return e.CartID }

// itemAdded is at version 2 of its form: version 1 named the item "sku".
type itemAdded struct {
	CartID   string `json:"cart_id" personal:"no"`
	Item     string `json:"item" personal:"no"`
	Quantity int    `json:"quantity"`
}

func (itemAdded) EventName() string  { return "ItemAdded" }
func (e itemAdded) StreamID() string { return e.CartID }

// noteAdded has a personal field: the store seals it, or refuses it.
type noteAdded struct {
	CartID string `json:"cart_id" personal:"no"`
	Note   string `json:"note" personal:"yes"`
}

func (noteAdded) EventName() string  { return "NoteAdded" }
func (e noteAdded) StreamID() string { return e.CartID }

var cartEvents = domain.NewRegistry(
	domain.Register[cartOpened](1, nil),
	domain.Register[itemAdded](2, map[int]domain.Upcaster{1: func(payload json.RawMessage) (json.RawMessage, error) {
		var v1 struct {
			CartID   string `json:"cart_id"`
			SKU      string `json:"sku"`
			Quantity int    `json:"quantity"`
		}
		if err := json.Unmarshal(payload, &v1); err != nil {
			return nil, err
		}
		return json.Marshal(itemAdded{CartID: v1.CartID, Item: v1.SKU, Quantity: v1.Quantity})
	}}),
	domain.Register[noteAdded](1, nil),
)

// cart is the aggregate, folded from its events.
type cart struct {
	id      string
	items   map[string]int
	version int
}

func cartFrom(events []domain.Event) (*cart, error) {
	c := &cart{items: map[string]int{}}
	for _, e := range events {
		switch e := e.(type) {
		case cartOpened:
			c.id = e.CartID
		case itemAdded:
			c.items[e.Item] += e.Quantity
		default:
			return nil, fmt.Errorf("cart: unknown event %s", e.EventName())
		}
		c.version++
	}
	return c, nil
}

// oldEventID is the id of an event an older build stored.
const oldEventID = "0193b6a0-0000-7000-8000-000000000001"

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// outboxDB is a migrated database with the outbox table the forwarder's
// subscriber would create.
func outboxDB(t *testing.T, backend testenv.Backend) *testenv.DB {
	t.Helper()
	db := testenv.MigratedDB(t, backend)
	outbox, err := watermillsql.NewSQLSubscriber(db.DB, transport.OutboxGroup, watermill.NopLogger{})
	require.NoError(t, err)
	require.NoError(t, outbox.SubscribeInitialize(transport.OutboxTopic))
	require.NoError(t, outbox.Close())
	return db
}

// outboxVersions are the schema versions the outbox's messages carry, in
// order.
func outboxVersions(t *testing.T, db *testenv.DB) []string {
	t.Helper()
	var versions []string
	for _, row := range db.RowsAsText(t, `SELECT payload FROM `+
		db.Quote(watermillsql.MessagesTable(db.DB, transport.OutboxTopic))+` ORDER BY `+db.Quote("offset")) {
		var envelope struct {
			Metadata map[string]string `json:"metadata"`
		}
		require.NoError(t, json.Unmarshal([]byte(row[1:len(row)-1]), &envelope))
		versions = append(versions, envelope.Metadata[transport.SchemaVersionKey])
	}
	return versions
}

func newStore(t *testing.T, cfg eventstore.Config) *eventstore.Store {
	t.Helper()
	store, err := eventstore.New(cfg)
	require.NoError(t, err)
	return store
}

func appendEvents(t *testing.T, db *testenv.DB, store *eventstore.Store, streamID string, version int,
	events ...domain.Event,
) error {
	t.Helper()
	ctx := testCtx(t)
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	if err := store.Append(ctx, tx, streamID, version, nil, events...); err != nil {
		return err
	}
	return tx.Commit()
}

// A second aggregate uses the store with its own registry: its streams
// are appended, published into the outbox with their versions, loaded
// back (an older form upcast) and folded, recorded for an export, and
// guarded by their versions.
func TestStore_ASecondAggregateWithItsOwnRegistry(t *testing.T) {
	for _, backend := range testenv.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			db := outboxDB(t, backend)
			store := newStore(t, eventstore.Config{DB: db.DB, Events: cartEvents})
			ctx := testCtx(t)

			require.NoError(t, appendEvents(t, db, store, "cart-1", 0,
				cartOpened{CartID: "cart-1"}, itemAdded{CartID: "cart-1", Item: "tea", Quantity: 2}))
			// A row of itemAdded's version 1, as an older build stored it.
			_, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO events
				(event_id, stream_id, stream_version, event_type, schema_version, payload, metadata)
				VALUES ('0193b6a0-0000-7000-8000-000000000001', 'cart-1', 3, 'ItemAdded', 1, '{"cart_id":"cart-1","sku":"tea","quantity":1}', '{}')`))
			require.NoError(t, err)

			events, err := store.Load(ctx, "cart-1")
			require.NoError(t, err)
			c, err := cartFrom(events)
			require.NoError(t, err)
			assert.Equal(t, &cart{id: "cart-1", items: map[string]int{"tea": 3}, version: 3}, c)

			held, err := store.Holds(ctx, "cart-1")
			require.NoError(t, err)
			assert.True(t, held)
			held, err = store.Holds(ctx, "cart-2")
			require.NoError(t, err)
			assert.False(t, held)
			none, err := store.Load(ctx, "cart-2")
			require.NoError(t, err)
			assert.Empty(t, none)

			recorded, err := store.Recorded(ctx, "cart-1")
			require.NoError(t, err)
			require.Len(t, recorded, 3)
			assert.Equal(t, []int{1, 2, 3}, []int{recorded[0].StreamVersion, recorded[1].StreamVersion, recorded[2].StreamVersion})
			assert.Equal(t, oldEventID, recorded[2].ID)
			assert.Equal(t, 1, recorded[2].SchemaVersion)
			assert.Equal(t, itemAdded{CartID: "cart-1", Item: "tea", Quantity: 1}, recorded[2].Event)
			assert.False(t, recorded[0].RecordedAt.IsZero())
			_, err = store.Recorded(ctx, "cart-2")
			assert.ErrorIs(t, err, eventstore.ErrNoStream)

			assert.Equal(t, []string{"(CartOpened,1)", "(ItemAdded,2)"}, db.RowsAsText(t,
				`SELECT event_type, schema_version FROM events WHERE stream_id = ? AND stream_version < 3
				ORDER BY stream_version`, "cart-1"))
			assert.Equal(t, []string{"1", "2"}, outboxVersions(t, db), "each outbox message carries its event's version")

			// Another writer appended at version 3 first.
			err = appendEvents(t, db, store, "cart-1", 2, itemAdded{CartID: "cart-1", Item: "jam", Quantity: 1})
			assert.ErrorIs(t, err, eventstore.ErrVersionConflict)

			streams, n, err := store.LoadStreams(ctx, db.DB, []string{"cart-1", "cart-2"})
			require.NoError(t, err)
			assert.Equal(t, 3, n)
			assert.Len(t, streams["cart-1"], 3)
			assert.NotContains(t, streams, "cart-2")
		})
	}
}

// An event the registry does not name is refused, as is one with a
// personal field when the store has nothing to seal it with; neither
// leaves a row.
func TestStore_RefusesWhatItCannotStore(t *testing.T) {
	db := outboxDB(t, testenv.Backends()[0])
	store := newStore(t, eventstore.Config{DB: db.DB, Events: cartEvents})
	err := appendEvents(t, db, store, "u-1", 0, domain.PasswordChanged{UserID: "u-1"})
	assert.ErrorContains(t, err, `unknown event "PasswordChanged"`)
	err = appendEvents(t, db, store, "cart-1", 0, noteAdded{CartID: "cart-1", Note: "for Ada"})
	assert.ErrorContains(t, err, "personal fields")
	assert.Equal(t, []string{"(0)"}, db.RowsAsText(t, `SELECT COUNT(*) FROM events`))

	_, err = eventstore.New(eventstore.Config{DB: db.DB})
	assert.Error(t, err, "a store without a registry")
}

// upperFields stands in for a key: it seals a personal field by
// upper-casing it, and opens it back; a stream without a key is left as
// stored.
type upperFields struct{ keys map[string]bool }

func (f upperFields) Seal(_ cipher.AEAD, _ string, e domain.Event) (domain.Event, error) {
	return cartEvents.MapPersonal(e, func(_, value string) (string, error) { return "SEALED:" + value, nil })
}

func (f upperFields) Openers(_ context.Context, _ eventstore.Querier, streams map[string][]string) (map[string]eventstore.Opener, error) {
	openers := map[string]eventstore.Opener{}
	for id := range streams {
		if !f.keys[id] {
			openers[id] = func(string, domain.Event) (domain.Event, error) { return nil, errors.New("key gone") }
			continue
		}
		openers[id] = func(_ string, e domain.Event) (domain.Event, error) {
			return cartEvents.MapPersonal(e, func(_, value string) (string, error) {
				return value[len("SEALED:"):], nil
			})
		}
	}
	return openers, nil
}

// With Fields, a personal field is stored as they seal it and read back
// as they open it, stream by stream.
func TestStore_SealsPersonalFieldsWithItsFields(t *testing.T) {
	db := outboxDB(t, testenv.Backends()[0])
	store := newStore(t, eventstore.Config{DB: db.DB, Events: cartEvents, Fields: upperFields{keys: map[string]bool{"cart-1": true}}})
	require.NoError(t, appendEvents(t, db, store, "cart-1", 0, noteAdded{CartID: "cart-1", Note: "for Ada"}))
	require.NoError(t, appendEvents(t, db, store, "cart-2", 0, noteAdded{CartID: "cart-2", Note: "for Bob"}))
	assert.Equal(t, []string{`({"cart_id":"cart-1","note":"SEALED:for Ada"})`}, db.RowsAsText(t,
		`SELECT payload FROM events WHERE stream_id = ?`, "cart-1"))

	events, err := store.Load(testCtx(t), "cart-1")
	require.NoError(t, err)
	assert.Equal(t, []domain.Event{noteAdded{CartID: "cart-1", Note: "for Ada"}}, events)
	_, err = store.Load(testCtx(t), "cart-2")
	assert.ErrorContains(t, err, "key gone")
}
