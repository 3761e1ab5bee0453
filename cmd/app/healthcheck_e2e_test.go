package main

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/internal/e2e"
)

// TestE2E_Healthcheck: `onboard healthcheck`, the container image's
// HEALTHCHECK, exits 0 while the service of its HTTP_ADDR serves, and 1 with
// one line on stderr once it stopped.
func TestE2E_Healthcheck(t *testing.T) {
	t.Parallel()
	d := e2e.Deploy(t, e2e.Config{})
	proc := d.Start(t)
	addr := proc.WaitServing(t)

	check := func() (stdout, stderr string, code int) {
		var out, errOut strings.Builder
		cmd := exec.Command(e2e.Binary(t), "healthcheck")
		vars := map[string]string{"HTTP_ADDR": addr}
		for k, v := range d.Vars {
			if k != "HTTP_ADDR" {
				vars[k] = v
			}
		}
		cmd.Env = e2e.Environ(vars)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return out.String(), errOut.String(), exit.ExitCode()
		}
		require.NoError(t, err)
		return out.String(), errOut.String(), 0
	}

	stdout, stderr, code := check()
	assert.Equal(t, 0, code, stderr)
	assert.Equal(t, "GET http://"+addr+"/healthz: 200 OK\n", stdout)

	proc.Stop(t)
	stdout, stderr, code = check()
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout)
	assert.Regexp(t, `^onboard: healthcheck: .*connection refused\n$`, stderr)
}
