package main

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/service/operator"
)

// The service hashes one password per CPU and runs twice as many Go
// processors, so that answers needing no hash never wait behind one.
func TestDoubleProcessors(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(before) })

	assert.Equal(t, before, doubleProcessors(), "one hash per CPU")
	assert.Equal(t, 2*before, runtime.GOMAXPROCS(0))
}

// The service collects at serviceGCPercent, unless GOGC says otherwise.
func TestCollectSooner(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })

	t.Setenv("GOGC", "") // restored when the test ends
	require.NoError(t, os.Unsetenv("GOGC"))
	collectSooner()
	assert.Equal(t, serviceGCPercent, debug.SetGCPercent(100))

	t.Setenv("GOGC", "100")
	collectSooner()
	assert.Equal(t, 100, debug.SetGCPercent(100), "GOGC set: left alone")
}

// Help and the version come first, whatever the environment, on standard
// output; an unknown command prints the help (a known command without its
// subcommand, that command's lines) on standard error and exits 2.
func TestE2E_Help(t *testing.T) {
	binary := e2e.Binary(t)
	run := func(args ...string) (stdout, stderr string, code int) {
		var out, errOut strings.Builder
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "DATABASE_URL=nowhere", "BCRYPT_COST=99") // a bad configuration
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return out.String(), errOut.String(), exit.ExitCode()
		}
		require.NoError(t, err)
		return out.String(), errOut.String(), 0
	}
	for _, arg := range []string{"-h", "--help", "help"} {
		stdout, stderr, code := run(arg)
		assert.Equal(t, 0, code, arg)
		assert.Equal(t, operator.Usage(), stdout, arg)
		assert.Empty(t, stderr, arg)
	}
	stdout, stderr, code := run("frobnicate")
	assert.Equal(t, 2, code)
	assert.Empty(t, stdout)
	assert.Equal(t, "onboard: unknown command: \"frobnicate\"\n\n"+operator.Usage(), stderr)
	_, stderr, code = run("poison")
	assert.Equal(t, 2, code)
	assert.Equal(t, "onboard: unknown command: \"poison\"\n\n"+operator.UsageFor([]string{"poison"}), stderr,
		"a known command alone gets its own lines")

	// The version needs no configuration either: the module's version, the
	// commit when the build recorded it (make build does), Go's version.
	stdout, stderr, code = run("version")
	assert.Equal(t, 0, code, stderr)
	assert.Regexp(t, `^onboard \S+( commit [0-9a-f]{12}(\+changes)? \S+)? go1\.\d+`, stdout)

	_, stderr, code = run("retries", "list")
	assert.Equal(t, 1, code, "a known command loads the configuration")
	assert.Contains(t, stderr, "BCRYPT_COST")
}
