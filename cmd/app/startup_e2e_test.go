package main

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testenv"
)

// TestE2E_FailsFastOnBadConfiguration: a bad variable or an unreachable
// service at start is one line on stderr naming it, and a non-zero exit,
// without a panic or a password from a URL.
func TestE2E_FailsFastOnBadConfiguration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      map[string]string
		needsDB  bool
		wantHint string // the error names what is wrong
	}{
		{name: "unknown PUBSUB", env: map[string]string{"PUBSUB": "bogus"}, wantHint: "PUBSUB"},
		{name: "BCRYPT_COST out of range", env: map[string]string{"BCRYPT_COST": "15"}, wantHint: "BCRYPT_COST"},
		{name: "bad RATE_LIMIT_PASSWORDS", env: map[string]string{"RATE_LIMIT_PASSWORDS": "lots"}, wantHint: "RATE_LIMIT_PASSWORDS"},
		{name: "bad TRUSTED_PROXIES", env: map[string]string{"TRUSTED_PROXIES": "proxy.internal"}, wantHint: "TRUSTED_PROXIES"},
		{name: "unreachable database", env: map[string]string{"DATABASE_URL": "postgres://postgres:s3cret@127.0.0.1:1/x"}, wantHint: "database"},
		{name: "no MASTER_KEY on a database server", env: map[string]string{"MASTER_KEY": ""}, wantHint: "MASTER_KEY is not set"},
		{name: "MASTER_KEY not 32 bytes", env: map[string]string{"MASTER_KEY": "s3cret"}, wantHint: "MASTER_KEY"},
		{name: "DATABASE_URL not a database URL", env: map[string]string{"DATABASE_URL": "ftp://postgres:s3cret@127.0.0.1/x"}, wantHint: "DATABASE_URL"},
		{name: "unreachable RabbitMQ", env: map[string]string{"PUBSUB": "amqp", "AMQP_URL": "amqp://guest:s3cret@127.0.0.1:1/"}, needsDB: true, wantHint: "AMQP"},
		{name: "unreachable NATS", env: map[string]string{"PUBSUB": "nats", "NATS_URL": "nats://onboard:s3cret@127.0.0.1:1"}, needsDB: true, wantHint: "NATS"},
		{name: "bad NATS_URL", env: map[string]string{"PUBSUB": "nats", "NATS_URL": "http://onboard:s3cret@127.0.0.1:4222"}, needsDB: true, wantHint: "NATS_URL"},
		{name: "unreachable Redis", env: map[string]string{"PUBSUB": "redis", "REDIS_URL": "redis://:s3cret@127.0.0.1:1/0"}, needsDB: true, wantHint: "REDIS_URL"},
		{name: "bad REDIS_URL", env: map[string]string{"PUBSUB": "redis", "REDIS_URL": "redis://:s3cret@127.0.0.1:port/0"}, needsDB: true, wantHint: "REDIS_URL"},
		{name: "bad SMTP_URL", env: map[string]string{"SMTP_URL": "smtp://user:s3cret@:bad"}, needsDB: true, wantHint: "SMTP_URL"},
		{name: "bad HTTP_ADDR", env: map[string]string{"HTTP_ADDR": "127.0.0.1:99999"}, needsDB: true, wantHint: "HTTP_ADDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/never-reached",
				"MASTER_KEY": testenv.NewMasterKey()}
			if tt.needsDB {
				env["DATABASE_URL"] = testenv.PostgresDatabase(t)
			}
			for k, v := range tt.env {
				env[k] = v
			}
			start := time.Now()
			proc := e2e.Start(t, env)
			proc.WaitFailed(t)
			t.Logf("exited in %s: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(proc.Stderr.String()))
			var exitErr *exec.ExitError
			require.ErrorAs(t, proc.Err(), &exitErr, "a non-zero exit")
			assert.NotEqual(t, 0, exitErr.ExitCode())
			assert.True(t, exitErr.Exited(), "exited, not killed by a signal: %v", exitErr)

			stderr := strings.TrimRight(proc.Stderr.String(), "\n")
			assert.NotEmpty(t, stderr)
			assert.NotContains(t, stderr, "\n", "a single line on stderr")
			assert.Contains(t, strings.ToLower(stderr), strings.ToLower(tt.wantHint))
			all := proc.Stdout.String() + stderr
			assert.NotContains(t, all, "panic")
			assert.NotContains(t, all, "goroutine ")
			assert.NotContains(t, all, "s3cret", "no password from a URL")
		})
	}
}

// TestE2E_WrongMasterKeyStopsTheStart: a MASTER_KEY other than the one the
// database's keys were wrapped under stops the start with one line naming
// the variable, and exit 1; the key itself is printed nowhere.
func TestE2E_WrongMasterKeyStopsTheStart(t *testing.T) {
	t.Parallel()
	d := e2e.Deploy(t, e2e.Config{Database: testenv.PostgresDatabase})
	first := d.Start(t)
	first.WaitServing(t)
	first.Stop(t)

	right := d.Vars["MASTER_KEY"]
	d.Vars["MASTER_KEY"] = testenv.NewMasterKey()
	proc := d.Start(t)
	proc.WaitFailed(t)
	assert.Equal(t, 1, proc.ExitCode())
	stderr := strings.TrimRight(proc.Stderr.String(), "\n")
	t.Logf("the start with another key: %s", stderr)
	assert.NotContains(t, stderr, "\n", "a single line on stderr")
	assert.Contains(t, stderr, "MASTER_KEY does not open the keys stored in the database")
	all := first.Stdout.String() + first.Stderr.String() + proc.Stdout.String() + stderr
	for _, key := range []string{right, d.Vars["MASTER_KEY"]} {
		assert.NotContains(t, all, key, "never a master key")
	}

	d.Vars["MASTER_KEY"] = right
	again := d.Start(t)
	again.WaitServing(t)
	again.Stop(t)
}
