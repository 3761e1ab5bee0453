package adapters

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/telemetry"
)

// UserStoreConfig configures NewUserStoreWithConfig.
type UserStoreConfig struct {
	DB     *sql.DB
	Logger *slog.Logger
	// LookupKey is the server's EmailLookupSecret, at least
	// ServerKeyBytes long, under which user_emails and the users read
	// model hold the hashes of addresses, never an address: required.
	LookupKey []byte
	// MasterKeys wrap the users' keys in user_keys, under which the users
	// read model holds names and addresses: required.
	MasterKeys *MasterKeys
	// Tracing makes a span of each transaction and of each publish into
	// the outbox, whose traceparent the message carries; zero: no spans.
	Tracing transport.Tracing
	// Transport, when it is the sql transport on DB, takes the events
	// straight into its queue tables in the transaction that appends them,
	// marked as DeploymentID's; nil, or another transport: they go into
	// the outbox, which the forwarder moves.
	Transport    *transport.Transport
	DeploymentID string
}

// NewUserStoreWithConfig returns the users' store of cfg.DB.
func NewUserStoreWithConfig(cfg UserStoreConfig) (*UserStore, error) {
	if cfg.DB == nil {
		return nil, errors.New("user store: a database is required")
	}
	lookup, err := newEmailLookup(cfg.LookupKey)
	if err != nil {
		return nil, err
	}
	if cfg.MasterKeys == nil {
		return nil, errors.New("user store: master keys are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := newUserStore(cfg.DB, cfg.Logger, lookup, cfg.MasterKeys)
	if cfg.Tracing.TracerProvider != nil {
		s.tracer = cfg.Tracing.Tracer()
	}
	s.events.tracing = cfg.Tracing
	s.events.publishDirectly(cfg.Transport, cfg.DeploymentID)
	return s, nil
}

// startTransaction starts the span of the transaction of the store's
// operation ("UserStore.Register"); without a tracer, none (nil).
func (s *UserStore) startTransaction(ctx context.Context, operation string) (context.Context, trace.Span) {
	if s.tracer == nil {
		return ctx, nil
	}
	return s.tracer.Start(ctx, "UserStore."+operation, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(dbSystem(s.db), semconv.DBOperationName("transaction")))
}

// endTransaction ends the transaction's span: a rejection (email taken,
// user changed meanwhile, already registered) is an answer, not an error.
func endTransaction(span trace.Span, err error) {
	if span == nil {
		return
	}
	var rejected *domain.Error
	if errors.As(err, &rejected) || errors.Is(err, command.ErrAlreadyRegistered) {
		span.SetAttributes(attribute.Bool("onboard.rejected", true))
		err = nil
	}
	transport.EndSpan(span, err)
}

// dbSystem is the db.system.name attribute of db's dialect.
func dbSystem(db *sql.DB) attribute.KeyValue {
	switch sqldb.Of(db).Name() {
	case sqldb.Postgres.Name():
		return semconv.DBSystemNamePostgreSQL
	case sqldb.MySQL.Name():
		return semconv.DBSystemNameMySQL
	}
	return semconv.DBSystemNameSQLite
}

// TracedPointsLedger is a PointsLedger whose grants are spans.
type TracedPointsLedger struct {
	PointsLedger
	tracer trace.Tracer // nil: no spans
	system attribute.KeyValue
}

// Traced is the ledger with a span per grant; a nil provider: none.
func (l PointsLedger) Traced(provider trace.TracerProvider) TracedPointsLedger {
	traced := TracedPointsLedger{PointsLedger: l, system: dbSystem(l.db)}
	if provider != nil {
		traced.tracer = telemetry.Tracer(provider)
	}
	return traced
}

// Grant is PointsLedger.Grant in a span "PointsLedger.Grant".
func (l TracedPointsLedger) Grant(ctx context.Context, userID string, entry domain.PointsEntry) error {
	if l.tracer == nil {
		return l.PointsLedger.Grant(ctx, userID, entry)
	}
	ctx, span := l.tracer.Start(ctx, "PointsLedger.Grant", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(l.system, semconv.UserID(userID), attribute.String("onboard.points.reason", entry.Reason)))
	err := l.PointsLedger.Grant(ctx, userID, entry)
	transport.EndSpan(span, err)
	return err
}
