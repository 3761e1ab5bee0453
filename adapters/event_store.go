package adapters

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/domain"
)

// ErrVersionConflict is returned when another writer appended to a stream
// at the same version first.
var ErrVersionConflict = errors.New("the stream changed meanwhile")

// EventStore appends events to streams in the events table and, in the same
// transaction, publishes each into the outbox; it reads them back through
// the registry, which names each event's schema version.
type EventStore struct {
	db      *sql.DB
	dialect sqldb.Dialect
	events  domain.Registry
	logger  watermill.LoggerAdapter
	queries struct{ append, load, holds string }
	tracing transport.Tracing // of the outbox publish
}

// NewEventStore returns the event store of db for the registered events.
func NewEventStore(db *sql.DB, events domain.Registry, logger *slog.Logger) *EventStore {
	d := sqldb.Of(db)
	s := &EventStore{db: db, dialect: d, events: events, logger: watermill.NewSlogLogger(logger)}
	s.queries.append = d.Rebind(`INSERT INTO events
		(event_id, stream_id, stream_version, event_type, schema_version, payload, metadata)
		VALUES (?, ?, ?, ?, ?, ?, ?)`)
	s.queries.load = d.Rebind(`SELECT event_type, schema_version, payload FROM events
		WHERE stream_id = ? ORDER BY stream_version`)
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
// version, and publishes each into the outbox, all inside tx.
func (s *EventStore) Append(ctx context.Context, tx *sql.Tx, streamID string, version int, events ...domain.Event) error {
	metadata, err := json.Marshal(eventMetadata{
		CorrelationID: app.CorrelationID(ctx), ClientRequestID: app.ClientRequestID(ctx),
	})
	if err != nil {
		return err
	}
	for _, event := range events {
		version++
		schemaVersion, err := s.events.Version(event.EventName())
		if err != nil {
			return err
		}
		var messageID string
		bus, err := s.outboxBus(tx, func(id string) { messageID = id })
		if err != nil {
			return err
		}
		if err := bus.Publish(ctx, event); err != nil {
			return fmt.Errorf("publish %s into outbox: %w", event.EventName(), err)
		}
		payload, err := json.Marshal(event)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.queries.append, messageID, streamID, version,
			event.EventName(), schemaVersion, string(payload), string(metadata))
		if s.dialect.IsUniqueViolation(err) {
			return ErrVersionConflict
		}
		if err != nil {
			return fmt.Errorf("append %s: %w", event.EventName(), err)
		}
	}
	return nil
}

// outboxBus is an event bus whose messages land in the outbox table inside
// tx; the forwarder later moves them to the transport.
func (s *EventStore) outboxBus(tx *sql.Tx, onMessageID func(string)) (*cqrs.EventBus, error) {
	publisher, err := wsql.NewPublisher(wsql.TxFromStdSQL(tx), wsql.PublisherConfig{
		SchemaAdapter: watermillsql.SchemaAdapter(s.db),
	}, s.logger)
	if err != nil {
		return nil, err
	}
	return cqrs.NewEventBusWithConfig(transport.TracePublisher(
		forwarder.NewPublisher(publisher, forwarder.PublisherConfig{ForwarderTopic: transport.OutboxTopic}),
		"outbox publish", s.tracing),
		cqrs.EventBusConfig{
			GeneratePublishTopic: func(p cqrs.GenerateEventPublishTopicParams) (string, error) {
				return transport.EventTopic(p.EventName), nil
			},
			OnPublish: func(p cqrs.OnEventSendParams) error {
				if id := app.CorrelationID(p.Message.Context()); id != "" {
					middleware.SetCorrelationID(id, p.Message)
				}
				if id := app.ClientRequestID(p.Message.Context()); id != "" {
					p.Message.Metadata.Set(transport.ClientRequestIDKey, id)
				}
				if err := transport.SetSchemaVersion(s.events, p.EventName, p.Message); err != nil {
					return err
				}
				onMessageID(p.Message.UUID)
				return nil
			},
			Marshaler: transport.Marshaler,
			Logger:    s.logger,
		})
}

// Load reads a stream's events in order, each brought up to the version
// this build reads; an empty stream has none.
func (s *EventStore) Load(ctx context.Context, streamID string) ([]domain.Event, error) {
	rows, err := s.db.QueryContext(ctx, s.queries.load, streamID)
	if err != nil {
		return nil, fmt.Errorf("load stream: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var events []domain.Event
	for rows.Next() {
		var (
			eventType     string
			schemaVersion int
			payload       []byte
		)
		if err := rows.Scan(&eventType, &schemaVersion, &payload); err != nil {
			return nil, fmt.Errorf("load stream: %w", err)
		}
		event, err := s.events.Decode(eventType, schemaVersion, payload)
		if err != nil {
			return nil, err
		}
		events = append(events, event)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load stream: %w", err)
	}
	return events, nil
}

// LoadStreams reads the events of several streams, each in order and
// brought up to date, with their number.
func (s *EventStore) LoadStreams(ctx context.Context, q execer, streamIDs []string) (map[string][]domain.Event, int, error) {
	streams := make(map[string][]domain.Event, len(streamIDs))
	if len(streamIDs) == 0 {
		return streams, 0, nil
	}
	args := make([]any, len(streamIDs))
	for i, id := range streamIDs {
		args[i] = id
	}
	rows, err := q.QueryContext(ctx, s.dialect.Rebind(`SELECT stream_id, event_type, schema_version, payload FROM events
		WHERE stream_id IN (`+strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ")+`)
		ORDER BY stream_id, stream_version`), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("load streams: %w", err)
	}
	defer func() { _ = rows.Close() }()
	n := 0
	for rows.Next() {
		var (
			streamID, eventType string
			schemaVersion       int
			payload             []byte
		)
		if err := rows.Scan(&streamID, &eventType, &schemaVersion, &payload); err != nil {
			return nil, 0, fmt.Errorf("load streams: %w", err)
		}
		event, err := s.events.Decode(eventType, schemaVersion, payload)
		if err != nil {
			return nil, 0, fmt.Errorf("stream %s: %w", streamID, err)
		}
		streams[streamID] = append(streams[streamID], event)
		n++
	}
	return streams, n, rows.Err()
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
