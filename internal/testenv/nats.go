package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// NATSServer is a nats-server of a test's own, with JetStream on a file
// store in a directory of the test's: one a test may kill and start again,
// which it may not do to the shared server.
type NATSServer struct {
	// URL is its address.
	URL  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartNATS runs nats-server with JetStream on a free port of 127.0.0.1,
// its store in a directory of the test's own, and stops it when the test
// ends. Like the shared server's tests it runs when TEST_NATS_URL is set;
// it needs nats-server on the PATH (Debian installs it in /usr/sbin).
func StartNATS(t testing.TB) *NATSServer {
	t.Helper()
	URL(t, NATSURLVar)
	binary, err := exec.LookPath("nats-server")
	if err != nil {
		binary, err = exec.LookPath("/usr/sbin/nats-server")
	}
	if err != nil {
		if os.Getenv("REQUIRE_SERVICES") == "1" {
			t.Fatalf("nats-server is not on the PATH and REQUIRE_SERVICES=1")
		}
		t.Skipf("nats-server is not on the PATH: skipping")
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	port := listener.Addr().(*net.TCPAddr).Port
	_ = listener.Close()
	dir := t.TempDir()
	s := &NATSServer{
		URL: fmt.Sprintf("nats://127.0.0.1:%d", port),
		args: []string{binary, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", dir,
			"-l", filepath.Join(dir, "nats.log")},
	}
	t.Cleanup(func() { s.signal(t, syscall.SIGTERM) })
	s.Start(t)
	return s
}

// Start starts the server again, on the same port and store, and returns
// once JetStream answers.
func (s *NATSServer) Start(t testing.TB) {
	t.Helper()
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start nats-server: %v", err)
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
			t.Fatalf("nats-server exited at start: %s", s.log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server does not answer: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // poll until it answers
	}
}

// answers connects and asks JetStream for its account.
func (s *NATSServer) answers() error {
	conn, err := nats.Connect(s.URL, nats.Timeout(time.Second), nats.NoReconnect())
	if err != nil {
		return err
	}
	defer conn.Close()
	js, err := conn.JetStream(nats.MaxWait(time.Second))
	if err != nil {
		return err
	}
	_, err = js.AccountInfo()
	return err
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *NATSServer) Kill(t testing.TB) { s.signal(t, syscall.SIGKILL) }

func (s *NATSServer) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if s.cmd == nil {
		return
	}
	select {
	case <-s.done:
	default:
		if err := s.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("signal nats-server: %v", err)
		}
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			t.Errorf("nats-server did not exit on %v", sig)
		}
	}
	s.cmd = nil
}

func (s *NATSServer) log() string {
	out, _ := os.ReadFile(s.args[len(s.args)-1])
	return string(out)
}
