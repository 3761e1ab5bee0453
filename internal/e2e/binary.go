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
	"strings"
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

// builds are the binaries built so far, by the transports built in ("":
// every one), in a folder that Main removes.
var builds struct {
	mu     sync.Mutex
	dir    string
	byName map[string]*build
}

type build struct {
	once sync.Once
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
	if builds.dir != "" {
		_ = os.RemoveAll(builds.dir)
	}
	os.Exit(code)
}

// Binary builds the service once per test binary and returns its path. The
// tests that run it are end-to-end tests: skipped under -short.
func Binary(t testing.TB) string {
	t.Helper()
	return BinaryWith(t, "")
}

// BinaryWith is Binary built as `make build TRANSPORTS=transports` builds
// it: with scripts/build-tags.sh's tags, which leave out each optional
// transport that transports does not name ("": none left out).
func BinaryWith(t testing.TB, transports string) string {
	t.Helper()
	testenv.SkipIfShort(t, "end-to-end test (runs the built binary)")
	builds.mu.Lock()
	if builds.byName == nil {
		builds.byName = map[string]*build{}
	}
	b := builds.byName[transports]
	if b == nil {
		b = &build{}
		builds.byName[transports] = b
	}
	builds.mu.Unlock()
	b.once.Do(func() { b.path, b.err = buildBinary(transports) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// buildBinary builds the service with the transports named, and
// fastHashTag, into the builds' folder.
func buildBinary(transports string) (string, error) {
	builds.mu.Lock()
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "onboard-e2e-")
		if err != nil {
			builds.mu.Unlock()
			return "", err
		}
		builds.dir = dir
	}
	name := "onboard"
	if transports != "" {
		name += "-" + strings.ReplaceAll(transports, " ", "-")
	}
	path := filepath.Join(builds.dir, name)
	builds.mu.Unlock()
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m: %w", err)
	}
	tagger := exec.Command("bash", "scripts/build-tags.sh")
	tagger.Dir = strings.TrimSpace(string(root))
	tagger.Env = append(os.Environ(), "TRANSPORTS="+transports)
	tags, err := tagger.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/build-tags.sh: %w", err)
	}
	out, err := exec.Command("go", "build", "-tags", strings.TrimSpace(string(tags))+","+fastHashTag,
		"-o", path, mainPackage).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return path, nil
}
