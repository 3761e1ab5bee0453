// Package eventstore keeps the events of streams, one aggregate each, in
// the events table, and publishes each event in the transaction that
// appends it. It knows no aggregate: the registry it is given names each
// event's type, schema version (reads upcast older ones) and personal
// fields, which Fields seals with a key per stream (crypto-shredding).
// The users' store is one of its users; a second aggregate would be
// another, with a registry of its own.
package eventstore

import (
	"context"
	"crypto/cipher"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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

// ErrNoStream is a stream without any event.
var ErrNoStream = errors.New("no such stream")

// Querier runs statements in a transaction or on the pool.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Writer is the transaction Append writes in: a *sql.Tx, or a
// sqldb.Pipeline.
type Writer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// watermillExecutor is tx as watermill-sql's publisher writes with it.
func watermillExecutor(tx Writer) wsql.ContextExecutor {
	if t, ok := tx.(*sql.Tx); ok {
		return wsql.TxFromStdSQL(t)
	}
	return writeOnly{tx}
}

// writeOnly is a Writer as a watermill-sql executor that only writes,
// which is all its publisher does.
type writeOnly struct{ w Writer }

func (e writeOnly) ExecContext(ctx context.Context, query string, args ...any) (wsql.Result, error) {
	return e.w.ExecContext(ctx, query, args...)
}

func (e writeOnly) QueryContext(context.Context, string, ...any) (wsql.Rows, error) {
	return nil, errors.New("the transaction only writes")
}

// Opener opens the sealed personal fields of an event of one stream, the
// event stored with id eventID.
type Opener func(eventID string, e domain.Event) (domain.Event, error)

// Fields seal the personal fields of the events a store appends, and open
// those it reads, under a key per stream: a stream whose key is destroyed
// keeps its events, their personal fields unreadable.
type Fields interface {
	// Seal returns e, stored with id eventID, with its personal fields
	// sealed under key (the one Append was given).
	Seal(key cipher.AEAD, eventID string, e domain.Event) (domain.Event, error)
	// Openers returns the opener of each stream of streams (its event
	// types, in order), reading what they need (the streams' keys) with q.
	Openers(ctx context.Context, q Querier, streams map[string][]string) (map[string]Opener, error)
}

// Config configures New.
type Config struct {
	// DB holds the events table (and the outbox): required.
	DB *sql.DB
	// Events are the events the store appends and reads: required.
	Events domain.Registry
	// Fields seal and open the events' personal fields; nil: Events must
	// name none.
	Fields Fields
	Logger *slog.Logger
	// Tracing makes a span of each publish, whose traceparent the message
	// carries; zero: no spans.
	Tracing telemetry.Tracing
	// Transport, when it is the sql transport on DB, takes the events
	// straight into its queue tables in the transaction that appends them,
	// marked as DeploymentID's (as the forwarder marks them); nil, or
	// another transport: they go into the outbox, which the forwarder
	// moves.
	Transport    *transport.Transport
	DeploymentID string
}

// Store appends events to streams in the events table and, in the same
// transaction, publishes each; it reads them back through the registry.
// Personal fields are stored and published sealed (Fields): the events
// table, the outbox, the transport, the retry and poison queues all hold
// the same ciphertext.
type Store struct {
	db      *sql.DB
	dialect sqldb.Dialect
	events  domain.Registry
	fields  Fields
	logger  watermill.LoggerAdapter
	queries struct{ append, load, holds, recorded string }
	tracing telemetry.Tracing
	// direct, when not nil, takes the events straight into its queue
	// tables (the sql transport), stamped as origin's: no outbox.
	direct *transport.Transport
	origin string
}

// New returns the event store of cfg.DB for cfg.Events.
func New(cfg Config) (*Store, error) {
	if cfg.DB == nil {
		return nil, errors.New("event store: a database is required")
	}
	if len(cfg.Events.Names()) == 0 {
		return nil, errors.New("event store: a registry of events is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := sqldb.Of(cfg.DB)
	s := &Store{db: cfg.DB, dialect: d, events: cfg.Events, fields: cfg.Fields,
		logger: watermill.NewSlogLogger(cfg.Logger), tracing: cfg.Tracing}
	if cfg.Transport != nil && cfg.Transport.PublishesInTransactions() {
		s.direct, s.origin = cfg.Transport, cfg.DeploymentID
	}
	s.queries.append = d.Rebind(`INSERT INTO events
		(event_id, stream_id, stream_version, event_type, schema_version, payload, metadata)
		VALUES (?, ?, ?, ?, ?, ?, ?)`)
	s.queries.load = d.Rebind(`SELECT stream_id, event_id, event_type, schema_version, payload
		FROM events WHERE stream_id = ? ORDER BY stream_version`)
	s.queries.recorded = d.Rebind(`SELECT stream_id, event_id, event_type, schema_version, payload,
		stream_version, recorded_at FROM events WHERE stream_id = ? ORDER BY stream_version`)
	s.queries.holds = d.Rebind(`SELECT 1 FROM events WHERE stream_id = ? LIMIT 1`)
	return s, nil
}

// Events is the registry of the store's events.
func (s *Store) Events() domain.Registry { return s.events }

type eventMetadata struct {
	CorrelationID   string `json:"correlation_id,omitempty"`
	ClientRequestID string `json:"client_request_id,omitempty"`
}

// Append writes events to the stream after version (the number of events
// it holds now; a unique (stream, version) pair gives optimistic
// concurrency: ErrVersionConflict), each with its registered schema
// version and its personal fields sealed under key (the stream's; nil for
// events without any), and publishes the same bytes, all inside tx: into
// the outbox, or into the sql transport's queue tables (Config.Transport).
func (s *Store) Append(ctx context.Context, tx Writer, streamID string, version int, key cipher.AEAD,
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
		sealed, err := s.seal(key, eventID, event)
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

// seal seals the event's personal fields with the store's Fields; without
// them, an event that has any is refused.
func (s *Store) seal(key cipher.AEAD, eventID string, event domain.Event) (domain.Event, error) {
	if s.fields != nil {
		return s.fields.Seal(key, eventID, event)
	}
	if s.events.HasPersonalData(event.EventName()) {
		return nil, fmt.Errorf("append %s: it has personal fields, and the store nothing to seal them with",
			event.EventName())
	}
	return event, nil
}

// publisher publishes messages inside tx: into the sql transport's queue
// tables (Config.Transport), or into the outbox table, which the
// forwarder later moves to the transport. watermill-sql's publisher is
// bound to its transaction, so each transaction has its own.
func (s *Store) publisher(tx Writer) (message.Publisher, error) {
	executor := watermillExecutor(tx)
	if s.direct != nil {
		publisher, err := s.direct.TxPublisher(executor)
		if err != nil {
			return nil, err
		}
		return telemetry.TracePublisher(transport.StampOrigin(publisher, s.origin), "publish", s.tracing), nil
	}
	publisher, err := wsql.NewPublisher(executor, wsql.PublisherConfig{
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
func (s *Store) Load(ctx context.Context, streamID string) ([]domain.Event, error) {
	streams, _, err := s.loadStreams(ctx, s.db, false, s.queries.load, streamID)
	if err != nil {
		return nil, err
	}
	return streams[streamID].events, nil
}

// LoadStreams reads the events of several streams with q, each in order
// and brought up to date, their personal fields opened, with their number.
func (s *Store) LoadStreams(ctx context.Context, q Querier, streamIDs []string) (map[string][]domain.Event, int, error) {
	if len(streamIDs) == 0 {
		return map[string][]domain.Event{}, 0, nil
	}
	args := make([]any, len(streamIDs))
	for i, id := range streamIDs {
		args[i] = id
	}
	loadQuery := s.dialect.Rebind(`SELECT stream_id, event_id, event_type, schema_version, payload
		FROM events WHERE stream_id IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ") + `)
		ORDER BY stream_id, stream_version`)
	streams, n, err := s.loadStreams(ctx, q, false, loadQuery, args...)
	if err != nil {
		return nil, 0, err
	}
	events := make(map[string][]domain.Event, len(streams))
	for id, stream := range streams {
		events[id] = stream.events
	}
	return events, n, nil
}

// Recorded reads a stream's events as Load does, each with its id, its
// place in the stream, the schema version it was stored at and when it was
// recorded: ErrNoStream for an empty stream.
func (s *Store) Recorded(ctx context.Context, streamID string) ([]query.RecordedEvent, error) {
	streams, _, err := s.loadStreams(ctx, s.db, true, s.queries.recorded, streamID)
	if err != nil {
		return nil, err
	}
	stream, ok := streams[streamID]
	if !ok {
		return nil, ErrNoStream
	}
	for i, event := range stream.events {
		stream.recorded[i].Event = event
	}
	return stream.recorded, nil
}

// Holds reports whether the stream has any event.
func (s *Store) Holds(ctx context.Context, streamID string) (bool, error) {
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

// storedEvent is a row of the events table.
type storedEvent struct {
	streamID, eventID, eventType string
	schemaVersion                int
	payload                      []byte
}

// stream is a stream's events as read, and, when asked, their records.
type stream struct {
	events   []domain.Event
	recorded []query.RecordedEvent
}

// loadStreams runs loadQuery (the columns of storedEvent, then, when
// recorded, the stream version and the time of each), then decodes each
// stream's events and opens their personal fields.
func (s *Store) loadStreams(ctx context.Context, q Querier, recorded bool, loadQuery string, args ...any,
) (map[string]stream, int, error) {
	rows, err := q.QueryContext(ctx, loadQuery, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("load streams: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var (
		stored  []storedEvent
		records []query.RecordedEvent
	)
	for rows.Next() {
		var e storedEvent
		dest := []any{&e.streamID, &e.eventID, &e.eventType, &e.schemaVersion, &e.payload}
		var (
			r  query.RecordedEvent
			at any
		)
		if recorded {
			dest = append(dest, &r.StreamVersion, &at)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, 0, fmt.Errorf("load streams: %w", err)
		}
		stored = append(stored, e)
		if recorded {
			r.ID, r.Type, r.SchemaVersion = e.eventID, e.eventType, e.schemaVersion
			r.RecordedAt, _ = sqldb.AsTime(at)
			records = append(records, r)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("load streams: %w", err)
	}
	openers, err := s.openers(ctx, q, stored)
	if err != nil {
		return nil, 0, err
	}
	streams := make(map[string]stream)
	for start := 0; start < len(stored); {
		end := start
		for end < len(stored) && stored[end].streamID == stored[start].streamID {
			end++
		}
		events, err := s.decodeStream(stored[start:end], openers[stored[start].streamID])
		if err != nil {
			return nil, 0, err
		}
		st := stream{events: events}
		if recorded {
			st.recorded = records[start:end]
		}
		streams[stored[start].streamID] = st
		start = end
	}
	return streams, len(stored), nil
}

// openers are the Fields' openers of the streams of rows; none without
// Fields.
func (s *Store) openers(ctx context.Context, q Querier, rows []storedEvent) (map[string]Opener, error) {
	if s.fields == nil || len(rows) == 0 {
		return nil, nil
	}
	types := make(map[string][]string)
	for _, row := range rows {
		types[row.streamID] = append(types[row.streamID], row.eventType)
	}
	return s.fields.Openers(ctx, q, types)
}

// decodeStream decodes one stream's rows, brought up to date, and opens
// their personal fields with open (nil: they have none).
func (s *Store) decodeStream(rows []storedEvent, open Opener) ([]domain.Event, error) {
	streamID := rows[0].streamID
	events := make([]domain.Event, 0, len(rows))
	for _, row := range rows {
		event, err := s.events.Decode(row.eventType, row.schemaVersion, row.payload)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", streamID, err)
		}
		if open != nil {
			if event, err = open(row.eventID, event); err != nil {
				return nil, err
			}
		}
		events = append(events, event)
	}
	return events, nil
}
