package adapters

import (
	"context"
	"crypto/cipher"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/query"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/telemetry"
)

// ErrVersionConflict is returned when another writer appended to a stream
// at the same version first.
var ErrVersionConflict = errors.New("the stream changed meanwhile")

// EventStore appends events to streams in the events table and, in the same
// transaction, publishes each into the outbox; it reads them back through
// the registry, which names each event's schema version and its personal
// fields. Those are stored and published encrypted under the user's key
// (event_fields.go): the events table, the outbox, the transport, the
// retry and poison queues all hold the same ciphertext.
type EventStore struct {
	db      *sql.DB
	dialect sqldb.Dialect
	events  domain.Registry
	keys    *userKeys // nil: events without personal fields alone
	logger  watermill.LoggerAdapter
	queries struct{ append, load, holds string }
	tracing telemetry.Tracing // of the outbox publish
	// direct, when not nil, takes the events straight into its queue
	// tables (the sql transport), stamped as origin's: no outbox.
	direct *transport.Transport
	origin string
}

// NewEventStore returns the event store of db for the registered events,
// which must have no personal fields: the users' store makes the one that
// encrypts them.
func NewEventStore(db *sql.DB, events domain.Registry, logger *slog.Logger) *EventStore {
	return newEventStore(db, events, nil, logger)
}

func newEventStore(db *sql.DB, events domain.Registry, keys *userKeys, logger *slog.Logger) *EventStore {
	d := sqldb.Of(db)
	s := &EventStore{db: db, dialect: d, events: events, keys: keys, logger: watermill.NewSlogLogger(logger)}
	s.queries.append = d.Rebind(`INSERT INTO events
		(event_id, stream_id, stream_version, event_type, schema_version, payload, metadata)
		VALUES (?, ?, ?, ?, ?, ?, ?)`)
	// The user's wrapped key comes with the events, which it opens.
	s.queries.load = d.Rebind(`SELECT e.stream_id, e.event_id, e.event_type, e.schema_version, e.payload,
		k.master_key_id, k.nonce, k.ciphertext FROM events e LEFT JOIN user_keys k ON k.user_id = e.stream_id
		WHERE e.stream_id = ? ORDER BY e.stream_version`)
	s.queries.holds = d.Rebind(`SELECT 1 FROM events WHERE stream_id = ? LIMIT 1`)
	return s
}

type eventMetadata struct {
	CorrelationID   string `json:"correlation_id,omitempty"`
	ClientRequestID string `json:"client_request_id,omitempty"`
}

// Append writes events to the stream after version (the number of events
// it holds now; a unique (stream, version) pair gives optimistic
// concurrency: ErrVersionConflict), each with its registered schema
// version and its personal fields sealed under key (the stream's user's;
// nil for events without any), and publishes the same bytes into the
// outbox, all inside tx; on the sql transport (publishDirectly), into its
// queue tables instead.
func (s *EventStore) Append(ctx context.Context, tx *sql.Tx, streamID string, version int, key cipher.AEAD,
	events ...domain.Event,
) error {
	metadata, err := json.Marshal(eventMetadata{
		CorrelationID: app.CorrelationID(ctx), ClientRequestID: app.ClientRequestID(ctx),
	})
	if err != nil {
		return err
	}
	publisher, err := s.publisher(tx)
	if err != nil {
		return err
	}
	for _, event := range events {
		version++
		schemaVersion, err := s.events.Version(event.EventName())
		if err != nil {
			return err
		}
		eventID := uuid.Must(uuid.NewV7()).String()
		sealed, err := sealEvent(s.events, key, eventID, event)
		if err != nil {
			return err
		}
		payload, err := json.Marshal(sealed)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.queries.append, eventID, streamID, version,
			event.EventName(), schemaVersion, string(payload), string(metadata))
		if s.dialect.IsUniqueViolation(err) {
			return ErrVersionConflict
		}
		if err != nil {
			return fmt.Errorf("append %s: %w", event.EventName(), err)
		}
		msg := transport.NewEventMessage(ctx, eventID, event.EventName(), schemaVersion, payload)
		if err := publisher.Publish(transport.EventTopic(event.EventName()), msg); err != nil {
			return fmt.Errorf("publish %s: %w", event.EventName(), err)
		}
	}
	return nil
}

// publishDirectly has the events go straight into t's queue tables, in the
// transaction that appends them, marked as deploymentID's (as the
// forwarder marks them), when t is the sql transport on the store's
// database: one hop, one write less per event. Else, it does nothing.
func (s *EventStore) publishDirectly(t *transport.Transport, deploymentID string) {
	if t != nil && t.PublishesInTransactions() {
		s.direct, s.origin = t, deploymentID
	}
}

// publisher publishes messages inside tx: into the sql transport's queue
// tables (publishDirectly), or into the outbox table, which the forwarder
// later moves to the transport.
func (s *EventStore) publisher(tx *sql.Tx) (message.Publisher, error) {
	if s.direct != nil {
		publisher, err := s.direct.TxPublisher(tx)
		if err != nil {
			return nil, err
		}
		return telemetry.TracePublisher(transport.StampOrigin(publisher, s.origin), "publish", s.tracing), nil
	}
	publisher, err := wsql.NewPublisher(wsql.TxFromStdSQL(tx), wsql.PublisherConfig{
		SchemaAdapter: watermillsql.SchemaAdapter(s.db),
	}, s.logger)
	if err != nil {
		return nil, err
	}
	return telemetry.TracePublisher(
		forwarder.NewPublisher(publisher, forwarder.PublisherConfig{ForwarderTopic: transport.OutboxTopic}),
		"outbox publish", s.tracing), nil
}

// Load reads a stream's events in order, each brought up to the version
// this build reads, their personal fields opened; an empty stream has none.
// Those of an erased user, whose key is gone, read empty.
func (s *EventStore) Load(ctx context.Context, streamID string) ([]domain.Event, error) {
	streams, _, err := s.loadStreams(ctx, s.db, s.queries.load, streamID)
	return streams[streamID], err
}

// LoadStreams reads the events of several streams, each in order and
// brought up to date, their personal fields opened, with their number.
func (s *EventStore) LoadStreams(ctx context.Context, q execer, streamIDs []string) (map[string][]domain.Event, int, error) {
	if len(streamIDs) == 0 {
		return map[string][]domain.Event{}, 0, nil
	}
	args := make([]any, len(streamIDs))
	for i, id := range streamIDs {
		args[i] = id
	}
	query := s.dialect.Rebind(`SELECT e.stream_id, e.event_id, e.event_type, e.schema_version, e.payload,
		k.master_key_id, k.nonce, k.ciphertext FROM events e LEFT JOIN user_keys k ON k.user_id = e.stream_id
		WHERE e.stream_id IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ") + `)
		ORDER BY e.stream_id, e.stream_version`)
	return s.loadStreams(ctx, q, query, args...)
}

// storedEvent is a row of the events table, with its user's wrapped key.
type storedEvent struct {
	streamID, eventID, eventType string
	schemaVersion                int
	payload                      []byte
	masterKeyID                  sql.NullString
	wrapped                      WrappedSecret
}

// loadStreams runs a query of loadQuery's columns and decodes and opens
// each stream's events.
func (s *EventStore) loadStreams(ctx context.Context, q execer, query string, args ...any) (map[string][]domain.Event, int, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("load streams: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var stored []storedEvent
	for rows.Next() {
		var e storedEvent
		if err := rows.Scan(&e.streamID, &e.eventID, &e.eventType, &e.schemaVersion, &e.payload,
			&e.masterKeyID, &e.wrapped.Nonce, &e.wrapped.Ciphertext); err != nil {
			return nil, 0, fmt.Errorf("load streams: %w", err)
		}
		stored = append(stored, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("load streams: %w", err)
	}
	streams := make(map[string][]domain.Event)
	for start := 0; start < len(stored); {
		end := start
		for end < len(stored) && stored[end].streamID == stored[start].streamID {
			end++
		}
		events, err := s.decodeStream(stored[start:end])
		if err != nil {
			return nil, 0, err
		}
		streams[stored[start].streamID] = events
		start = end
	}
	return streams, len(stored), nil
}

// decodeStream decodes one stream's rows and opens their personal fields
// under the user's key, unwrapped once; an erased stream's read empty.
func (s *EventStore) decodeStream(rows []storedEvent) ([]domain.Event, error) {
	streamID := rows[0].streamID
	erased := slices.ContainsFunc(rows, func(e storedEvent) bool { return e.eventType == erasedEvent })
	key := &streamKey{userID: streamID, erased: erased, unwrap: func() (cipher.AEAD, error) {
		if !rows[0].masterKeyID.Valid || s.keys == nil {
			return nil, fmt.Errorf("user %s: %w", streamID, errNoUserKey)
		}
		w := rows[0].wrapped
		w.MasterKeyID = rows[0].masterKeyID.String
		return s.keys.open(streamID, w)
	}}
	events := make([]domain.Event, 0, len(rows))
	for _, row := range rows {
		event, err := s.events.Decode(row.eventType, row.schemaVersion, row.payload)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", streamID, err)
		}
		if event, err = openEvent(s.events, key, row.eventID, event); err != nil {
			return nil, err
		}
		events = append(events, event)
	}
	return events, nil
}

// Holds reports whether the stream has any event.
func (s *EventStore) Holds(ctx context.Context, streamID string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, s.queries.holds, streamID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up stream: %w", err)
	}
	return true, nil
}

// Recorded reads a stream's events as Load does, each with its id, its
// place in the stream, the schema version it was stored at and when it was
// recorded: domain.ErrUserNotFound for an empty stream.
func (s *EventStore) Recorded(ctx context.Context, streamID string) ([]query.RecordedEvent, error) {
	rows, err := s.db.QueryContext(ctx, s.dialect.Rebind(`SELECT e.stream_id, e.event_id, e.event_type, e.schema_version,
		e.payload, k.master_key_id, k.nonce, k.ciphertext, e.stream_version, e.recorded_at
		FROM events e LEFT JOIN user_keys k ON k.user_id = e.stream_id
		WHERE e.stream_id = ? ORDER BY e.stream_version`), streamID)
	if err != nil {
		return nil, fmt.Errorf("read stream: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var (
		stored   []storedEvent
		recorded []query.RecordedEvent
	)
	for rows.Next() {
		var (
			e  storedEvent
			r  query.RecordedEvent
			at any
		)
		if err := rows.Scan(&e.streamID, &e.eventID, &e.eventType, &e.schemaVersion, &e.payload,
			&e.masterKeyID, &e.wrapped.Nonce, &e.wrapped.Ciphertext, &r.StreamVersion, &at); err != nil {
			return nil, fmt.Errorf("read stream: %w", err)
		}
		r.ID, r.Type, r.SchemaVersion = e.eventID, e.eventType, e.schemaVersion
		r.RecordedAt, _ = asTime(at)
		stored, recorded = append(stored, e), append(recorded, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read stream: %w", err)
	}
	if len(stored) == 0 {
		return nil, domain.ErrUserNotFound
	}
	events, err := s.decodeStream(stored)
	if err != nil {
		return nil, err
	}
	for i, event := range events {
		recorded[i].Event = event
	}
	return recorded, nil
}
