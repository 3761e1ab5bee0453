package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/adapters/mail"
	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/app/query"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/ports"
	"github.com/onboard/onboard/ports/messages"
)

// RegisterUserHandlerName is the command handler's name and consumer group.
const RegisterUserHandlerName = "RegisterUserHandler"

// startTimeout bounds connecting to the database and the broker at start.
const startTimeout = 8 * time.Second

// Service is onboard wired together: HTTP API, handlers router and forwarder.
type Service struct {
	logger    *slog.Logger
	db        *sql.DB
	transport *transport.Transport
	wakeup    *watermillsql.Wakeup // nil but on PostgreSQL
	mailConns io.Closer            // the SMTP mailer's open connections, or nil
	handlers  *message.Router
	retries   *transport.RetryQueue
	// deploymentID marks the messages this deployment publishes.
	deploymentID string
	forwarder    *forwarder.Forwarder
	server       *http.Server
	listener     net.Listener
	// stopping ends when the service stops: handlers in flight give up, and
	// their messages are redelivered later.
	stopping context.Context
	stop     context.CancelFunc
	// draining is set on a stop: /readyz answers 503 while the connections
	// already made are still read and answered.
	draining atomic.Bool
	// lastRequest is when the HTTP server last accepted a connection or
	// began reading a request (UnixNano).
	lastRequest atomic.Int64
	// depLogger is given to Watermill and the migrations: what they
	// log at INFO is DEBUG here (see dependencyLogs).
	depLogger *slog.Logger
	// startAttrs describe the deployment in the start line: its database,
	// transport and mailer; mailsToLog: the mailer writes emails to the log.
	startAttrs []any
	mailsToLog bool
}

// NewService connects to everything cfg names and wires the service. mailer
// overrides the one cfg implies when not nil.
func NewService(ctx context.Context, cfg Config, mailer event.Mailer, logger *slog.Logger) (svc *Service, err error) {
	s := &Service{logger: logger}
	s.stopping, s.stop = context.WithCancel(context.Background())
	s.depLogger = slog.New(dependencyLogs{Handler: logger.Handler(), stopping: s.isStopping})
	defer func() {
		if err != nil {
			s.closeResources()
		}
	}()
	startCtx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()

	if s.db, err = sqldb.Open(startCtx, cfg.DatabaseURL, s.depLogger); err != nil {
		return nil, err
	}
	if sqldb.Of(s.db).Name() == "postgres" {
		// Subscribers of the outbox and of the SQL transport's queues wake on
		// PostgreSQL notifications instead of polling often.
		if s.wakeup, err = watermillsql.NewWakeup(s.db); err != nil {
			return nil, fmt.Errorf("listen for notifications: %w", err)
		}
	}
	namespace, err := deploymentNamespace(startCtx, cfg, s.db)
	if err != nil {
		return nil, err
	}
	if s.deploymentID, err = deploymentID(startCtx, s.db); err != nil {
		return nil, err
	}
	if s.transport, err = transport.NewTransport(transport.TransportConfig{
		Kind: cfg.PubSub, DB: s.db, AMQPURL: cfg.AMQPURL, Namespace: namespace, Wakeup: s.wakeup, Logger: s.depLogger,
	}); err != nil {
		return nil, err
	}
	mailerKind := "given"
	if mailer == nil {
		if mailer, err = newMailer(cfg, logger); err != nil {
			return nil, err
		}
		s.mailConns, _ = mailer.(io.Closer)
		mailerKind, s.mailsToLog = "smtp", cfg.SMTPURL == ""
		if s.mailsToLog {
			mailerKind = "log"
		}
	}
	s.startAttrs = []any{"database", sqldb.Of(s.db).Name(), "transport", cfg.PubSub, "mailer", mailerKind}

	users := adapters.NewUserStore(s.db, s.depLogger)
	ledger := adapters.NewPointsLedger(s.db)
	// HashConcurrency hashes at a time; a registration waits for its turn at
	// most adapters.DefaultHashMaxWait (10 s, well within writeTimeout),
	// behind at most HashQueueMax others, else it is answered 503 overloaded.
	hasher, err := adapters.NewBcryptHasher(adapters.BcryptHasherConfig{
		Cost: cfg.BcryptCost, Concurrency: cfg.HashConcurrency, QueueMax: cfg.HashQueueMax,
	})
	if err != nil {
		return nil, err
	}
	application := app.Application{
		Commands: app.Commands{
			RegisterUser: command.NewRegisterUserHandler(users, hasher, nil),
		},
		Queries: app.Queries{
			UserByID:      query.NewUserByIDHandler(users),
			PointsBalance: query.NewPointsBalanceHandler(users, ledger),
		},
	}
	eventHandlers := []cqrs.EventHandler{
		cqrs.NewEventHandler(event.SendWelcomeEmailName,
			event.NewSendWelcomeEmail(mailer, adapters.NewDeduplicator(s.db)).Handle),
		cqrs.NewEventHandler(event.SeedSignupPointsName,
			event.NewSeedSignupPoints(ledger, cfg.SignupPoints, nil).Handle),
	}
	if s.retries, err = transport.NewRetryQueue(transport.RetryQueueConfig{
		DB:         s.db,
		Publisher:  s.transport.Publisher,
		MaxAge:     cfg.RetryMaxAge,
		FirstDelay: cfg.RetryFirstDelay,
		Logger:     logger,
	}); err != nil {
		return nil, err
	}
	commandHandlers := []cqrs.CommandHandler{
		cqrs.NewCommandHandler(RegisterUserHandlerName, application.Commands.RegisterUser.Handle),
	}
	if s.handlers, err = messages.NewRouter(messages.RouterConfig{
		Transport: s.transport, Retries: s.retries, Users: users, DeploymentID: s.deploymentID,
		Events: domain.Events, Stopping: s.stopping, Logger: logger, WatermillLogger: s.depLogger,
	}, eventHandlers, commandHandlers); err != nil {
		return nil, err
	}
	if s.forwarder, err = messages.NewForwarder(messages.ForwarderConfig{
		DB: s.db, Wakeup: s.wakeup, Transport: s.transport, DeploymentID: s.deploymentID, Logger: s.depLogger,
	}); err != nil {
		return nil, err
	}
	idempotencySecret, err := adapters.ServerSecret(startCtx, s.db, adapters.IdempotencyKeySecret)
	if err != nil {
		return nil, err
	}
	api, err := ports.NewHandler(application, ports.HTTPConfig{
		Ready:             s.ready,
		Logger:            logger,
		IdempotencySecret: idempotencySecret,
		RegistrationLimit: cfg.RegistrationLimit,
		TrustedProxies:    cfg.TrustedProxies,
	})
	if err != nil {
		return nil, err
	}
	if s.listener, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("HTTP_ADDR: %w", err)
	}
	s.server = &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ConnState: func(_ net.Conn, state http.ConnState) {
			if state == http.StateNew || state == http.StateActive {
				s.lastRequest.Store(time.Now().UnixNano())
			}
		},
	}
	return s, nil
}

// writeTimeout bounds the handling of a request and the writing of its
// answer.
const writeTimeout = 15 * time.Second

// deploymentNamespace is PUBSUB_NAMESPACE, or by default the database's own.
func deploymentNamespace(ctx context.Context, cfg Config, db *sql.DB) (string, error) {
	if cfg.Namespace != "" {
		return cfg.Namespace, nil
	}
	random, err := adapters.ServerSecret(ctx, db, "pubsub-namespace")
	if err != nil {
		return "", fmt.Errorf("default PUBSUB_NAMESPACE: %w", err)
	}
	return transport.DefaultNamespace(random), nil
}

// deploymentID names this deployment (its database) in the messages it
// publishes.
func deploymentID(ctx context.Context, db *sql.DB) (string, error) {
	random, err := adapters.ServerSecret(ctx, db, "deployment-id")
	if err != nil {
		return "", fmt.Errorf("deployment id: %w", err)
	}
	return transport.DeploymentID(random), nil
}

func newMailer(cfg Config, logger *slog.Logger) (event.Mailer, error) {
	if cfg.SMTPURL == "" {
		return mail.LogMailer{From: cfg.MailFrom, Logger: logger}, nil
	}
	return mail.NewSMTPMailer(cfg.SMTPURL, cfg.MailFrom)
}

// Addr is the address the HTTP API listens on.
func (s *Service) Addr() string { return s.listener.Addr().String() }

func (s *Service) ready(ctx context.Context) error {
	if s.draining.Load() {
		return errors.New("stopping")
	}
	return errors.Join(s.db.PingContext(ctx), s.transport.Ready(ctx))
}

// Draining bounds: the stop waits until no connection or request arrived
// for drainQuiet, and at most drainMax.
const (
	drainQuiet = 250 * time.Millisecond
	drainMax   = 5 * time.Second
)

// drain keeps accepting and answering while requests still arrive: sent
// just before the stop, they may wait in the listen backlog, or on a
// kept-alive connection the server has not read yet, which Shutdown would
// close as idle. Either way they would go unanswered.
func (s *Service) drain() {
	s.draining.Store(true)
	deadline := time.Now().Add(drainMax)
	for time.Now().Before(deadline) &&
		time.Since(time.Unix(0, s.lastRequest.Load())) < drainQuiet {
		time.Sleep(drainQuiet / 10) // poll for the quiet period
	}
}

// isStopping reports whether the service is stopping.
func (s *Service) isStopping() bool { return s.stopping.Err() != nil }

// dependencyLogs lowers to DEBUG what Watermill and the migrations log at
// INFO (subscribers starting and stopping, the schema they create, each
// migration applied), and the errors of a stop in progress that only say
// that a context was canceled: at INFO, the log tells what the service
// does, and an ERROR is worth reading.
type dependencyLogs struct {
	slog.Handler
	stopping func() bool
}

// lowered is the level a library's record of this level is logged at,
// before its attributes are known.
func lowered(level slog.Level) slog.Level {
	if level == slog.LevelInfo {
		return slog.LevelDebug
	}
	return level
}

// Enabled implements slog.Handler.
func (h dependencyLogs) Enabled(ctx context.Context, level slog.Level) bool {
	return h.Handler.Enabled(ctx, lowered(level))
}

// Handle implements slog.Handler.
func (h dependencyLogs) Handle(ctx context.Context, r slog.Record) error {
	r.Level = lowered(r.Level)
	if r.Level == slog.LevelError && h.stopping() {
		r.Attrs(func(a slog.Attr) bool {
			if err, ok := a.Value.Any().(error); ok && errors.Is(err, context.Canceled) {
				r.Level = slog.LevelDebug
				return false
			}
			return true
		})
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h dependencyLogs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return dependencyLogs{Handler: h.Handler.WithAttrs(attrs), stopping: h.stopping}
}

// WithGroup implements slog.Handler.
func (h dependencyLogs) WithGroup(name string) slog.Handler {
	return dependencyLogs{Handler: h.Handler.WithGroup(name), stopping: h.stopping}
}

// Run serves until ctx ends, then stops taking requests, lets requests and
// handlers in flight finish, and closes everything.
func (s *Service) Run(ctx context.Context) error {
	defer s.closeResources()
	errs := make(chan error, 3)
	go func() { errs <- s.handlers.Run(context.Background()) }()
	select {
	case <-s.handlers.Running():
	case err := <-errs:
		return fmt.Errorf("handlers router: %w", err)
	}
	retriesDone := make(chan struct{})
	go func() {
		defer close(retriesDone)
		s.retries.Run(s.stopping)
	}()
	go func() { errs <- s.forwarder.Run(context.Background()) }()
	go func() { errs <- s.server.Serve(s.listener) }()
	if s.mailsToLog {
		s.logger.Warn("emails are written to the log, not sent: set SMTP_URL to send them")
	}
	// The one line at start; tests wait for it and read addr and namespace.
	s.logger.Info("onboard is serving", append([]any{"addr", s.Addr(), "namespace", s.transport.Namespace()},
		s.startAttrs...)...)

	var runErr error
	select {
	case <-ctx.Done():
		s.logger.Info("shutting down")
	case runErr = <-errs:
		s.logger.Error("a component stopped", "error", runErr)
	}
	s.drain()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.server.Shutdown(shutdownCtx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("http shutdown: %w", err))
	}
	// Handlers first, then the transport: a forwarder publish still waiting
	// (gochannel waits for the handlers' acks) fails, and its outbox row
	// stays for the next start.
	s.stop()
	if err := s.handlers.Close(); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("handlers close: %w", err))
	}
	<-retriesDone
	if err := s.transport.Close(); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("transport close: %w", err))
	}
	if err := s.forwarder.Close(); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("forwarder close: %w", err))
	}
	if errors.Is(runErr, http.ErrServerClosed) {
		runErr = nil
	}
	return runErr
}

func (s *Service) closeResources() {
	if s.listener != nil {
		_ = s.listener.Close()
	}
	if s.transport != nil {
		_ = s.transport.Close()
	}
	if s.wakeup != nil {
		_ = s.wakeup.Close()
	}
	if s.mailConns != nil {
		_ = s.mailConns.Close()
	}
	if s.db != nil {
		_ = s.db.Close()
	}
}
