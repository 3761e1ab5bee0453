package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testsmtp"
)

// e2eCrashEffectsTimeout bounds the wait for a killed registration's effects
// after the restart: a handler killed while holding its claim leaves it to
// expire, after adapters.ClaimLease, before the restart may take it over.
const e2eCrashEffectsTimeout = adapters.ClaimLease + 15*time.Second

// TestE2E_KillAfter201 kills the service (SIGKILL, no graceful stop) as soon
// as a registration is answered 201, on the default setup (a SQLite file and
// PUBSUB=sql), and starts it again on the same database: the registration,
// committed with its outbox message, still has its effects, each once.
func TestE2E_KillAfter201(t *testing.T) {
	const kills = 5
	dbURL := testenv.SQLiteDatabase(t)
	smtpServer := testsmtp.Start(t)
	env := map[string]string{
		"PUBSUB":       "sql",
		"DATABASE_URL": dbURL,
		"SMTP_URL":     smtpServer.URL(),
	}
	run := strings.ReplaceAll(uuid.NewString(), "-", "")[:8]
	newUser := func(i int) e2eUser {
		return e2eUser{
			Name:     fmt.Sprintf("Crash User %02d", i),
			Email:    fmt.Sprintf("crash%02d.%s@example.com", i, run),
			Password: fmt.Sprintf("pw-%s-%02d-crash", run, i),
		}
	}
	register := func(t *testing.T, api *e2eAPI, u *e2eUser) {
		t.Helper()
		r, err := api.register(*u, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		u.ID, _ = r.JSON()["id"].(string)
		require.NotEmpty(t, u.ID, r.String())
	}
	// hasEffects: exactly one email and one grant of the signup points.
	hasEffects := func(api *e2eAPI, u e2eUser) bool {
		if smtpServer.CountTo(u.Email) != 1 {
			return false
		}
		p, ok := api.pointsOf(u.ID)
		return ok && p.Balance == e2eSignupPoints && len(p.Entries) == 1
	}
	assertOnce := func(t *testing.T, api *e2eAPI, u e2eUser) {
		t.Helper()
		assert.Equal(t, 1, smtpServer.CountTo(u.Email), "emails to %s", u.Email)
		p, ok := api.pointsOf(u.ID)
		if assert.True(t, ok, "points of %s", u.Email) {
			assert.Equal(t, e2eSignupPoints, p.Balance, "balance of %s", u.Email)
			assert.Len(t, p.Entries, 1, "grants to %s", u.Email)
		}
	}

	var users []e2eUser
	proc := runBinary(t, env)
	api := newE2EAPI(proc.waitServing(t))
	for i := 0; i < kills; i++ {
		u := newUser(i)
		register(t, api, &u)
		require.NoError(t, proc.cmd.Process.Kill(), "SIGKILL right after the 201")
		select {
		case <-proc.exited:
		case <-time.After(e2eStopTimeout):
			t.Fatalf("the service did not die within %s of SIGKILL", e2eStopTimeout)
		}
		users = append(users, u)
		t.Logf("kill %d: %d email(s) to %s before the kill", i+1, smtpServer.CountTo(u.Email), u.Email)

		proc = runBinary(t, env)
		api = newE2EAPI(proc.waitServing(t))
		got := api.mustGet(t, "/users/"+u.ID)
		require.Equal(t, http.StatusOK, got.Status, "the killed registration was committed: %s", got)
		started := time.Now()
		require.Eventually(t, func() bool { return hasEffects(api, u) }, e2eCrashEffectsTimeout, e2ePoll,
			"kill %d: one email to %s and %d points after the restart", i+1, u.Email, e2eSignupPoints)
		t.Logf("kill %d: effects done %s after the restart", i+1, time.Since(started).Round(time.Millisecond))
	}

	// A last registration on the last process: once its effects are in, the
	// process has long taken up anything left of the earlier ones, and none
	// of them happened again.
	last := newUser(kills)
	register(t, api, &last)
	users = append(users, last)
	require.Eventually(t, func() bool { return hasEffects(api, last) }, e2eEffectsTimeout, e2ePoll,
		"one email to %s and %d points", last.Email, e2eSignupPoints)
	for _, u := range users {
		assertOnce(t, api, u)
	}
	assert.Len(t, smtpServer.Messages(), len(users), "one email per registration in all")

	// And again after a graceful stop and a restart that has nothing to do.
	proc.stop(t)
	proc = runBinary(t, env)
	api = newE2EAPI(proc.waitServing(t))
	after := newUser(kills + 1)
	register(t, api, &after)
	users = append(users, after)
	require.Eventually(t, func() bool { return hasEffects(api, after) }, e2eEffectsTimeout, e2ePoll,
		"one email to %s and %d points", after.Email, e2eSignupPoints)
	for _, u := range users {
		assertOnce(t, api, u)
	}
	assert.Len(t, smtpServer.Messages(), len(users), "one email per registration in all")
	proc.stop(t)
}
