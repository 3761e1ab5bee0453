package service

import (
	"context"
	"database/sql"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/app/query"
	"github.com/onboard/onboard/domain"
)

// applicationParts are the use cases and the handlers of messages.
type applicationParts struct {
	app             app.Application
	users           *adapters.UserStore
	eventHandlers   []cqrs.EventHandler
	commandHandlers []cqrs.CommandHandler
}

// newApplication builds the use cases on the database's stores: it
// catches the users read model up with the event store first.
func newApplication(ctx context.Context, cfg Config, db *sql.DB, keys *adapters.ServerKeys, mailer event.Mailer,
	metrics *adapters.Metrics, logger *slog.Logger, tracing transport.Tracing) (applicationParts, error) {
	users := adapters.NewUserStoreWithConfig(adapters.UserStoreConfig{DB: db, Logger: logger, Tracing: tracing})
	if _, err := users.ReadModel().Prepare(ctx); err != nil {
		return applicationParts{}, err
	}
	ledger := adapters.NewPointsLedger(db).WithMetrics(metrics)
	// HashConcurrency hashes at a time; a registration waits for its turn at
	// most adapters.DefaultHashMaxWait (10 s, well within writeTimeout),
	// behind at most HashQueueMax others, else it is answered 503 overloaded.
	hasher, err := adapters.NewBcryptHasher(adapters.BcryptHasherConfig{
		Cost: cfg.BcryptCost, Concurrency: cfg.HashConcurrency, QueueMax: cfg.HashQueueMax,
		Waits: metrics.HashWaits,
	})
	if err != nil {
		return applicationParts{}, err
	}
	key, err := keys.Secret(ctx, adapters.VerificationKeySecret)
	if err != nil {
		return applicationParts{}, err
	}
	links := event.VerificationLinks{URL: cfg.VerifyURL, TTL: cfg.VerifyTTL, Key: domain.VerificationKey(key)}
	application := app.Application{
		Commands: app.Commands{
			RegisterUser:             command.NewRegisterUserHandler(users, hasher, nil),
			VerifyEmail:              command.NewVerifyEmailHandler(users, links.Key, links.TTL, nil),
			RequestVerificationEmail: command.NewRequestVerificationEmailHandler(users, nil),
			ChangeEmail: command.NewChangeEmailHandler(users, hasher,
				adapters.NewPasswordFailures(db, command.PasswordFailureWindow), nil),
		},
		Queries: app.Queries{
			UserByID:      query.NewUserByIDHandler(users.ReadModel()),
			UserByEmail:   query.NewUserByEmailHandler(users.ReadModel()),
			PointsBalance: query.NewPointsBalanceHandler(users.ReadModel(), ledger),
		},
	}
	once := adapters.NewDeduplicator(db).WithMetrics(metrics)
	return applicationParts{
		app:   application,
		users: users,
		eventHandlers: []cqrs.EventHandler{
			cqrs.NewEventHandler(event.SendWelcomeEmailName, event.NewSendWelcomeEmail(mailer, once, links).Handle),
			cqrs.NewEventHandler(event.SeedSignupPointsName,
				event.NewSeedSignupPoints(ledger.Traced(tracing.TracerProvider), cfg.SignupPoints, nil).Handle),
			cqrs.NewEventHandler(event.SendVerificationEmailName,
				event.NewSendVerificationEmail(mailer, once, links).Handle),
			cqrs.NewEventHandler(event.SendNewAddressEmailName, event.NewSendNewAddressEmail(mailer, once, links).Handle),
			cqrs.NewEventHandler(event.SendEmailChangedNoticeName, event.NewSendEmailChangedNotice(mailer, once).Handle),
		},
		commandHandlers: []cqrs.CommandHandler{
			cqrs.NewCommandHandler(RegisterUserHandlerName, application.Commands.RegisterUser.Handle),
		},
	}, nil
}
