// Package testsmtp is a real SMTP server for tests: it listens on a loopback
// port, speaks SMTP without TLS or authentication, and records every message
// it accepts with its envelope and raw data. It can be told to answer
// "451 temporary failure" to test retries, to greylist chosen recipients
// or refuse them for good, and refuses every recipient at RejectedDomain
// with a 550. It counts every RCPT TO per address.
package testsmtp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one accepted message.
type Message struct {
	From string   // envelope sender (MAIL FROM)
	To   []string // envelope recipients (RCPT TO), as the client sent them
	Data []byte   // raw data: headers and body, as received after DATA
}

// Parse parses the raw data as an RFC 5322 message.
func (m Message) Parse() (*mail.Message, error) {
	return mail.ReadMessage(bytes.NewReader(m.Data))
}

// MessageID returns the Message-ID header, "" when absent or unreadable.
func (m Message) MessageID() string {
	id, _ := m.Header("Message-Id")
	return id
}

// Header returns the decoded value of the named header, "" when absent.
func (m Message) Header(name string) (string, error) {
	msg, err := m.Parse()
	if err != nil {
		return "", err
	}
	raw := msg.Header.Get(name)
	decoded, err := new(mime.WordDecoder).DecodeHeader(raw)
	if err != nil {
		return "", fmt.Errorf("decode header %s: %w", name, err)
	}
	return decoded, nil
}

// Text returns the body of a single-part message, decoded from its
// Content-Transfer-Encoding (quoted-printable, base64 or none), with CRLF
// line ends turned into LF.
func (m Message) Text() (string, error) {
	msg, err := m.Parse()
	if err != nil {
		return "", err
	}
	var body = msg.Body
	switch enc := strings.ToLower(strings.TrimSpace(msg.Header.Get("Content-Transfer-Encoding"))); enc {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, newlineStripper{body})
	case "", "7bit", "8bit", "binary":
	default:
		return "", fmt.Errorf("unknown Content-Transfer-Encoding %q", enc)
	}
	text, err := io.ReadAll(body)
	if err != nil {
		return "", fmt.Errorf("decode body: %w", err)
	}
	return strings.ReplaceAll(string(text), "\r\n", "\n"), nil
}

// newlineStripper drops CR and LF, which base64 bodies are wrapped with.
type newlineStripper struct{ r io.Reader }

func (s newlineStripper) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	kept := 0
	for _, b := range p[:n] {
		if b != '\r' && b != '\n' {
			p[kept] = b
			kept++
		}
	}
	return kept, err
}

// ErrTemporaryFailure is the answer of a failing server: 451 4.3.0.
var ErrTemporaryFailure = &smtp.SMTPError{
	Code:         451,
	EnhancedCode: smtp.EnhancedCode{4, 3, 0},
	Message:      "temporary failure (testsmtp)",
}

// RejectedDomain is a domain whose recipients the server refuses for good:
// "550 5.1.1 no such user".
const RejectedDomain = "rejected.invalid"

var errNoSuchUser = &smtp.SMTPError{
	Code:         550,
	EnhancedCode: smtp.EnhancedCode{5, 1, 1},
	Message:      "no such user (testsmtp)",
}

// Server is a running test SMTP server.
type Server struct {
	listener net.Listener

	mu            sync.Mutex
	messages      []Message
	failing       bool
	rejected      int
	greylisted    map[string]bool // lower-cased addresses answered 451 at RCPT TO
	greylistings  int
	refused       map[string]bool // lower-cased addresses answered 550 at RCPT TO
	rcpts         map[string]int  // lower-cased address → RCPT TO commands naming it
	conversations int
	open          map[*smtp.Conn]bool
}

// Start runs a server on 127.0.0.1 on a free port until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testsmtp: listen: %v", err)
	}
	s := &Server{listener: listener, open: map[*smtp.Conn]bool{}, greylisted: map[string]bool{},
		refused: map[string]bool{}, rcpts: map[string]int{}}

	logs := &testLog{t: t}
	srv := smtp.NewServer(smtp.BackendFunc(func(conn *smtp.Conn) (smtp.Session, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.conversations++
		s.open[conn] = true
		return &session{server: s, conn: conn}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 10 << 20
	srv.MaxRecipients = 100
	srv.ErrorLog = logs

	served := make(chan error, 1)
	go func() { served <- srv.Serve(listener) }()
	t.Cleanup(func() {
		_ = srv.Close()
		// Serve may not have registered the listener with srv yet.
		_ = listener.Close()
		if err := <-served; err != nil {
			t.Errorf("testsmtp: serve: %v", err)
		}
		logs.stop()
	})
	return s
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// URL is the server's smtp:// URL, for SMTP_URL.
func (s *Server) URL() string { return "smtp://" + s.Addr() }

// Messages returns a copy of the messages accepted so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.messages))
	for i, m := range s.messages {
		out[i] = Message{From: m.From, To: append([]string(nil), m.To...), Data: append([]byte(nil), m.Data...)}
	}
	return out
}

// MessagesTo returns the accepted messages with addr among their envelope
// recipients, compared case-insensitively.
func (s *Server) MessagesTo(addr string) []Message {
	var out []Message
	for _, m := range s.Messages() {
		for _, to := range m.To {
			if strings.EqualFold(to, addr) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// CountTo counts the accepted messages with addr among their envelope
// recipients, compared case-insensitively.
func (s *Server) CountTo(addr string) int { return len(s.MessagesTo(addr)) }

// Conversations counts the SMTP connections clients have opened.
func (s *Server) Conversations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conversations
}

// DropConnections closes every open client connection, as a server ending
// idle conversations does.
func (s *Server) DropConnections() {
	s.mu.Lock()
	open := make([]*smtp.Conn, 0, len(s.open))
	for conn := range s.open {
		open = append(open, conn)
	}
	s.mu.Unlock()
	for _, conn := range open {
		_ = conn.Close() // calls Logout, which takes s.mu
	}
}

// SetFailing makes the server answer every MAIL FROM and DATA with
// "451 temporary failure" (true) or accept messages again (false).
func (s *Server) SetFailing(failing bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = failing
}

// Rejected counts the commands answered 451 while failing.
func (s *Server) Rejected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejected
}

// errGreylisted is a temporary refusal of one recipient.
var errGreylisted = &smtp.SMTPError{
	Code:         451,
	EnhancedCode: smtp.EnhancedCode{4, 7, 1},
	Message:      "greylisted, try again later (testsmtp)",
}

// Greylist answers RCPT TO for each address (compared case-insensitively)
// with "451 4.7.1 greylisted", as a greylisting server or a full mailbox
// does, until Ungreylist; other recipients are served as usual.
func (s *Server) Greylist(addrs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range addrs {
		s.greylisted[strings.ToLower(a)] = true
	}
}

// Ungreylist accepts the addresses again.
func (s *Server) Ungreylist(addrs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range addrs {
		delete(s.greylisted, strings.ToLower(a))
	}
}

// Greylistings counts the recipients answered 451 by Greylist.
func (s *Server) Greylistings() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.greylistings
}

// Refuse answers RCPT TO for each address (compared case-insensitively)
// with "550 5.1.1 no such user", as a server does for an address it does
// not know, from now on; other recipients are served as usual.
func (s *Server) Refuse(addrs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range addrs {
		s.refused[strings.ToLower(a)] = true
	}
}

// RcptCount counts the RCPT TO commands that named addr (compared
// case-insensitively), whatever the answer: the attempts at delivering to it.
func (s *Server) RcptCount(addr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rcpts[strings.ToLower(addr)]
}

// rcpt counts a RCPT TO and returns its refusal, nil when it is accepted.
func (s *Server) rcpt(addr string) error {
	key := strings.ToLower(addr)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcpts[key]++
	switch {
	case strings.HasSuffix(key, "@"+RejectedDomain), s.refused[key]:
		return errNoSuchUser
	case s.greylisted[key]:
		s.greylistings++
		return errGreylisted
	}
	return nil
}

// reject reports whether the server is failing, counting the rejection.
func (s *Server) reject() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing {
		s.rejected++
	}
	return s.failing
}

func (s *Server) accept(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, m)
}

// session is one SMTP conversation; it may carry several messages.
type session struct {
	server *Server
	conn   *smtp.Conn
	from   string
	to     []string
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.server.reject() {
		return ErrTemporaryFailure
	}
	s.from = from
	s.to = nil
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := s.server.rcpt(to); err != nil {
		return err
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.server.reject() {
		return ErrTemporaryFailure
	}
	if len(s.to) == 0 {
		return errors.New("no recipients")
	}
	s.server.accept(Message{From: s.from, To: append([]string(nil), s.to...), Data: data})
	return nil
}

func (s *session) Reset() {
	s.from = ""
	s.to = nil
}

func (s *session) Logout() error {
	s.server.mu.Lock()
	defer s.server.mu.Unlock()
	delete(s.server.open, s.conn)
	return nil
}

// testLog sends the server's error log to the test's log until the test ends.
type testLog struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func (l *testLog) Printf(format string, v ...interface{}) {
	l.log(fmt.Sprintf(format, v...))
}

func (l *testLog) Println(v ...interface{}) {
	l.log(strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}

func (l *testLog) log(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Logf("testsmtp: %s", line)
	}
}

func (l *testLog) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}
