// Package adapters holds onboard's stores: the event store with its outbox,
// users and credentials, the points ledger, the deduplicator of effects,
// the server's random values, and the password hasher. The databases,
// transports and mailers have packages of their own below it.
package adapters

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/domain"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
)

// UserStore is the event store of users, with their email reservations and
// credentials.
type UserStore struct {
	db      *sql.DB
	dialect sqldb.Dialect
	logger  watermill.LoggerAdapter
	queries userQueries
}

type userQueries struct {
	reserveEmail, emailOwner, storeCredential, loadCredential, appendEvent, loadStream, holdsStream string
}

// NewUserStore returns the store.
func NewUserStore(db *sql.DB, logger *slog.Logger) *UserStore {
	d := sqldb.Of(db)
	return &UserStore{db: db, dialect: d, logger: watermill.NewSlogLogger(logger), queries: userQueries{
		reserveEmail: d.Rebind(d.InsertOrIgnore(
			`INSERT INTO user_emails (email_key, user_id) VALUES (?, ?)`, "email_key")),
		emailOwner:      d.Rebind(`SELECT user_id FROM user_emails WHERE email_key = ?`),
		storeCredential: d.Rebind(`INSERT INTO credentials (user_id, password_hash) VALUES (?, ?)`),
		loadCredential:  d.Rebind(`SELECT password_hash FROM credentials WHERE user_id = ?`),
		appendEvent: d.Rebind(`INSERT INTO events
			(event_id, stream_id, stream_version, event_type, schema_version, payload, metadata)
			VALUES (?, ?, ?, ?, ?, ?, ?)`),
		holdsStream: d.Rebind(`SELECT 1 FROM events WHERE stream_id = ? LIMIT 1`),
		loadStream: d.Rebind(`SELECT event_type, schema_version, payload FROM events
			WHERE stream_id = ? ORDER BY stream_version`),
	}}
}

// ClientRequestIDMetadataKey carries, beside the correlation id, the id a
// client gave the request that produced a message.
const ClientRequestIDMetadataKey = "client_request_id"

type eventMetadata struct {
	CorrelationID   string `json:"correlation_id,omitempty"`
	ClientRequestID string `json:"client_request_id,omitempty"`
}

// Register commits, in one transaction, the email reservation, the
// credential, the user's pending events and their outbox messages.
func (s *UserStore) Register(ctx context.Context, user *domain.User, passwordHash []byte) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	if err := s.reserveEmail(ctx, tx, user); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.queries.storeCredential, user.ID(), string(passwordHash)); err != nil {
		return fmt.Errorf("store credential: %w", err)
	}
	if err := s.appendEvents(ctx, tx, user); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// reserveEmail claims the email's key for the user. A concurrent claim of the
// same key waits for this transaction, so exactly one wins. A claim that
// inserts nothing tells, by the key's owner, a redelivered registration
// (same user), a taken email (another user) or a reused user id (no owner).
func (s *UserStore) reserveEmail(ctx context.Context, tx *sql.Tx, user *domain.User) error {
	res, err := tx.ExecContext(ctx, s.queries.reserveEmail, user.Email().Key(), user.ID())
	if err != nil {
		return fmt.Errorf("reserve email: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	var owner string
	err = tx.QueryRowContext(ctx, s.queries.emailOwner, user.Email().Key()).Scan(&owner)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return domain.ErrUserExists
	case err != nil:
		return fmt.Errorf("read email owner: %w", err)
	case owner == user.ID():
		return command.ErrAlreadyRegistered
	}
	return domain.ErrEmailTaken
}

// appendEvents writes the pending events at their stream versions (a unique
// (stream, version) pair gives optimistic concurrency) and publishes each one
// into the outbox in the same transaction.
func (s *UserStore) appendEvents(ctx context.Context, tx *sql.Tx, user *domain.User) error {
	pending := user.PendingEvents()
	version := user.Version() - len(pending)
	metadata, err := json.Marshal(eventMetadata{
		CorrelationID: app.CorrelationID(ctx), ClientRequestID: app.ClientRequestID(ctx),
	})
	if err != nil {
		return err
	}
	for _, event := range pending {
		version++
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
		_, err = tx.ExecContext(ctx, s.queries.appendEvent, messageID, user.ID(), version,
			event.EventName(), domain.UserRegisteredSchemaVersion, string(payload), string(metadata))
		if s.dialect.IsUniqueViolation(err) { // (stream, version) taken: another writer won
			return domain.ErrUserExists
		}
		if err != nil {
			return fmt.Errorf("append %s: %w", event.EventName(), err)
		}
	}
	return nil
}

// outboxBus is an event bus whose messages land in the outbox table inside
// tx; the forwarder later moves them to the transport.
func (s *UserStore) outboxBus(tx *sql.Tx, onMessageID func(string)) (*cqrs.EventBus, error) {
	publisher, err := wsql.NewPublisher(wsql.TxFromStdSQL(tx), wsql.PublisherConfig{
		SchemaAdapter: watermillsql.SchemaAdapter(s.db),
	}, s.logger)
	if err != nil {
		return nil, err
	}
	return cqrs.NewEventBusWithConfig(
		forwarder.NewPublisher(publisher, forwarder.PublisherConfig{ForwarderTopic: transport.OutboxTopic}),
		cqrs.EventBusConfig{
			GeneratePublishTopic: func(p cqrs.GenerateEventPublishTopicParams) (string, error) {
				return transport.EventTopic(p.EventName), nil
			},
			OnPublish: func(p cqrs.OnEventSendParams) error {
				if id := app.CorrelationID(p.Message.Context()); id != "" {
					middleware.SetCorrelationID(id, p.Message)
				}
				if id := app.ClientRequestID(p.Message.Context()); id != "" {
					p.Message.Metadata.Set(ClientRequestIDMetadataKey, id)
				}
				transport.SetSchemaVersion(p.EventName, p.Message)
				onMessageID(p.Message.UUID)
				return nil
			},
			Marshaler: transport.Marshaler,
			Logger:    s.logger,
		})
}

// RegisteredUser returns a user and its password hash, or
// domain.ErrUserNotFound.
func (s *UserStore) RegisteredUser(ctx context.Context, id string) (*domain.User, []byte, error) {
	user, err := s.LoadUser(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	var hash string
	err = s.db.QueryRowContext(ctx, s.queries.loadCredential, id).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, domain.ErrUserNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load credential: %w", err)
	}
	return user, []byte(hash), nil
}

// HoldsUser reports whether this database holds the user's stream.
func (s *UserStore) HoldsUser(ctx context.Context, id string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, s.queries.holdsStream, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up user: %w", err)
	}
	return true, nil
}

// LoadUser rebuilds a user from its stream, or returns domain.ErrUserNotFound.
func (s *UserStore) LoadUser(ctx context.Context, id string) (*domain.User, error) {
	rows, err := s.db.QueryContext(ctx, s.queries.loadStream, id)
	if err != nil {
		return nil, fmt.Errorf("load user: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var events []domain.Event
	for rows.Next() {
		var eventType string
		var schemaVersion int
		var payload []byte
		if err := rows.Scan(&eventType, &schemaVersion, &payload); err != nil {
			return nil, fmt.Errorf("load user: %w", err)
		}
		event, err := decodeEvent(eventType, schemaVersion, payload)
		if err != nil {
			return nil, err
		}
		events = append(events, event)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load user: %w", err)
	}
	return domain.UnmarshalUserFromEvents(events)
}

func decodeEvent(eventType string, schemaVersion int, payload []byte) (domain.Event, error) {
	switch {
	case eventType == domain.UserRegistered{}.EventName() && schemaVersion == domain.UserRegisteredSchemaVersion:
		var e domain.UserRegistered
		if err := json.Unmarshal(payload, &e); err != nil {
			return nil, fmt.Errorf("decode %s: %w", eventType, err)
		}
		return e, nil
	}
	return nil, errors.New("unknown stored event " + eventType)
}
