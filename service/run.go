package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Run serves until ctx ends, then stops taking requests, lets requests and
// handlers in flight finish, and closes everything.
func (s *Service) Run(ctx context.Context) error {
	defer s.closeResources()
	errs := make(chan error, 4)
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
	s.metrics.start(errs)
	if s.unsentMail != "" {
		s.logger.Warn(s.unsentMail, s.unsentMailAttrs...)
	}
	s.metrics.warnUnserved()
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
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownMax)
	defer cancel()
	if err := s.server.Shutdown(shutdownCtx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("http shutdown: %w", err))
	}
	runErr = errors.Join(runErr, s.metrics.shutdown(shutdownCtx))
	// Handlers first, then the transport: a forwarder publish still waiting
	// (gochannel waits for the handlers' acks) fails, and its outbox row
	// stays for the next start.
	s.stop()
	if err := s.handlers.Close(); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("handlers close: %w", err))
	}
	if err := s.doneMarks.Close(); err != nil {
		s.logger.Warn("effects' done marks not written at the stop: a redelivery of their messages would repeat them",
			"error", err)
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
	s.metrics.close()
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
	s.spans.close() // the last spans, the stop's included
}

// Draining bounds: the stop waits until no connection or request arrived
// for drainQuiet, and at most drainMax; then the requests in flight have
// shutdownMax to finish.
const (
	drainQuiet  = 250 * time.Millisecond
	drainMax    = 5 * time.Second
	shutdownMax = 20 * time.Second
)

// StopBound is the longest a stop drains and answers the requests in
// flight, before it cancels the handlers and closes the transport (a
// second or so): the grace period of a SIGTERM before SIGKILL (Kubernetes'
// terminationGracePeriodSeconds) must exceed it.
const StopBound = drainMax + shutdownMax

// drain keeps accepting and answering while requests still arrive: sent
// just before the stop, they may wait in the listen backlog, or on a
// kept-alive connection the server has not read yet, which Shutdown would
// close as idle. Either way they would go unanswered.
//
// Each answer during the drain closes its connection (closeWhenDraining).
// Once quiet, the connections left idle since before the stop are closed
// while the listener still accepts, and the drain waits for quiet again: a
// client whose request met one of them as it closed resends it on a new
// connection if it may (net/http does for a request with an
// Idempotency-Key). The shutdown then finds no connection a client could
// reuse.
func (s *Service) drain() {
	s.draining.Store(true)
	deadline := time.Now().Add(drainMax)
	s.waitQuiet(deadline)
	s.server.SetKeepAlivesEnabled(false) // closes the idle connections
	s.lastRequest.Store(time.Now().UnixNano())
	s.waitQuiet(deadline)
}

// waitQuiet returns once no connection or request arrived for drainQuiet
// and every connection accepted has had its request read, or at the
// deadline. A request read after the shutdown has begun is dropped
// unanswered (net/http), and a slow client may send it well after its
// connection was accepted.
func (s *Service) waitQuiet(deadline time.Time) {
	for time.Now().Before(deadline) &&
		(time.Since(time.Unix(0, s.lastRequest.Load())) < drainQuiet || s.unread.count() > 0) {
		time.Sleep(drainQuiet / 10) // poll for the quiet period
	}
}

// unreadConns tracks the connections in http.StateNew: accepted, their
// first request not read yet.
type unreadConns struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (u *unreadConns) track(conn net.Conn, state http.ConnState) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if state != http.StateNew {
		delete(u.conns, conn)
		return
	}
	if u.conns == nil {
		u.conns = map[net.Conn]struct{}{}
	}
	u.conns[conn] = struct{}{}
}

func (u *unreadConns) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.conns)
}

// isStopping reports whether the service is stopping.
func (s *Service) isStopping() bool { return s.stopping.Err() != nil }

// closeWhenDraining answers with "Connection: close" once the stop has
// begun: the client then sends its next request on a new connection,
// which the drain still accepts, rather than on this one, which the
// shutdown could close as idle just as the request arrives.
func (s *Service) closeWhenDraining(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&drainingWriter{ResponseWriter: w, draining: &s.draining}, r)
	})
}

// drainingWriter decides on "Connection: close" when the answer's header
// is written, however long ago the request came.
type drainingWriter struct {
	http.ResponseWriter
	draining    *atomic.Bool
	wroteHeader bool
}

func (w *drainingWriter) WriteHeader(status int) {
	if !w.wroteHeader && status >= http.StatusOK {
		w.wroteHeader = true
		if w.draining.Load() {
			w.Header().Set("Connection", "close")
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *drainingWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends what is buffered, as the server's writer does.
func (w *drainingWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *drainingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
