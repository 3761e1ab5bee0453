package service

import (
	"context"
	"database/sql"
	"io"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/adapters/dedup"
	"github.com/onboard/onboard/adapters/hasher"
	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/userdb"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/app/query"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/telemetry"
)

// PasswordResetSecret names the server key that signs the tokens of
// password reset links.
const PasswordResetSecret = "password-reset"

// PasswordGuessesSecret names the server key that keys the hashes
// naming accounts and client addresses in the password guess limits.
const PasswordGuessesSecret = "password-guesses"

// EmailBudgetSecret names the server key that keys the hashes naming
// recipients, accounts and clients in the email budget.
const EmailBudgetSecret = "email-budget"

// newEmailBudget is the email budget of cfg, or none when it is off.
func newEmailBudget(ctx context.Context, cfg Config, db *sql.DB, keys *secrets.ServerKeys) (command.EmailBudget, error) {
	if cfg.EmailBudget.Off {
		return command.NoEmailBudget{}, nil
	}
	key, err := keys.Secret(ctx, EmailBudgetSecret)
	if err != nil {
		return nil, err
	}
	return adapters.NewEmailBudget(adapters.EmailBudgetConfig{DB: db, Key: key, Recipient: cfg.EmailBudget.Recipient,
		Account: cfg.EmailBudget.Account, Client: cfg.EmailBudget.Client})
}

// newUserStore returns the users' store of db, which looks addresses up
// by their hashes under the server's email lookup key.
// eventPublishing is where the users' store publishes its events: the
// transport, when it is the sql transport, takes them in the transaction
// that appends them, marked as the deployment's; zero, or another
// transport: the outbox.
type eventPublishing struct {
	transport    *transport.Transport
	deploymentID string
}

func newUserStore(ctx context.Context, db *sql.DB, keys *secrets.ServerKeys, logger *slog.Logger,
	tracing telemetry.Tracing, publishing eventPublishing) (*userdb.UserStore, error) {
	lookupKey, err := keys.Secret(ctx, secrets.EmailLookupSecret)
	if err != nil {
		return nil, err
	}
	return userdb.NewUserStoreWithConfig(userdb.UserStoreConfig{
		DB: db, Logger: logger, Tracing: tracing, Transactions: tracing.Transactions(db), LookupKey: lookupKey, MasterKeys: keys.MasterKeys(),
		Transport: publishing.transport, DeploymentID: publishing.deploymentID,
	})
}

// OpenUserStore returns the users' store of db for the operator's
// commands, under the server keys of cfg's master key.
func OpenUserStore(ctx context.Context, cfg Config, db *sql.DB) (*userdb.UserStore, error) {
	logger := slog.New(slog.DiscardHandler)
	keys, err := openServerKeys(ctx, cfg, db, logger)
	if err != nil {
		return nil, err
	}
	return newUserStore(ctx, db, keys, logger, telemetry.Tracing{}, eventPublishing{})
}

// applicationParts are the use cases and the handlers of messages.
type applicationParts struct {
	app             app.Application
	users           *userdb.UserStore
	eventHandlers   []cqrs.EventHandler
	commandHandlers []cqrs.CommandHandler
	// doneMarks writes the effects' "done" marks still held, once the
	// handlers stopped.
	doneMarks io.Closer
}

// newApplication builds the use cases on the database's stores: it
// catches the users read model up with the event store first.
func newApplication(ctx context.Context, cfg Config, db *sql.DB, keys *secrets.ServerKeys, mailer event.Mailer,
	metrics *telemetry.Metrics, logger *slog.Logger, tracing telemetry.Tracing, publishing eventPublishing,
) (applicationParts, error) {
	users, err := newUserStore(ctx, db, keys, logger, tracing, publishing)
	if err != nil {
		return applicationParts{}, err
	}
	if err := UpgradeStoredData(ctx, db, users, logger); err != nil {
		return applicationParts{}, err
	}
	ledger := adapters.NewPointsLedger(db).OnGrant(metrics.CountPointsGrant)
	// HashConcurrency hashes at a time; a registration waits for its turn at
	// most hasher.DefaultMaxWait (10 s, well within writeTimeout),
	// behind at most HashQueueMax others, else it is answered 503 overloaded.
	hasher, err := hasher.New(hasher.Config{
		Cost: cfg.BcryptCost, Concurrency: cfg.HashConcurrency, QueueMax: cfg.HashQueueMax,
		OnWait: metrics.ObserveHashWait,
	})
	if err == nil {
		err = metrics.CountHashCPU(hasher.CPU)
	}
	if err != nil {
		return applicationParts{}, err
	}
	key, err := keys.Secret(ctx, secrets.VerificationKeySecret)
	if err != nil {
		return applicationParts{}, err
	}
	links := event.VerificationLinks{URL: cfg.VerifyURL, TTL: cfg.VerifyTTL, Key: domain.VerificationKey(key)}
	sessions, err := adapters.NewSessionStore(adapters.SessionStoreConfig{
		DB: db, TTL: cfg.SessionTTL, IdleTimeout: cfg.SessionIdleTimeout,
	})
	if err != nil {
		return applicationParts{}, err
	}
	guessKey, err := keys.Secret(ctx, PasswordGuessesSecret)
	if err != nil {
		return applicationParts{}, err
	}
	guesses, err := adapters.NewPasswordGuesses(adapters.PasswordGuessesConfig{DB: db, Key: guessKey})
	if err != nil {
		return applicationParts{}, err
	}
	resetKey, err := keys.Secret(ctx, PasswordResetSecret)
	if err != nil {
		return applicationParts{}, err
	}
	resets := event.ResetLinks{URL: cfg.ResetURL, Key: domain.ResetKey(resetKey)}
	emails, err := newEmailBudget(ctx, cfg, db, keys)
	if err != nil {
		return applicationParts{}, err
	}
	signIn, err := command.NewSignInHandler(ctx, users, sessions, hasher, guesses)
	if err != nil {
		return applicationParts{}, err
	}
	application := app.Application{
		Commands: app.Commands{
			RegisterUser:             command.NewRegisterUserHandler(users, hasher, guesses, emails, nil).WithSessions(sessions),
			VerifyEmail:              command.NewVerifyEmailHandler(users, links.Key, links.TTL, nil),
			RequestVerificationEmail: command.NewRequestVerificationEmailHandler(users, emails, nil),
			ChangeEmail: command.NewChangeEmailHandler(command.ChangeEmailDeps{
				Users: users, Hasher: hasher, Guesses: guesses, Emails: emails,
			}),
			SignIn:               signIn,
			SignOut:              command.NewSignOutHandler(sessions),
			RequestPasswordReset: command.NewRequestPasswordResetHandler(users, users, emails, nil),
			ResetPassword:        command.NewResetPasswordHandler(users, hasher, resets.Key, nil),
			EraseUser:            command.NewEraseUserHandler(users, hasher, guesses, nil),
		},
		Queries: app.Queries{
			UserByID:      query.NewUserByIDHandler(users.ReadModel()),
			UserByEmail:   query.NewUserByEmailHandler(users.ReadModel()),
			PointsBalance: query.NewPointsBalanceHandler(users.ReadModel(), ledger),
			ExportUser:    query.NewExportUserHandler(users.ReadModel(), users, ledger),
			SessionUser:   query.NewSessionUserHandler(sessions),
		},
	}
	once := dedup.NewDeduplicator(db, users).OnTakeOver(metrics.CountClaimTakenOver).
		OnMarkLost(func(err error) {
			logger.Warn("effects' done marks not written: a redelivery of their messages would repeat them", "error", err)
		})
	return applicationParts{
		app:       application,
		users:     users,
		doneMarks: once,
		eventHandlers: []cqrs.EventHandler{
			cqrs.NewEventHandler(event.SendWelcomeEmailName, event.NewSendWelcomeEmail(mailer, once, links).Handle),
			cqrs.NewEventHandler(event.SeedSignupPointsName,
				event.NewSeedSignupPoints(tracing.PointsGranter(ledger, db), cfg.SignupPoints, nil).Handle),
			cqrs.NewEventHandler(event.SendVerificationEmailName,
				event.NewSendVerificationEmail(mailer, once, links).Handle),
			cqrs.NewEventHandler(event.SendNewAddressEmailName, event.NewSendNewAddressEmail(mailer, once, links).Handle),
			cqrs.NewEventHandler(event.SendEmailChangedNoticeName, event.NewSendEmailChangedNotice(mailer, once).Handle),
			cqrs.NewEventHandler(event.SendPasswordResetEmailName, event.NewSendPasswordResetEmail(mailer, once, resets).Handle),
		},
		commandHandlers: []cqrs.CommandHandler{
			cqrs.NewCommandHandler(RegisterUserHandlerName, application.Commands.RegisterUser.Handle),
		},
	}, nil
}
