// Package service wires onboard together from a Config: the database, the
// transport, the mailer, the handlers' router, the outbox forwarder and the
// HTTP API; it runs them and stops them. Wiring returns errors: only main
// exits.
package service

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/gin-gonic/gin"

	"github.com/onboard/onboard/adapters/mail"
	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/telemetry"
	"github.com/onboard/onboard/ports"
	"github.com/onboard/onboard/ports/messages"
)

// RegisterUserHandlerName is the command handler's name and consumer group.
const RegisterUserHandlerName = messages.RegisterUserHandlerName

// startTimeout bounds connecting to the database and the broker at start.
const startTimeout = 8 * time.Second

// Service is onboard wired together: HTTP API, handlers router and forwarder.
type Service struct {
	logger    *slog.Logger
	db        *sql.DB
	keys      *secrets.ServerKeys // wrapped under the master key
	transport *transport.Transport
	wakeup    *watermillsql.Wakeup // nil but on PostgreSQL
	mailConns io.Closer            // the SMTP mailer's open connections, or nil
	doneMarks io.Closer            // the effects' "done" marks not written yet
	handlers  *message.Router
	// handlerTopics are the subscriptions the handlers read, as
	// messages.Topology names them.
	handlerTopics []transport.HandlerTopic
	retries       *transport.RetryQueue
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
	// unread are the connections accepted whose first request the server
	// has not read yet.
	unread unreadConns
	// depLogger is given to Watermill and the migrations: what they
	// log at INFO is DEBUG here (see dependencyLogs).
	depLogger *slog.Logger
	// startAttrs describe the deployment in the start line: its database,
	// transport and mailer; unsentMail: the start's warning, with its
	// attributes, when the mailer sends nothing.
	startAttrs      []any
	unsentMail      string
	unsentMailAttrs []any
	metrics         *serviceMetrics
	spans           spans
}

// New connects to everything cfg names and wires the service. mailer
// overrides the one cfg implies when not nil.
func New(ctx context.Context, cfg Config, mailer event.Mailer, logger *slog.Logger) (svc *Service, err error) {
	cfg.setDefaults()
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
	if s.spans, err = newSpans(startCtx, cfg, logger); err != nil {
		return nil, err
	}
	tracing := s.spans.tracing

	if err = checkMasterKey(cfg); err != nil {
		return nil, err
	}
	if path, ok := sqldb.SQLitePath(cfg.DatabaseURL); ok {
		// A mistyped path would otherwise start on an empty database unseen.
		if _, statErr := os.Stat(path); errors.Is(statErr, fs.ErrNotExist) {
			logger.Info("DATABASE_URL names no database file yet: a new, empty database is made there", "path", path)
		}
	}
	if s.db, err = sqldb.Open(startCtx, cfg.DatabaseURL, s.depLogger); err != nil {
		return nil, err
	}
	// A wrong master key stops the start before the transport is connected.
	if s.keys, err = openServerKeys(startCtx, cfg, s.db, logger); err != nil {
		return nil, err
	}
	if sqldb.Of(s.db).Notifies() {
		// Subscribers of the outbox and of the SQL transport's queues wake on
		// PostgreSQL notifications instead of polling often.
		if s.wakeup, err = watermillsql.NewWakeup(s.db); err != nil {
			return nil, fmt.Errorf("listen for notifications: %w", err)
		}
	}
	namespace, err := DeploymentNamespace(startCtx, cfg, s.db)
	if err != nil {
		return nil, err
	}
	if s.deploymentID, err = deploymentID(startCtx, s.db); err != nil {
		return nil, err
	}
	transportConfig := cfg.Transport(s.db, namespace)
	transportConfig.Wakeup, transportConfig.Logger = s.wakeup, s.depLogger
	if s.transport, err = transport.NewTransport(transportConfig); err != nil {
		return nil, err
	}
	s.checkPersistence(startCtx)
	mailerKind := "given"
	if mailer == nil {
		if mailer, err = newMailer(cfg, logger); err != nil {
			return nil, err
		}
		s.mailConns, _ = mailer.(io.Closer)
		switch m := mailer.(type) {
		case mail.LogMailer:
			mailerKind, s.unsentMail = "log", "emails are written to the log, not sent: set SMTP_URL to send them"
		case *mail.MailboxMailer:
			mailerKind, s.unsentMail = "mailbox", "emails are written as files to the development mailbox, not sent: "+
				"set SMTP_URL to send them"
			s.unsentMailAttrs = []any{"dir", m.Dir()}
		default:
			mailerKind = "smtp"
		}
	}
	s.startAttrs = []any{"database", sqldb.Of(s.db).Name(), "transport", cfg.PubSub, "mailer", mailerKind}
	mailer = tracing.Mailer(mailer) // before the metrics' wrapper: it names the span by the mailer
	if mailer, err = s.instrument(cfg, mailer); err != nil {
		return nil, err
	}

	// On the sql transport, the events go straight into its queue tables,
	// which must exist before the first registration.
	eventTopics := make([]string, 0, len(domain.Events.Names()))
	for _, name := range domain.Events.Names() {
		eventTopics = append(eventTopics, transport.EventTopic(name))
	}
	if err = s.transport.InitializeTopics(startCtx, eventTopics...); err != nil {
		return nil, err
	}
	parts, err := newApplication(startCtx, cfg, s.db, s.keys, mailer, s.metrics.series, s.depLogger, tracing,
		eventPublishing{transport: s.transport, deploymentID: s.deploymentID})
	if err != nil {
		return nil, err
	}
	application, users := parts.app, parts.users
	s.doneMarks = parts.doneMarks
	if s.retries, err = transport.NewRetryQueue(transport.RetryQueueConfig{
		DB: s.db,
		// A span per message taken back, in its trace: the next attempt is
		// its child.
		Publisher:  telemetry.TracePublisher(s.transport.Publisher, "retry publish", tracing),
		MaxAge:     cfg.RetryMaxAge,
		FirstDelay: cfg.RetryFirstDelay,
		Logger:     logger,
	}); err != nil {
		return nil, err
	}
	if s.handlers, err = messages.NewRouter(messages.RouterConfig{
		Transport: s.transport, Retries: s.retries, Users: users, DeploymentID: s.deploymentID,
		Events:   domain.Events,
		Stopping: s.stopping, Logger: logger, WatermillLogger: s.depLogger,
		Metrics: s.metrics.series, Tracing: tracing,
	}, parts.eventHandlers, parts.commandHandlers); err != nil {
		return nil, err
	}
	s.handlerTopics = handlerTopics(parts)
	if err = s.watchBacklogs(); err != nil {
		return nil, err
	}
	if s.forwarder, err = messages.NewForwarder(messages.ForwarderConfig{
		DB: s.db, Wakeup: s.wakeup, Transport: s.transport, DeploymentID: s.deploymentID, Logger: s.depLogger,
		Tracing: tracing,
	}); err != nil {
		return nil, err
	}
	idempotencySecret, err := s.keys.Secret(startCtx, secrets.IdempotencyKeySecret)
	if err != nil {
		return nil, err
	}
	api, err := ports.NewHandler(application, ports.HTTPConfig{
		Ready:             s.ready,
		Logger:            logger,
		IdempotencySecret: idempotencySecret,
		PasswordLimit:     cfg.PasswordLimit,
		TrustedProxies:    cfg.TrustedProxies,
		AdminToken:        cfg.AdminToken,
		// A client's trace context is not trusted by default: see
		// Config.TrustClientTraceparent.
		Observe:        []gin.HandlerFunc{tracing.HTTPRequests(cfg.TrustClientTraceparent), s.metrics.series.HTTPRequests()},
		MetricsHandler: s.metrics.apiHandler(),
	})
	if err != nil {
		return nil, err
	}
	if s.listener, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("HTTP_ADDR: %w", err)
	}
	s.server = &http.Server{
		Handler:           s.closeWhenDraining(api),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ConnState: func(conn net.Conn, state http.ConnState) {
			if state == http.StateNew || state == http.StateActive {
				s.lastRequest.Store(time.Now().UnixNano())
			}
			s.unread.track(conn, state)
		},
	}
	return s, nil
}

// checkPersistence warns when the broker's settings say it would lose the
// messages it holds if it restarted (Redis without an append-only file).
// Settings it cannot read (managed Redis services often disable CONFIG)
// are one line at INFO, and the start goes on: the operator checks them
// with the provider.
func (s *Service) checkPersistence(ctx context.Context) {
	warning, err := s.transport.PersistenceWarning(ctx)
	switch {
	case err != nil:
		s.logger.Info("cannot read the broker's persistence settings; make sure it keeps an append-only file "+
			"(see the README)", "error", err)
	case warning != "":
		s.logger.Warn(warning)
	}
}

// writeTimeout bounds the handling of a request and the writing of its
// answer.
const writeTimeout = 15 * time.Second

// DeploymentNamespace is PUBSUB_NAMESPACE, or by default the database's own:
// the service and the operator's commands read the same queues.
func DeploymentNamespace(ctx context.Context, cfg Config, db *sql.DB) (string, error) {
	if cfg.Namespace != "" {
		return cfg.Namespace, nil
	}
	random, err := secrets.ServerValue(ctx, db, "pubsub-namespace")
	if err != nil {
		return "", fmt.Errorf("default PUBSUB_NAMESPACE: %w", err)
	}
	return transport.DefaultNamespace(random), nil
}

// deploymentID names this deployment (its database) in the messages it
// publishes.
func deploymentID(ctx context.Context, db *sql.DB) (string, error) {
	random, err := secrets.ServerValue(ctx, db, "deployment-id")
	if err != nil {
		return "", fmt.Errorf("deployment id: %w", err)
	}
	return transport.DeploymentID(random), nil
}

// newMailer is the SMTP mailer of SMTP_URL; without it, on an SQLite
// database, the development mailbox beside the database file (mail/, as
// data/mail/ for the embedded default), which keeps the links whole; else
// the log, which keeps no address or token.
func newMailer(cfg Config, logger *slog.Logger) (event.Mailer, error) {
	if cfg.SMTPURL != "" {
		return mail.NewSMTPMailer(cfg.SMTPURL, cfg.MailFrom)
	}
	if path, ok := sqldb.SQLitePath(cfg.DatabaseURL); ok {
		return mail.NewMailboxMailer(filepath.Join(filepath.Dir(path), "mail"), cfg.MailFrom, logger)
	}
	return mail.LogMailer{From: cfg.MailFrom, Logger: logger}, nil
}

// Addr is the address the HTTP API listens on.
func (s *Service) Addr() string { return s.listener.Addr().String() }

func (s *Service) ready(ctx context.Context) error {
	if s.draining.Load() {
		return errors.New("stopping")
	}
	return errors.Join(s.db.PingContext(ctx), s.transport.Ready(ctx))
}
