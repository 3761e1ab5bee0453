package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// NATSServer is a nats-server of a test's own, with JetStream on a file
// store in a directory of the test's: one a test may kill and start again,
// which it may not do to the shared server.
type NATSServer struct {
	// URL is its address.
	URL string
	serverProcess
}

// StartNATS runs nats-server with JetStream on a free port of 127.0.0.1,
// its store in a directory of the test's own, and stops it when the test
// ends. Like the shared server's tests it runs when TEST_NATS_URL is set;
// it needs nats-server on the PATH or in /usr/sbin, where Debian installs it.
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
	port := freePort(t)
	dir := t.TempDir()
	logFile := filepath.Join(dir, "nats.log")
	s := &NATSServer{URL: fmt.Sprintf("nats://127.0.0.1:%d", port)}
	s.serverProcess = serverProcess{
		name:    "nats-server",
		args:    []string{binary, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", dir, "-l", logFile},
		answers: func() error { return jetStreamAnswers(s.URL) },
		log:     func() string { out, _ := os.ReadFile(logFile); return string(out) },
	}
	t.Cleanup(func() { s.Stop(t) })
	s.Start(t)
	return s
}

// jetStreamAnswers connects and asks JetStream for its account.
func jetStreamAnswers(url string) error {
	conn, err := nats.Connect(url, nats.Timeout(time.Second), nats.NoReconnect())
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
