package main

import (
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testenv"
)

// TestE2E_IdempotencyKeyAcrossRestarts: the user id of a key is derived
// under a secret stored in the database, so a retry after a restart gets the
// same 201, and the id cannot be computed from the key alone.
func TestE2E_IdempotencyKeyAcrossRestarts(t *testing.T) {
	t.Parallel()
	d := e2e.Deploy(t, e2e.Config{})
	const key = "restart-4c1d9b2e"
	ada := e2e.User{Name: "Ada Lovelace", Email: "ada.restart@example.com", Password: "correct horse battery"}
	withKey := http.Header{"Idempotency-Key": {key}}

	first, api := d.Serve(t)
	r, err := api.Register(ada, withKey)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, r.Status, r.String())
	id, _ := r.JSON()["id"].(string)
	assert.NotEqual(t, uuid.NewSHA1(uuid.MustParse("e5e94093-ea57-47fc-8009-a1946c152edd"), []byte(key)).String(), id,
		"not the UUIDv5 of the key under a namespace anyone can read in the source")
	first.Stop(t)

	second, api := d.Serve(t)
	again, err := api.Register(ada, withKey)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, again.Status, again.String())
	user, userAgain := r.JSON(), again.JSON()
	assert.NotEqual(t, user["session"], userAgain["session"], "the repeat proves the password: a session of its own")
	delete(user, "session")
	delete(userAgain, "session")
	assert.Equal(t, user, userAgain, "the same user after a restart")
	second.Stop(t)

	db := d.DB
	var events int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM events`).Scan(&events))
	assert.Equal(t, 1, events, "one registration in all")
	secret, err := secrets.NewServerKeys(db.DB, d.MasterKeys(t)).Secret(testenv.Context(t), secrets.IdempotencyKeySecret)
	require.NoError(t, err)
	for _, p := range []*e2e.Process{first, second} {
		out := p.Stdout.String() + p.Stderr.String()
		for _, form := range []string{hex.EncodeToString(secret), base64.StdEncoding.EncodeToString(secret)} {
			assert.NotContains(t, out, form, "the secret is never logged")
		}
	}
}
