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

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/app/query"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/ports"
)

// RegisterUserHandlerName is the command handler's name and consumer group.
const RegisterUserHandlerName = "RegisterUserHandler"

// startTimeout bounds connecting to the database and the broker at start.
const startTimeout = 8 * time.Second

// Service is onboard wired together: HTTP API, handlers router and forwarder.
type Service struct {
	logger    *slog.Logger
	db        *sql.DB
	transport *adapters.Transport
	wakeup    *adapters.Wakeup // nil but on PostgreSQL
	mailConns io.Closer        // the SMTP mailer's open connections, or nil
	handlers  *message.Router
	retries   *adapters.RetryQueue
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
	// libraryLogger is given to Watermill and the migrations: what they
	// log at INFO is DEBUG here (see libraryLogs).
	libraryLogger *slog.Logger
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
	s.libraryLogger = slog.New(libraryLogs{Handler: logger.Handler(), stopping: s.isStopping})
	defer func() {
		if err != nil {
			s.closeResources()
		}
	}()
	startCtx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()

	if s.db, err = adapters.OpenDatabase(startCtx, cfg.DatabaseURL, s.libraryLogger); err != nil {
		return nil, err
	}
	if adapters.Dialect(s.db) == "postgres" {
		// Subscribers of the outbox and of the SQL transport's queues wake on
		// PostgreSQL notifications instead of polling often.
		if s.wakeup, err = adapters.NewWakeup(s.db); err != nil {
			return nil, fmt.Errorf("listen for notifications: %w", err)
		}
	}
	namespace, err := deploymentNamespace(startCtx, cfg, s.db)
	if err != nil {
		return nil, err
	}
	if s.deploymentID, err = adapters.DeploymentID(startCtx, s.db); err != nil {
		return nil, err
	}
	if s.transport, err = adapters.NewTransport(adapters.TransportConfig{
		Kind: cfg.PubSub, DB: s.db, AMQPURL: cfg.AMQPURL, Namespace: namespace, Wakeup: s.wakeup, Logger: s.libraryLogger,
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
	s.startAttrs = []any{"database", adapters.Dialect(s.db), "transport", cfg.PubSub, "mailer", mailerKind}

	users := adapters.NewUserStore(s.db, s.libraryLogger)
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
	if s.retries, err = adapters.NewRetryQueue(adapters.RetryQueueConfig{
		DB:         s.db,
		Publisher:  s.transport.Publisher,
		MaxAge:     cfg.RetryMaxAge,
		FirstDelay: cfg.RetryFirstDelay,
		Logger:     logger,
	}); err != nil {
		return nil, err
	}
	if s.handlers, err = s.newHandlersRouter(application, eventHandlers, users); err != nil {
		return nil, err
	}
	if s.forwarder, err = s.newForwarder(); err != nil {
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
	return adapters.DefaultNamespace(ctx, db)
}

func newMailer(cfg Config, logger *slog.Logger) (event.Mailer, error) {
	if cfg.SMTPURL == "" {
		return adapters.LogMailer{From: cfg.MailFrom, Logger: logger}, nil
	}
	return adapters.NewSMTPMailer(cfg.SMTPURL, cfg.MailFrom)
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

// newHandlersRouter runs the event handlers and the RegisterUser command
// handler, each on its own consumer group, behind the middleware, outermost
// first: a message redelivered for another handler skipped, correlation id
// carried to produced messages, poison queue for what will never pass, the
// retry queue for what failed for itself alone (off the head of the queue),
// quick retries with backoff, one log line per attempt (with the
// correlation id), panic recovery.
func (s *Service) newHandlersRouter(application app.Application, eventHandlers []cqrs.EventHandler, users *adapters.UserStore) (*message.Router, error) {
	wlogger := watermill.NewSlogLogger(s.libraryLogger)
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second}, wlogger)
	if err != nil {
		return nil, err
	}
	// An outage (SMTP or database down) is not poisoned: the message is
	// nacked and redelivered, and retried again, until it passes.
	poison, err := middleware.PoisonQueueWithFilter(adapters.UniquePoisonIDs(s.transport.Publisher), adapters.PoisonTopic,
		func(err error) bool { return adapters.Classify(err) == adapters.FailurePermanent })
	if err != nil {
		return nil, err
	}
	router.AddMiddleware(
		s.abortOnStop,
		adapters.ForNamedHandler,
		middleware.CorrelationID,
		poison,
		s.retries.Middleware,
		// About 5 s of retries per delivery, but none for a failure of this
		// message alone: the retry queue waits minutes, not seconds.
		middleware.Retry{
			MaxRetries:          6,
			InitialInterval:     100 * time.Millisecond,
			MaxInterval:         2 * time.Second,
			Multiplier:          2,
			RandomizationFactor: 0.2,
			ShouldRetry: func(p middleware.RetryParams) bool {
				return adapters.Classify(p.Err) != adapters.FailureMessage
			},
		}.Middleware,
		logMessages(s.logger, s.isStopping),
		middleware.Recoverer,
	)

	eventProcessor, err := cqrs.NewEventProcessorWithConfig(router, cqrs.EventProcessorConfig{
		GenerateSubscribeTopic: func(p cqrs.EventProcessorGenerateSubscribeTopicParams) (string, error) {
			return adapters.EventTopic(p.EventName), nil
		},
		SubscriberConstructor: func(p cqrs.EventProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			return s.transport.Subscriber(p.HandlerName, adapters.EventTopic(p.EventName))
		},
		OnHandle: func(p cqrs.EventProcessorOnHandleParams) error {
			if err := adapters.CheckSchemaVersion(p.EventName, p.Message); err != nil {
				return err
			}
			if err := s.checkUserHeld(p.Message, users, p.EventName, p.Event); err != nil {
				return err
			}
			return p.Handler.Handle(p.Message.Context(), p.Event)
		},
		Marshaler: adapters.Marshaler,
		Logger:    wlogger,
	})
	if err != nil {
		return nil, err
	}
	if err := eventProcessor.AddHandlers(eventHandlers...); err != nil {
		return nil, err
	}

	commandProcessor, err := cqrs.NewCommandProcessorWithConfig(router, cqrs.CommandProcessorConfig{
		GenerateSubscribeTopic: func(p cqrs.CommandProcessorGenerateSubscribeTopicParams) (string, error) {
			return adapters.CommandTopic(p.CommandName), nil
		},
		SubscriberConstructor: func(p cqrs.CommandProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			return s.transport.Subscriber(p.HandlerName, adapters.CommandTopic(p.CommandName))
		},
		OnHandle:  s.ackRejectedCommands,
		Marshaler: adapters.Marshaler,
		Logger:    wlogger,
	})
	if err != nil {
		return nil, err
	}
	err = commandProcessor.AddHandlers(
		cqrs.NewCommandHandler(RegisterUserHandlerName, application.Commands.RegisterUser.Handle))
	return router, err
}

// checkUserHeld refuses an event about a user this deployment's database
// does not hold: one published by a second deployment on the same broker
// and namespace, whose users are not ours to email or credit. An event
// from our own outbox carries our deployment id, and needs no query; one
// without an origin is looked up. The refusal is permanent, so the event is
// poisoned with this reason.
func (s *Service) checkUserHeld(msg *message.Message, users *adapters.UserStore, eventName string, e any) error {
	about, ok := e.(interface{ StreamID() string })
	if !ok || about.StreamID() == "" {
		return nil // the handler rejects an event without a user id
	}
	origin := msg.Metadata.Get(adapters.OriginKey)
	if origin == s.deploymentID {
		return nil
	}
	if origin == "" {
		held, err := users.HoldsUser(msg.Context(), about.StreamID())
		if err != nil || held {
			return err
		}
	}
	return fmt.Errorf("%s for user %s, whom this deployment's database does not hold (published by deployment %q): "+
		"another deployment publishes on the same broker and PUBSUB_NAMESPACE", eventName, about.StreamID(), origin)
}

// abortOnStop cancels the message's context when the service stops, so a
// handler retrying a failing dependency does not hold up the stop; the
// failure is transient, so the message is not poisoned but redelivered.
func (s *Service) abortOnStop(next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		ctx, cancel := context.WithCancel(msg.Context())
		defer cancel()
		defer context.AfterFunc(s.stopping, cancel)()
		msg.SetContext(ctx)
		return next(msg)
	}
}

// ackRejectedCommands logs a command the domain rejects and acks it: a
// retry would be rejected again. Other errors are retried.
func (s *Service) ackRejectedCommands(p cqrs.CommandProcessorOnHandleParams) error {
	ctx := p.Message.Context()
	err := p.Handler.Handle(ctx, p.Command)
	var rejected *domain.Error
	if errors.As(err, &rejected) {
		s.logger.WarnContext(ctx, "command rejected", "command", p.CommandName,
			"message_uuid", p.Message.UUID, "code", rejected.Code, "reason", rejected.Error())
		return nil
	}
	return err
}

// logMessages puts the message's correlation id (and client request id) in
// its context and logs one
// line per handled message with the handler's name, duration and error. A
// handler cancelled by the stop has not failed: its message comes again.
func logMessages(logger *slog.Logger, stopping func() bool) message.HandlerMiddleware {
	return func(next message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			ctx := app.WithCorrelationID(msg.Context(), middleware.MessageCorrelationID(msg))
			ctx = app.WithClientRequestID(ctx, msg.Metadata.Get(adapters.ClientRequestIDMetadataKey))
			msg.SetContext(ctx)
			start := time.Now()
			produced, err := next(msg)
			attrs := []any{
				"handler", message.HandlerNameFromCtx(ctx),
				"message_uuid", msg.UUID,
				"duration", time.Since(start),
			}
			switch {
			case err == nil:
				logger.InfoContext(ctx, "message handled", attrs...)
			case errors.Is(err, context.Canceled) && stopping():
				logger.InfoContext(ctx, "message interrupted by the stop", append(attrs, "error", err)...)
			default:
				logger.ErrorContext(ctx, "message failed", append(attrs, "error", err)...)
			}
			return produced, err
		}
	}
}

// isStopping reports whether the service is stopping.
func (s *Service) isStopping() bool { return s.stopping.Err() != nil }

// libraryLogs lowers to DEBUG what Watermill and the migrations log at
// INFO (subscribers starting and stopping, the schema they create, each
// migration applied), and the errors of a stop in progress that only say
// that a context was canceled: at INFO, the log tells what the service
// does, and an ERROR is worth reading.
type libraryLogs struct {
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
func (h libraryLogs) Enabled(ctx context.Context, level slog.Level) bool {
	return h.Handler.Enabled(ctx, lowered(level))
}

// Handle implements slog.Handler.
func (h libraryLogs) Handle(ctx context.Context, r slog.Record) error {
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
func (h libraryLogs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return libraryLogs{Handler: h.Handler.WithAttrs(attrs), stopping: h.stopping}
}

// WithGroup implements slog.Handler.
func (h libraryLogs) WithGroup(name string) slog.Handler {
	return libraryLogs{Handler: h.Handler.WithGroup(name), stopping: h.stopping}
}

// newForwarder moves outbox rows to the transport. It runs on a router of
// its own, started once every handler has subscribed.
func (s *Service) newForwarder() (*forwarder.Forwarder, error) {
	wlogger := watermill.NewSlogLogger(s.libraryLogger)
	outbox, err := adapters.NewWokenSQLSubscriber(s.db, s.wakeup, "forwarder", adapters.OutboxTopic, wlogger)
	if err != nil {
		return nil, err
	}
	// Create the outbox table now: the first registration writes into it.
	if err := outbox.SubscribeInitialize(adapters.OutboxTopic); err != nil {
		return nil, fmt.Errorf("initialize outbox: %w", err)
	}
	return forwarder.NewForwarder(outbox, adapters.StampOrigin(s.transport.Publisher, s.deploymentID), wlogger, forwarder.Config{
		ForwarderTopic: adapters.OutboxTopic,
		CloseTimeout:   30 * time.Second,
	})
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
