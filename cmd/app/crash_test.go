package main

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/dedup"
	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testsmtp"
)

// e2eCrashEffectsTimeout bounds the wait for a killed registration's effects
// after the restart: a handler killed while holding its claim leaves it to
// expire, after dedup.ClaimLease, before the restart may take it over.
const e2eCrashEffectsTimeout = dedup.ClaimLease + 15*time.Second

// TestE2E_KillAfter201 kills the service (SIGKILL, no graceful stop) as soon
// as a registration is answered 201, on the default setup (a SQLite file and
// PUBSUB=sql), and starts it again on the same database: the registration,
// committed with its outbox message, still has its effects, each once. A
// kill that falls between the mail server's acceptance and the handler's
// "done" mark leaves the claim to expire, and the email is sent again as
// the same message (the same Message-ID): emails are counted by
// Message-ID, as the fault suite counts them.
func TestE2E_KillAfter201(t *testing.T) {
	t.Parallel()
	const kills = 5
	d := e2e.Deploy(t, e2e.Config{PubSub: "sql", SMTP: true})
	users := newUsers("crash", e2e.RunID(), kills+2)

	proc, api := d.Serve(t)
	for i, u := range users[:kills] {
		requestID := "crash-" + strconv.Itoa(i)
		r, err := api.Register(u, http.Header{"X-Request-Id": {requestID}})
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		users[i].ID = r.ID()
		proc.Kill(t) // right after the 201
		t.Logf("kill %d: %d email(s) to %s before the kill", i+1, d.SMTP.CountTo(u.Email), u.Email)

		proc, api = d.Serve(t)
		got := api.MustGet(t, "/users/"+users[i].ID)
		require.Equal(t, http.StatusOK, got.Status, "the killed registration was committed: %s", got)
		started := time.Now()
		require.Eventually(t, func() bool { return hasEffectsOnce(d.SMTP, api, users[i]) }, e2eCrashEffectsTimeout, e2e.Poll,
			"kill %d: one email to %s and %d points after the restart", i+1, u.Email, e2e.SignupPoints)
		t.Logf("kill %d: effects done %s after the restart", i+1, time.Since(started).Round(time.Millisecond))
		// The email arrives before its handler marks it sent: the next kill
		// must not fall in between, where the claim is still held. A claim
		// the killed process held is taken over once its lease ran out.
		require.Eventually(t, func() bool { return noClaimHeld(d) }, e2eCrashEffectsTimeout, e2e.Poll,
			"kill %d: the welcome email's claim is marked done", i+1)
	}

	// A last registration on the last process: once its effects are in, the
	// process has long taken up anything left of the earlier ones, and none
	// of them happened again.
	users[kills] = api.MustRegister(t, users[kills])
	assertEachOnce(t, d.SMTP, api, users[:kills+1])

	// And again after a graceful stop and a restart that has nothing to do.
	proc.Stop(t)
	proc, api = d.Serve(t)
	users[kills+1] = api.MustRegister(t, users[kills+1])
	assertEachOnce(t, d.SMTP, api, users)
	proc.Stop(t)
}

// noClaimHeld reports whether no email handler holds a claim in the
// deployment's database: every email sent is marked done.
func noClaimHeld(d *e2e.Deployment) bool {
	var held int
	err := d.DB.QueryRowContext(context.Background(),
		`SELECT count(*) FROM processed_messages WHERE state = 'claimed'`).Scan(&held)
	return err == nil && held == 0
}

// emailsTo counts the distinct emails (Message-IDs) to the address.
func emailsTo(smtp *testsmtp.Server, address string) int {
	ids := map[string]bool{}
	for _, m := range smtp.MessagesTo(address) {
		ids[m.MessageID()] = true
	}
	return len(ids)
}

// hasEffectsOnce: exactly one email and one grant of the signup points.
func hasEffectsOnce(smtp *testsmtp.Server, api *e2e.Client, u e2e.User) bool {
	if emailsTo(smtp, u.Email) != 1 {
		return false
	}
	p, ok := api.Points(u.ID)
	return ok && p.Balance == e2e.SignupPoints && len(p.Entries) == 1
}

// assertEachOnce waits for the last user's effects, then checks that every
// user has exactly one email and one grant, and that no other email went.
func assertEachOnce(t *testing.T, smtp *testsmtp.Server, api *e2e.Client, users []e2e.User) {
	t.Helper()
	last := users[len(users)-1]
	require.Eventually(t, func() bool { return hasEffectsOnce(smtp, api, last) }, e2e.EffectsTimeout, e2e.Poll,
		"one email to %s and %d points", last.Email, e2e.SignupPoints)
	for _, u := range users {
		assert.Equal(t, 1, emailsTo(smtp, u.Email), "emails to %s", u.Email)
		p, ok := api.Points(u.ID)
		if assert.True(t, ok, "points of %s", u.Email) {
			assert.Equal(t, e2e.SignupPoints, p.Balance, "balance of %s", u.Email)
			assert.Len(t, p.Entries, 1, "grants to %s", u.Email)
		}
	}
	ids := map[string]bool{}
	for _, m := range smtp.Messages() {
		ids[m.MessageID()] = true
	}
	assert.Len(t, ids, len(users), "one email per registration in all")
}
