package testenv

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// serverProcess is a server a test runs itself, to kill and start again:
// its command line, and the process while it runs.
type serverProcess struct {
	name string // for the test's messages
	args []string
	// answers tells that the server is up; log is what it wrote.
	answers func() error
	log     func() string
	cmd     *exec.Cmd
	done    chan struct{}
}

// freePort is a free TCP port of 127.0.0.1.
func freePort(t testing.TB) int {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer func() { _ = listener.Close() }()
	return listener.Addr().(*net.TCPAddr).Port
}

// Start starts the server, again on the same port and directory, and
// returns once it answers.
func (s *serverProcess) Start(t testing.TB) {
	t.Helper()
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", s.name, err)
	}
	s.done = make(chan struct{})
	cmd, done := s.cmd, s.done
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := s.answers()
		if err == nil {
			return
		}
		select {
		case <-done:
			t.Fatalf("%s exited at start: %s", s.name, s.log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer: %v", s.name, err)
		}
		time.Sleep(20 * time.Millisecond) // poll until it answers
	}
}

// Stop shuts the server down as an operator would (SIGTERM: it writes its
// files and exits) and waits for it; a stopped server is left as it is.
func (s *serverProcess) Stop(t testing.TB) { s.signal(t, syscall.SIGTERM) }

// Kill stops the server at once (SIGKILL), as a crash of its host would.
func (s *serverProcess) Kill(t testing.TB) { s.signal(t, syscall.SIGKILL) }

func (s *serverProcess) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if s.cmd == nil {
		return
	}
	select {
	case <-s.done:
	default:
		if err := s.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("signal %s: %v", s.name, err)
		}
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not exit on %v", s.name, sig)
		}
	}
	s.cmd = nil
}
