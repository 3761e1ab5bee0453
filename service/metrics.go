package service

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/telemetry"
)

// serviceMetrics is the service's one registry and the parts that feed it.
// GET /metrics serves it on METRICS_ADDR's listener when set; else, on the
// embedded SQLite database of development, on the API's; else nowhere: a
// deployment on PostgreSQL or MySQL is one whose API may be public, and
// its metrics (queue depths, rates of errors, the build) are not the
// public's.
type serviceMetrics struct {
	series *telemetry.Metrics
	logger *slog.Logger
	// server and listener serve /metrics on METRICS_ADDR; nil when unset.
	server   *http.Server
	listener net.Listener
	// unserved: METRICS_ADDR is unset and the database is not the
	// embedded SQLite, so /metrics is served nowhere.
	unserved bool
}

// instrument builds the registry, times the publishes of the transport
// and returns mailer counting its sends. It listens on METRICS_ADDR when
// set, so that a bad address fails the start.
func (s *Service) instrument(cfg Config, mailer event.Mailer) (event.Mailer, error) {
	m := &serviceMetrics{logger: s.logger}
	s.metrics = m
	var err error
	if m.series, err = telemetry.NewMetrics(); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if err = m.series.Register(telemetry.DBStats(s.db, sqldb.Of(s.db).Name()),
		telemetry.BuildInfo(cfg.PubSub, sqldb.Of(s.db).Name())); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if s.transport.Publisher, err = m.series.TimePublishes(s.transport.Publisher); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if cfg.MetricsAddr != "" {
		if m.listener, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return nil, fmt.Errorf("METRICS_ADDR: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", m.handler())
		if cfg.PProf {
			mux.HandleFunc("GET /debug/pprof/", pprof.Index)
			mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
			mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		}
		m.server = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: writeTimeout}
		s.startAttrs = append(s.startAttrs, "metrics_addr", m.listener.Addr().String())
	} else {
		m.unserved = !sqldb.Of(s.db).Is(sqldb.SQLite)
	}
	return m.series.CountSends(mailer), nil
}

// handlerTopics are the subscriptions of the handlers: each handler's
// name and the topic of its event or command.
func handlerTopics(parts applicationParts) []transport.HandlerTopic {
	var handlers []transport.HandlerTopic
	marshaler := transport.NewMarshaler(domain.Events)
	for _, h := range parts.eventHandlers {
		handlers = append(handlers, transport.HandlerTopic{
			Handler: h.HandlerName(), Topic: transport.EventTopic(marshaler.Name(h.NewEvent())),
		})
	}
	for _, h := range parts.commandHandlers {
		handlers = append(handlers, transport.HandlerTopic{
			Handler: h.HandlerName(), Topic: transport.CommandTopic(marshaler.Name(h.NewCommand())),
		})
	}
	return handlers
}

// watchBacklogs registers the collector of what waits: the outbox, each
// handler's queue, the retry and the poison queues.
func (s *Service) watchBacklogs() error {
	backlogs, err := transport.NewBacklogReader(transport.BacklogConfig{
		Transport: s.transport, DB: s.db, Handlers: s.handlerTopics,
	})
	if err != nil {
		return err
	}
	return s.metrics.series.Register(telemetry.NewBacklogCollector(telemetry.BacklogConfig{Reader: backlogs, Logger: s.logger}))
}

// handler serves the registry.
func (m *serviceMetrics) handler() http.Handler { return m.series.Handler(m.logger) }

// apiHandler is the handler of GET /metrics on the API's listener: nil
// (the route answers 404) when METRICS_ADDR has its own, or when the
// database is not the embedded SQLite.
func (m *serviceMetrics) apiHandler() http.Handler {
	if m.server != nil || m.unserved {
		return nil
	}
	return m.handler()
}

// warnUnserved logs, at start, that /metrics is served nowhere, and how to
// serve it.
func (m *serviceMetrics) warnUnserved() {
	if m != nil && m.unserved {
		m.logger.Warn("GET /metrics is not served on the API's listener outside the embedded SQLite database: " +
			"set METRICS_ADDR (such as :9090) to serve it on a listener of its own")
	}
}

// start serves METRICS_ADDR, if set, until shutdown; its end goes to errs.
func (m *serviceMetrics) start(errs chan<- error) {
	if m != nil && m.server != nil {
		go func() { errs <- m.server.Serve(m.listener) }()
	}
}

// shutdown stops serving METRICS_ADDR, letting scrapes in flight finish.
func (m *serviceMetrics) shutdown(ctx context.Context) error {
	if m == nil || m.server == nil {
		return nil
	}
	if err := m.server.Shutdown(ctx); err != nil {
		return fmt.Errorf("metrics shutdown: %w", err)
	}
	return nil
}

// close releases METRICS_ADDR's listener when the service did not run.
func (m *serviceMetrics) close() {
	if m != nil && m.listener != nil {
		_ = m.listener.Close()
	}
}

// MetricsAddr is the address METRICS_ADDR listens on; "" when unset.
func (s *Service) MetricsAddr() string {
	if s.metrics == nil || s.metrics.listener == nil {
		return ""
	}
	return s.metrics.listener.Addr().String()
}
