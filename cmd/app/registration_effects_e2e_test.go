package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/internal/e2e"
)

func (j *journey) effectsOfEachUser(t *testing.T) {
	smtp := j.d.SMTP
	wait := e2e.EffectsTimeout - time.Since(j.last201)
	effectsDone := func() bool {
		for _, u := range j.users {
			if smtp.CountTo(u.Email) == 0 {
				return false
			}
		}
		for _, u := range j.users {
			if !j.api.HasSignupPoints(u.ID) {
				return false
			}
		}
		return true
	}
	e2e.RequireProgress(t, j.d.DB, effectsDone, wait,
		"every user has an email and %d points within %s of the last 201", e2e.SignupPoints, e2e.EffectsTimeout)
	t.Logf("effects done %s after the last 201", time.Since(j.last201).Round(time.Millisecond))

	assert.Equal(t, len(j.users), len(smtp.Messages()), "emails in all")
	for _, u := range j.users {
		e2e.AssertWelcomeEmail(t, smtp, u)
		p, ok := j.api.Points(u.ID)
		require.True(t, ok)
		assert.Equal(t, u.ID, p.UserID)
		assert.Equal(t, e2e.SignupPoints, p.Balance)
		if assert.Len(t, p.Entries, 1, u.Email) {
			assert.Equal(t, e2e.SignupPoints, p.Entries[0].Amount)
			assert.Equal(t, "signup", p.Entries[0].Reason)
			assert.False(t, p.Entries[0].GrantedAt.IsZero())
		}
	}
}

// everyRegistrationHasItsEffectsOnce: everyone registered after the first
// 20 gets their email and points too, once, and nobody refused gets any.
func (j *journey) everyRegistrationHasItsEffectsOnce(t *testing.T) {
	registered, smtp := j.registered(), j.d.SMTP
	e2e.RequireProgress(t, j.d.DB, func() bool {
		for _, u := range registered {
			if smtp.CountTo(u.Email) == 0 || !j.api.HasSignupPoints(u.ID) {
				return false
			}
		}
		return true
	}, e2e.EffectsTimeout)
	for _, u := range registered {
		e2e.AssertWelcomeEmail(t, smtp, u)
	}
	assert.Equal(t, len(registered), len(smtp.Messages()), "one email per registration, none for a rejected one")
	events := j.d.DB.Count(t, `SELECT count(*) FROM events`)
	assert.Equal(t, len(registered), events, "one event per registration, none for a rejected one")
}

// restart starts the service again on the same database and queues: it
// redoes nothing, and new registrations still flow.
func (j *journey) restart(t *testing.T) {
	restarted, api := j.d.Serve(t)
	j.clients = append(j.clients, api)
	smtp := j.d.SMTP
	t.Run("restart", func(t *testing.T) {
		u := api.MustRegister(t, e2e.User{Name: "After Restart", Email: "after.restart." + j.run + "@example.com",
			Password: "pw-" + j.run + "-restart"})
		j.addCreated(u)
		e2e.RequireProgress(t, j.d.DB, func() bool {
			return smtp.CountTo(u.Email) > 0 && api.HasSignupPoints(u.ID)
		}, e2e.EffectsTimeout, "the first registration after a restart has its effects")
		registered := j.registered()
		for _, u := range registered {
			assert.Equal(t, 1, smtp.CountTo(u.Email), "one email to %s", u.Email)
			p, ok := api.Points(u.ID)
			if assert.True(t, ok) {
				assert.Len(t, p.Entries, 1, "one grant to %s", u.Email)
			}
		}
		assert.Equal(t, len(registered), len(smtp.Messages()))
		r, err := api.Register(j.users[3], nil)
		require.NoError(t, err)
		assert.Equal(t, http.StatusConflict, r.Status, "emails stay taken: %s", r)
	})
	restarted.Stop(t)
}
