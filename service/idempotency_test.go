package service

import (
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// post sends a JSON POST /users with an optional Idempotency-Key and returns
// the status, the Location header and the body.
func (s *runningService) post(body, key string) (int, string, []byte) {
	s.t.Helper()
	header := map[string]string{}
	if key != "" {
		header["Idempotency-Key"] = key
	}
	return s.postRaw(body, "application/json", header)
}

// postRaw sends body to POST /users as contentType ("-" for none), with header.
func (s *runningService) postRaw(body, contentType string, header map[string]string) (int, string, []byte) {
	s.t.Helper()
	all := map[string]string{"Content-Type": strings.TrimPrefix(contentType, "-")}
	maps.Copy(all, header)
	resp, out := s.call(http.MethodPost, "/users", body, all)
	return resp.StatusCode, resp.Header.Get("Location"), out
}

// withoutSession is a 201's user without the session it opened: each
// repeat of a registration proves the password again, and gets a session
// of its own.
func withoutSession(t *testing.T, body []byte) string {
	t.Helper()
	var user map[string]any
	require.NoError(t, json.Unmarshal(body, &user), "%s", body)
	require.Contains(t, user, "session")
	delete(user, "session")
	out, err := json.Marshal(user)
	require.NoError(t, err)
	return string(out)
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	return e.Error.Code
}

// TestService_IdempotencyKey: SQLite always runs; PostgreSQL when its
// variable is set.
func TestService_IdempotencyKey(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) { testIdempotencyKey(t, startServiceOnSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { testIdempotencyKey(t, startService(t)) })
}

func testIdempotencyKey(t *testing.T, s *runningService) {
	const key = "signup-7f3c2a9e"
	ada := `{"name":"Ada Lovelace","email":"ada@example.com","password":"correct horse battery"}`

	status, location, first := s.post(ada, key)
	require.Equal(t, http.StatusCreated, status, "%s", first)
	var user struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(first, &user))

	// Retries, one after the other and at once, get the very same answer.
	status, location2, again := s.post(ada, key)
	assert.Equal(t, http.StatusCreated, status, "%s", again)
	assert.JSONEq(t, withoutSession(t, first), withoutSession(t, again))
	assert.Equal(t, location, location2)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			status, _, body := s.post(ada, key)
			assert.Equal(t, http.StatusCreated, status, "%s", body)
			assert.JSONEq(t, withoutSession(t, first), withoutSession(t, body))
		})
	}
	wg.Wait()

	// The same key with another body is refused and writes nothing.
	for _, other := range []string{
		`{"name":"Ada Lovelace","email":"grace@example.com","password":"correct horse battery"}`,
		`{"name":"Ada King","email":"ada@example.com","password":"correct horse battery"}`,
		`{"name":"Ada Lovelace","email":"ada@example.com","password":"another horse battery"}`,
	} {
		status, _, body := s.post(other, key)
		assert.Equal(t, http.StatusUnprocessableEntity, status, "%s", body)
		assert.Equal(t, "idempotency-key-reused", errorCode(t, body))
	}

	// Without a key, the same body is a second registration of a taken email.
	status, _, body := s.post(ada, "")
	assert.Equal(t, http.StatusConflict, status, "%s", body)

	for _, bad := range []string{strings.Repeat("k", 256), "with space", "ünïcode"} {
		status, _, body := s.post(`{"name":"Bad Key","email":"bad.key@example.com","password":"correct horse battery"}`, bad)
		assert.Equal(t, http.StatusBadRequest, status, "%q: %s", bad, body)
		assert.Equal(t, "invalid-idempotency-key", errorCode(t, body))
	}

	s.waitRegistered(user.ID, "ada@example.com")
	s.assertRegisteredOnce(user.ID, "Ada Lovelace", "ada@example.com")
	assert.Equal(t, 1, s.count(`SELECT count(*) FROM events`), "one registration in all")
	assert.Equal(t, 1, s.count(`SELECT count(*) FROM user_emails`))
	assert.Equal(t, 1, s.mailer.Count(), "one email in all")
	s.stop()
}
