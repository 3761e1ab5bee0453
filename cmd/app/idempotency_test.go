package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/internal/testenv"
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
	req, err := http.NewRequest(http.MethodPost, "http://"+s.svc.Addr()+"/users", strings.NewReader(body))
	require.NoError(s.t, err)
	if contentType != "-" {
		req.Header.Set("Content-Type", contentType)
	}
	for name, value := range header {
		req.Header.Set(name, value)
	}
	// bcrypt runs twice for a repeat, and is slow under -race.
	resp, err := (&http.Client{Timeout: serviceWait}).Do(req)
	require.NoError(s.t, err)
	defer func() { _ = resp.Body.Close() }()
	var out bytes.Buffer
	_, err = out.ReadFrom(resp.Body)
	require.NoError(s.t, err)
	return resp.StatusCode, resp.Header.Get("Location"), out.Bytes()
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
	assert.JSONEq(t, string(first), string(again))
	assert.Equal(t, location, location2)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			status, _, body := s.post(ada, key)
			assert.Equal(t, http.StatusCreated, status, "%s", body)
			assert.JSONEq(t, string(first), string(body))
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
	assert.Equal(t, 1, s.mailer.count(), "one email in all")
	s.stop()
}

// TestE2E_IdempotencyKeyAcrossRestarts: the user id of a key is derived
// under a secret stored in the database, so a retry after a restart gets the
// same 201, and the id cannot be computed from the key alone.
func TestE2E_IdempotencyKeyAcrossRestarts(t *testing.T) {
	dbURL := testenv.SQLiteDatabase(t)
	env := map[string]string{"DATABASE_URL": dbURL}
	const key = "restart-4c1d9b2e"
	ada := e2eUser{Name: "Ada Lovelace", Email: "ada.restart@example.com", Password: "correct horse battery"}
	withKey := http.Header{"Idempotency-Key": {key}}

	first := runBinary(t, env)
	r, err := newE2EAPI(first.waitServing(t)).register(ada, withKey)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, r.Status, r.String())
	id, _ := r.JSON()["id"].(string)
	assert.NotEqual(t, uuid.NewSHA1(uuid.MustParse("e5e94093-ea57-47fc-8009-a1946c152edd"), []byte(key)).String(), id,
		"not the UUIDv5 of the key under a namespace anyone can read in the source")
	first.stop(t)

	second := runBinary(t, env)
	again, err := newE2EAPI(second.waitServing(t)).register(ada, withKey)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, again.Status, again.String())
	assert.JSONEq(t, string(r.Body), string(again.Body), "the same answer after a restart")
	second.stop(t)

	db := testenv.OpenDB(t, dbURL)
	var events int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM events`).Scan(&events))
	assert.Equal(t, 1, events, "one registration in all")
	var secret []byte
	require.NoError(t, db.QueryRow(`SELECT secret FROM server_secrets WHERE name = 'idempotency-key'`).Scan(&secret))
	for _, p := range []*e2eProcess{first, second} {
		out := p.stdout.String() + p.stderr.String()
		for _, form := range []string{hex.EncodeToString(secret), base64.StdEncoding.EncodeToString(secret)} {
			assert.NotContains(t, out, form, "the secret is never logged")
		}
	}
}
