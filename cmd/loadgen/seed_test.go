package main

import (
	"bytes"
	"encoding/base64"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/service"
)

func TestSeed_WritesUsersAsTheServiceLeavesThem(t *testing.T) {
	env := map[string]string{
		"DATABASE_URL":  "sqlite:" + filepath.Join(t.TempDir(), "seeded.db"),
		"MASTER_KEY":    base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
		"SIGNUP_POINTS": "42",
	}
	var out bytes.Buffer
	require.NoError(t, runSeed([]string{"-users", "1500", "-password", "seed password 1"}, func(k string) string { return env[k] }, &out))
	first := regexp.MustCompile(`seeded 1500 users .*: (seed-\w+-0@example\.com) to seed-\w+-1499@example\.com`).FindStringSubmatch(out.String())
	require.NotNil(t, first, out.String())

	ctx := testenv.Context(t)
	cfg, err := service.LoadConfig(func(k string) string { return env[k] })
	require.NoError(t, err)
	db := testenv.OpenDB(t, cfg.DatabaseURL)
	assert.Equal(t, 1500, db.Count(t, `SELECT count(*) FROM users`))
	assert.Equal(t, 1500, db.Count(t, `SELECT count(*) FROM points_entries WHERE reason = ? AND amount = 42`, domain.ReasonSignup))
	assert.Equal(t, 1500, db.Count(t, `SELECT count(*) FROM processed_messages WHERE handler = ? AND state = 'done'`,
		event.SendWelcomeEmailName))
	assert.Equal(t, 4, db.Count(t, `SELECT count(*) FROM start_upgrades`), "a start after the seed upgrades nothing")

	store, err := service.OpenUserStore(ctx, cfg, db.DB)
	require.NoError(t, err)
	owner, hash, err := store.Credential(ctx, first[1])
	require.NoError(t, err)
	require.NoError(t, bcrypt.CompareHashAndPassword(hash, []byte("seed password 1")))
	user, err := store.ReadModel().UserByID(ctx, owner)
	require.NoError(t, err)
	assert.Equal(t, first[1], user.Email)
	entries, err := adapters.NewPointsLedger(db.DB).Entries(ctx, owner)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, 42, entries[0].Amount)
}

func TestSeed_AsksForAUserCount(t *testing.T) {
	err := runSeed(nil, func(string) string { return "" }, &bytes.Buffer{})
	require.ErrorContains(t, err, "give -users N")
}
