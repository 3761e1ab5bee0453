package telemetry

import (
	"context"
	"database/sql"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
)

// Transactions is a store's transaction hook (userdb.TxHook) that makes
// a span of each of its transactions on db, named by its operation
// ("UserStore.Register"); without a provider, nil: no hook. A rejection
// (email taken, user changed meanwhile, already registered) is an answer,
// not an error: its span is marked onboard.rejected.
func (t Tracing) Transactions(db *sql.DB) func(context.Context, string) (context.Context, func(error)) {
	if t.TracerProvider == nil {
		return nil
	}
	tracer, system := t.Tracer(), dbSystem(db)
	return func(ctx context.Context, operation string) (context.Context, func(error)) {
		ctx, span := tracer.Start(ctx, operation, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(system, semconv.DBOperationName("transaction")))
		return ctx, func(err error) {
			var rejected *domain.Error
			if errors.As(err, &rejected) || errors.Is(err, command.ErrAlreadyRegistered) {
				span.SetAttributes(attribute.Bool("onboard.rejected", true))
				err = nil
			}
			EndSpan(span, err)
		}
	}
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

// PointsGranter is ledger, a ledger on db, with a span per grant
// ("PointsLedger.Grant"); without a provider, ledger itself.
func (t Tracing) PointsGranter(ledger event.PointsGranter, db *sql.DB) event.PointsGranter {
	if t.TracerProvider == nil {
		return ledger
	}
	return tracedGranter{granter: ledger, tracer: t.Tracer(), system: dbSystem(db)}
}

type tracedGranter struct {
	granter event.PointsGranter
	tracer  trace.Tracer
	system  attribute.KeyValue
}

func (g tracedGranter) Grant(ctx context.Context, userID string, entry domain.PointsEntry) error {
	ctx, span := g.tracer.Start(ctx, "PointsLedger.Grant", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(g.system, semconv.UserID(userID), attribute.String("onboard.points.reason", entry.Reason)))
	err := g.granter.Grant(ctx, userID, entry)
	EndSpan(span, err)
	return err
}
