package service

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/onboard/onboard/internal/testenv"
)

// The service hashes passwords with bcrypt at BCRYPT_COST: one over
// bcrypt's floor here, so that a hasher that ignored it would show. (The
// command handlers' tests use a fake hasher; the bcrypt hasher's own tests
// run at the floor.)
func TestService_HashesPasswordsAtTheConfiguredCost(t *testing.T) {
	t.Parallel()
	dbURL := testenv.SQLiteDatabase(t)
	s := startServiceOn(t, testenv.OpenDB(t, dbURL), dbURL, func(c *Config) { c.BcryptCost = bcrypt.MinCost + 1 })

	status, _, body := s.post(valid, "")
	require.Equal(t, http.StatusCreated, status, "%s", body)

	var hash []byte
	require.NoError(t, s.db.QueryRowContext(testenv.Context(t), s.db.Rebind(`SELECT password_hash FROM credentials WHERE user_id = ?`),
		decodeUser(t, body).ID).Scan(&hash))
	cost, err := bcrypt.Cost(hash)
	require.NoError(t, err, "a bcrypt hash")
	assert.Equal(t, bcrypt.MinCost+1, cost, "hashed at the configured cost")
	assert.NoError(t, bcrypt.CompareHashAndPassword(hash, []byte("correct horse battery")), "the hash matches the password")
	assert.Error(t, bcrypt.CompareHashAndPassword(hash, []byte("correct horse battery!")), "and no other")
}
