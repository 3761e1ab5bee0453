// Package e2e is the end-to-end harness: it builds the service's binary
// once per test binary, runs it against real databases, RabbitMQ and an SMTP
// sink (internal/testenv, internal/testsmtp), drives it over HTTP with one
// typed client, and checks what it leaves behind (no secret anywhere, one
// email and one grant per user). Each deployment of a test has a
// PUBSUB_NAMESPACE of its own, so tests on one broker run in parallel.
//
// Scenario tests live beside the binary in cmd/app; under -short every test
// that runs the binary is skipped.
package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/onboard/onboard/internal/testenv"
)

const (
	// mainPackage is the service's main package, built into the binary.
	mainPackage = "github.com/onboard/onboard/cmd/app"
	// fastHashTag lets the binary accept FastBcryptCost.
	fastHashTag = "e2e_fast_hash"
)

var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Parallel is how many tests run at once by default (go test's -parallel,
// which defaults to GOMAXPROCS): an end-to-end test mostly waits for the
// processes it runs. On 2 cores, more left bursts of registrations waiting
// past the service's hash deadline.
const Parallel = 4

// Main runs the tests of a package that uses the harness, Parallel at once
// unless -parallel says otherwise, then removes the binary; call it from
// TestMain.
func Main(m *testing.M) {
	flag.Parse()
	parallelSet := false
	flag.Visit(func(f *flag.Flag) { parallelSet = parallelSet || f.Name == "test.parallel" })
	if !parallelSet {
		_ = flag.Set("test.parallel", strconv.Itoa(max(Parallel, runtime.GOMAXPROCS(0))))
	}
	code := m.Run()
	if binary.dir != "" {
		_ = os.RemoveAll(binary.dir)
	}
	os.Exit(code)
}

// Binary builds the service once per test binary and returns its path. The
// tests that run it are end-to-end tests: skipped under -short.
func Binary(t testing.TB) string {
	t.Helper()
	testenv.SkipIfShort(t, "end-to-end test (runs the built binary)")
	binary.once.Do(func() {
		dir, err := os.MkdirTemp("", "onboard-e2e-")
		if err != nil {
			binary.err = err
			return
		}
		binary.dir = dir
		path := filepath.Join(dir, "onboard")
		out, err := exec.Command("go", "build", "-tags", fastHashTag, "-o", path, mainPackage).CombinedOutput()
		if err != nil {
			binary.err = fmt.Errorf("go build: %w\n%s", err, out)
			return
		}
		binary.path = path
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}
