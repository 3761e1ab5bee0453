package main

import (
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// sink is an SMTP server that records when each recipient's first message
// was accepted, and how many each got.
type sink struct {
	server *smtp.Server
	mu     sync.Mutex
	first  map[string]time.Time
	counts map[string]int
	total  int
}

func startSink(listener net.Listener) *sink {
	s := &sink{first: map[string]time.Time{}, counts: map[string]int{}}
	s.server = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &sinkSession{sink: s}, nil
	}))
	s.server.Domain = "loadgen.local"
	s.server.ReadTimeout = 30 * time.Second
	s.server.WriteTimeout = 30 * time.Second
	s.server.MaxMessageBytes = 1 << 20
	go func() { _ = s.server.Serve(listener) }()
	return s
}

func (s *sink) close() { _ = s.server.Close() }

func (s *sink) accept(recipients []string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, to := range recipients {
		to = strings.ToLower(to)
		if _, seen := s.first[to]; !seen {
			s.first[to] = at
		}
		s.counts[to]++
		s.total++
	}
}

// received returns when address got its first email.
func (s *sink) received(address string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.first[strings.ToLower(address)]
	return at, ok
}

// stats returns the messages accepted and the recipients who got more than one.
func (s *sink) stats() (total, duplicated int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.counts {
		if n > 1 {
			duplicated++
		}
	}
	return s.total, duplicated
}

type sinkSession struct {
	sink *sink
	to   []string
}

func (s *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }

func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *sinkSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.sink.accept(s.to, time.Now())
	return nil
}

func (s *sinkSession) Reset()        { s.to = nil }
func (s *sinkSession) Logout() error { return nil }
