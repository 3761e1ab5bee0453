package ports_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/adapters/hasher"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/api"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/app/query"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/apitest"
	"github.com/onboard/onboard/internal/telemetry"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testfake"
	"github.com/onboard/onboard/ports"
)

// Every route the handler serves, /metrics included, is an operation of
// the contract, and every operation of the contract a route.
func TestContract_RoutesAreItsOperations(t *testing.T) {
	handler, err := ports.NewHandler(app.Application{}, ports.HTTPConfig{
		Ready: func(context.Context) error { return nil }, IdempotencySecret: bytes.Repeat([]byte{7}, 32),
		MetricsHandler: promhttp.HandlerFor(prometheus.NewRegistry(), promhttp.HandlerOpts{}),
	})
	require.NoError(t, err)
	contract, err := apitest.Load()
	require.NoError(t, err)
	routes := routesOf(handler)
	require.Contains(t, routes, "GET /metrics")

	for _, route := range routes {
		assert.Contains(t, contract.Operations(), route, "a route the contract does not document")
	}
	for _, op := range contract.Operations() {
		assert.Contains(t, routes, op, "an operation of the contract no route serves")
	}
}

// routesOf lists the routes of a handler of NewHandler as the contract
// names operations: "GET /users/{id}".
func routesOf(handler http.Handler) []string {
	var routes []string
	for _, r := range ports.Routes(handler) {
		parts := strings.Split(r.Path, "/")
		for i, part := range parts {
			if name, ok := strings.CutPrefix(part, ":"); ok {
				parts[i] = "{" + name + "}"
			}
		}
		routes = append(routes, r.Method+" "+strings.Join(parts, "/"))
	}
	slices.Sort(routes)
	return routes
}

const contractAdminToken = "contract-admin-token-0123456789"

// contractAPI is the API over the real users' commands and queries on
// SQLite, at the time of a settable clock, with its metrics; every
// exchange is checked against the contract.
type contractAPI struct {
	validator *apitest.Validator
	handler   http.Handler
	clock     *testfake.Clock
	key       domain.VerificationKey
	resetKey  domain.ResetKey
	ledger    adapters.PointsLedger
}

func newContractAPI(t *testing.T) *contractAPI {
	t.Helper()
	db := testenv.MigratedDB(t, testenv.Backend{Name: "sqlite", URL: testenv.SQLiteDatabase})
	outbox, err := watermillsql.NewSQLSubscriber(db.DB, "forwarder", watermill.NopLogger{})
	require.NoError(t, err)
	require.NoError(t, outbox.SubscribeInitialize(transport.OutboxTopic))
	require.NoError(t, outbox.Close())
	users := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
	_, err = users.ReadModel().Prepare(testenv.Context(t))
	require.NoError(t, err)
	hasher, err := hasher.New(hasher.Config{Cost: bcrypt.MinCost})
	require.NoError(t, err)
	guesses, err := adapters.NewPasswordGuesses(adapters.PasswordGuessesConfig{DB: db.DB, Key: bytes.Repeat([]byte{9}, 32)})
	require.NoError(t, err)
	sessions, err := adapters.NewSessionStore(adapters.SessionStoreConfig{DB: db.DB})
	require.NoError(t, err)
	signIn, err := command.NewSignInHandler(context.Background(), users, sessions, hasher, guesses)
	require.NoError(t, err)
	a := &contractAPI{
		validator: apitest.New(t),
		clock:     testfake.NewClock(),
		key:       domain.VerificationKey(strings.Repeat("k", domain.MinVerificationKeyBytes)),
		resetKey:  domain.ResetKey(strings.Repeat("r", domain.MinVerificationKeyBytes)),
		ledger:    adapters.NewPointsLedger(db.DB),
	}
	application := app.Application{
		Commands: app.Commands{
			RegisterUser:             command.NewRegisterUserHandler(users, hasher, nil, nil, a.clock.Now).WithSessions(sessions),
			VerifyEmail:              command.NewVerifyEmailHandler(users, a.key, contractVerifyTTL, a.clock.Now),
			RequestVerificationEmail: command.NewRequestVerificationEmailHandler(users, nil, a.clock.Now),
			ChangeEmail:              command.NewChangeEmailHandler(command.ChangeEmailDeps{Users: users, Hasher: hasher, Guesses: guesses, Now: a.clock.Now}),
			SignIn:                   signIn,
			SignOut:                  command.NewSignOutHandler(sessions),
			RequestPasswordReset:     command.NewRequestPasswordResetHandler(users, users, nil, a.clock.Now),
			ResetPassword:            command.NewResetPasswordHandler(users, hasher, a.resetKey, a.clock.Now),
			EraseUser:                command.NewEraseUserHandler(users, hasher, guesses, a.clock.Now),
		},
		Queries: app.Queries{
			UserByID:      query.NewUserByIDHandler(users.ReadModel()),
			UserByEmail:   query.NewUserByEmailHandler(users.ReadModel()),
			PointsBalance: query.NewPointsBalanceHandler(users.ReadModel(), a.ledger),
			SessionUser:   query.NewSessionUserHandler(sessions),
			ExportUser:    query.NewExportUserHandler(users.ReadModel(), users, a.ledger),
		},
	}
	metrics, err := telemetry.NewMetrics()
	require.NoError(t, err)
	handler, err := ports.NewHandler(application, ports.HTTPConfig{
		Ready: func(context.Context) error { return nil }, IdempotencySecret: bytes.Repeat([]byte{7}, 32),
		AdminToken: contractAdminToken, Observe: []gin.HandlerFunc{metrics.HTTPRequests()},
		MetricsHandler: metrics.Handler(slog.New(slog.DiscardHandler)),
	})
	require.NoError(t, err)
	a.handler = a.validator.Handler(handler)
	return a
}

// do sends a request; a body that starts with { is JSON.
func (a *contractAPI) do(method, target, body string, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if strings.HasPrefix(body, "{") {
		req.Header.Set("Content-Type", "application/json")
	}
	for name, value := range header {
		req.Header.Set(name, value)
	}
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	return rec
}

// register registers a user and returns its id and the Authorization
// header of its session.
func (a *contractAPI) register(t *testing.T, email string) (string, map[string]string) {
	t.Helper()
	rec := a.do(http.MethodPost, "/users", `{"name":"Ada Lovelace","email":"`+email+`","password":"correct horse battery"}`, nil)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	return registered(t, rec)
}

// registered reads the id and the session of a 201 to POST /users.
func registered(t *testing.T, rec *httptest.ResponseRecorder) (string, map[string]string) {
	t.Helper()
	var user struct {
		ID      string
		Session struct{ Token string }
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &user))
	require.NotEmpty(t, user.Session.Token)
	return user.ID, bearer(user.Session.Token)
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

// contractVerifyTTL is VERIFY_TTL of the contract's API.
const contractVerifyTTL = 48 * time.Hour

// token is the token of a verification link of the user's address (their
// first) that expires after ttl.
func (a *contractAPI) token(id, email string, ttl time.Duration) string {
	subject := domain.TokenSubject{UserID: id, EmailKey: domain.EmailKey(email), EmailNumber: domain.FirstEmailNumber}
	return a.key.Token(subject, a.clock.Now().Add(ttl))
}

// TestContract_EveryOperation drives every operation the handler serves,
// through the answers a client meets most, against the contract; then
// checks that none was left out.
func TestContract_EveryOperation(t *testing.T) {
	a := newContractAPI(t)
	t.Run("users", a.tourUsers)
	t.Run("verification", a.tourVerification)
	t.Run("pages", a.tourPages)
	t.Run("password resets", a.tourPasswordResets)
	t.Run("erasure", a.tourErasure)
	t.Run("operations", a.tourOperations)
	assert.Empty(t, a.validator.Unreached(), "every operation was exercised")
}

func (a *contractAPI) tourUsers(t *testing.T) {
	body := `{"name":"Ada Lovelace","email":"Ada@Example.com","password":"correct horse battery","locale":"de"}`
	key := map[string]string{"Idempotency-Key": "contract-ada"}
	first := a.do(http.MethodPost, "/users", body, key)
	require.Equal(t, http.StatusCreated, first.Code, first.Body.String())
	again := a.do(http.MethodPost, "/users", body, key)
	require.Equal(t, http.StatusCreated, again.Code, again.Body.String())
	user := first.Header().Get("Location")
	adaID, session := registered(t, first)
	require.Equal(t, "/users/"+adaID, user)
	_, againSession := registered(t, again)
	assert.NotEqual(t, session, againSession, "a repeat proves the password too: a session of its own")

	for _, method := range []string{http.MethodGet, http.MethodHead} {
		assert.Equal(t, http.StatusOK, a.do(method, user, "", session).Code)
		assert.Equal(t, http.StatusOK, a.do(method, user+"/points", "", session).Code)
		assert.Equal(t, http.StatusUnauthorized, a.do(method, user, "", nil).Code)
		assert.Equal(t, http.StatusUnauthorized, a.do(method, user+"/points", "", nil).Code)
	}
	require.NoError(t, a.ledger.Grant(testenv.Context(t), adaID,
		domain.PointsEntry{Amount: 100, Reason: domain.ReasonSignup, GrantedAt: a.clock.Now()}))
	points := a.do(http.MethodGet, user+"/points", "", session)
	assert.Equal(t, http.StatusOK, points.Code)
	assert.Contains(t, points.Body.String(), `"balance":100`)
	assert.Equal(t, http.StatusNotFound, a.do(http.MethodGet, "/users/0190f5c4-7b9e-7000-8000-000000000001", "", session).Code,
		"another user's id is not found")
	assert.Equal(t, http.StatusUnauthorized, a.do(http.MethodGet, user, "", bearer("forged")).Code)

	signIn := func(email, password string) *httptest.ResponseRecorder {
		return a.do(http.MethodPost, "/sessions", `{"email":"`+email+`","password":"`+password+`"}`, nil)
	}
	assert.Equal(t, http.StatusUnauthorized, signIn("ada@example.com", "wrong password 123").Code)
	assert.Equal(t, http.StatusUnauthorized, signIn("nobody@example.com", "wrong password 123").Code)
	assert.Equal(t, http.StatusUnprocessableEntity, a.do(http.MethodPost, "/sessions", `{"email":"ada@example.com"}`, nil).Code)
	signedIn := signIn("ADA@example.com", "correct horse battery")
	require.Equal(t, http.StatusCreated, signedIn.Code, signedIn.Body.String())
	var second struct{ Token string }
	require.NoError(t, json.Unmarshal(signedIn.Body.Bytes(), &second))
	assert.Equal(t, http.StatusOK, a.do(http.MethodGet, user, "", map[string]string{"Authorization": "bearer " + second.Token}).Code,
		"the scheme in any letter case")
	assert.Equal(t, http.StatusNoContent, a.do(http.MethodDelete, "/sessions/current", "", bearer(second.Token)).Code)
	assert.Equal(t, http.StatusUnauthorized, a.do(http.MethodGet, user, "", bearer(second.Token)).Code, "signed out")
	assert.Equal(t, http.StatusUnauthorized, a.do(http.MethodDelete, "/sessions/current", "", nil).Code)

	admin := map[string]string{"Authorization": "Bearer " + contractAdminToken}
	assert.Equal(t, http.StatusOK, a.do(http.MethodGet, user, "", admin).Code, "operators read any user")
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		assert.Equal(t, http.StatusOK, a.do(method, "/users?email=ADA@example.com", "", admin).Code)
	}
	assert.Equal(t, http.StatusNotFound, a.do(http.MethodGet, "/users?email=nobody@example.com", "", admin).Code)
	assert.Equal(t, http.StatusUnauthorized, a.do(http.MethodGet, "/users?email=ada@example.com", "", nil).Code)

	change := func(ifMatch, email, password string) *httptest.ResponseRecorder {
		return a.do(http.MethodPut, user+"/email", `{"email":"`+email+`","password":"`+password+`"}`,
			map[string]string{"If-Match": ifMatch, "Authorization": session["Authorization"]})
	}
	assert.Equal(t, http.StatusUnauthorized, a.do(http.MethodPut, user+"/email",
		`{"email":"lovelace@example.org","password":"correct horse battery"}`, map[string]string{"If-Match": `"1"`}).Code)
	assert.Equal(t, http.StatusForbidden, change(`"1"`, "lovelace@example.org", "wrong password 123").Code)
	assert.Equal(t, http.StatusPreconditionFailed, change(`"7"`, "lovelace@example.org", "correct horse battery").Code)
	assert.Equal(t, http.StatusUnprocessableEntity, change(`"1"`, "ada@example.com", "correct horse battery").Code)
	changed := change(`"1"`, "lovelace@example.org", "correct horse battery")
	require.Equal(t, http.StatusOK, changed.Code, changed.Body.String())
	assert.Equal(t, `"2"`, changed.Header().Get("ETag"))
	anyVersion := change(`*`, "ada.lovelace@example.org", "correct horse battery")
	require.Equal(t, http.StatusOK, anyVersion.Code, anyVersion.Body.String())
	assert.Equal(t, `"3"`, anyVersion.Header().Get("ETag"))
	assert.Equal(t, http.StatusUnauthorized, a.do(http.MethodGet, user, "", againSession).Code,
		"a change of address ends every other session")
}

func (a *contractAPI) tourVerification(t *testing.T) {
	id, session := a.register(t, "grace@example.com")
	verify := "/users/" + id + "/email-verification"

	expired := a.do(http.MethodPost, verify, `{"token":"`+a.token(id, "grace@example.com", -time.Second)+`"}`, nil)
	assert.Equal(t, http.StatusGone, expired.Code, expired.Body.String())
	assert.Equal(t, http.StatusUnprocessableEntity, a.do(http.MethodPost, verify, `{"token":"nope"}`, nil).Code)
	assert.Equal(t, http.StatusUnprocessableEntity, a.do(http.MethodPost, verify, `{}`, nil).Code)

	assert.Equal(t, http.StatusUnauthorized, a.do(http.MethodPost, verify+"/resend", "", nil).Code)
	tooSoon := a.do(http.MethodPost, verify+"/resend", "", session)
	assert.Equal(t, http.StatusTooManyRequests, tooSoon.Code, tooSoon.Body.String())
	a.clock.Advance(domain.VerificationEmailInterval + time.Second)
	resent := a.do(http.MethodPost, verify+"/resend", "", session)
	require.Equal(t, http.StatusAccepted, resent.Code, resent.Body.String())
	assert.Equal(t, `"2"`, resent.Header().Get("ETag"))

	verified := a.do(http.MethodPost, verify, `{"token":"`+a.token(id, "grace@example.com", time.Hour)+`"}`, nil)
	require.Equal(t, http.StatusOK, verified.Code, verified.Body.String())
	assert.Contains(t, verified.Body.String(), `"email_verified":true`)
	assert.Equal(t, http.StatusConflict, a.do(http.MethodPost, verify+"/resend", "", session).Code)
}

func (a *contractAPI) tourPages(t *testing.T) {
	id, _ := a.register(t, "barbara@example.com")
	link := "/verify-email?" + url.Values{"user": {id}, "token": {a.token(id, "barbara@example.com", time.Hour)}}.Encode()
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		page := a.do(method, link, "", nil)
		assert.Equal(t, http.StatusOK, page.Code)
		assert.Contains(t, page.Header().Get("Content-Type"), "text/html")
	}

	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	post := func(token string) int {
		return a.do(http.MethodPost, "/verify-email", url.Values{"user": {id}, "token": {token}}.Encode(), form).Code
	}
	assert.Equal(t, http.StatusUnprocessableEntity, post("nope"))
	assert.Equal(t, http.StatusGone, post(a.token(id, "barbara@example.com", -time.Second)))
	assert.Equal(t, http.StatusOK, post(a.token(id, "barbara@example.com", time.Hour)))
}

// resetToken is the token of the link of the user's numberth reset
// request, made now, to its first address.
func (a *contractAPI) resetToken(id, email string, number int) string {
	return a.resetKey.Token(id, domain.EmailKey(email), domain.FirstEmailNumber, number,
		a.clock.Now().Truncate(time.Microsecond).Add(domain.PasswordResetTTL))
}

func (a *contractAPI) tourPasswordResets(t *testing.T) {
	id, session := a.register(t, "hedy@example.com")
	request := func(email string) int {
		return a.do(http.MethodPost, "/password-resets", `{"email":"`+email+`"}`, nil).Code
	}
	assert.Equal(t, http.StatusAccepted, request("nobody@example.com"), "the same answer for an unknown address")
	assert.Equal(t, http.StatusUnprocessableEntity, a.do(http.MethodPost, "/password-resets", `{}`, nil).Code)
	require.Equal(t, http.StatusAccepted, request("Hedy@Example.com"))
	confirm := func(token, password string) *httptest.ResponseRecorder {
		return a.do(http.MethodPost, "/password-resets/confirm",
			`{"user":"`+id+`","token":"`+token+`","password":"`+password+`"}`, nil)
	}
	first := a.resetToken(id, "hedy@example.com", 1)
	assert.Equal(t, http.StatusUnprocessableEntity, confirm(first, "short").Code, "the password's rules")
	assert.Equal(t, http.StatusUnprocessableEntity, confirm(first[:len(first)-2]+"xx", "frequency hopping spread").Code)
	require.Equal(t, http.StatusNoContent, confirm(first, "frequency hopping spread").Code)
	assert.Equal(t, http.StatusUnprocessableEntity, confirm(first, "another frequency hopping").Code, "a link works once")
	assert.Equal(t, http.StatusUnauthorized, a.do(http.MethodGet, "/users/"+id, "", session).Code, "every session ended")

	require.Equal(t, http.StatusAccepted, request("hedy@example.com"))
	second := a.resetToken(id, "hedy@example.com", 2)
	link := "/reset-password?" + url.Values{"user": {id}, "token": {second}}.Encode()
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		page := a.do(method, link, "", nil)
		assert.Equal(t, http.StatusOK, page.Code)
		assert.Contains(t, page.Header().Get("Content-Type"), "text/html")
	}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	post := func(token, password string) *httptest.ResponseRecorder {
		return a.do(http.MethodPost, "/reset-password", url.Values{"user": {id}, "token": {token}, "password": {password}}.Encode(), form)
	}
	weak := post(second, "password")
	assert.Equal(t, http.StatusUnprocessableEntity, weak.Code)
	assert.Contains(t, weak.Body.String(), "too easy to guess", "the form again, saying why")
	assert.Equal(t, http.StatusOK, post(second, "spread spectrum torpedo").Code)
	assert.Equal(t, http.StatusUnprocessableEntity, post(second, "spread spectrum torpedo 2").Code)

	require.Equal(t, http.StatusAccepted, request("hedy@example.com"))
	third := a.resetToken(id, "hedy@example.com", 3)
	a.clock.Advance(domain.PasswordResetTTL)
	assert.Equal(t, http.StatusGone, confirm(third, "frequency hopping spread").Code)
	assert.Equal(t, http.StatusGone, post(third, "frequency hopping spread").Code)
}

func (a *contractAPI) tourOperations(t *testing.T) {
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		assert.Equal(t, http.StatusOK, a.do(method, "/healthz", "", nil).Code)
		assert.Equal(t, http.StatusOK, a.do(method, "/readyz", "", nil).Code)
		contract := a.do(method, "/openapi.yaml", "", nil)
		assert.Equal(t, http.StatusOK, contract.Code)
		assert.Equal(t, ports.OpenAPIContentType, contract.Header().Get("Content-Type"))
		if method == http.MethodGet {
			assert.Equal(t, api.OpenAPI(), contract.Body.String(), "the embedded contract, as it is")
		}
		assert.Equal(t, http.StatusOK, a.do(method, "/metrics", "", nil).Code)
	}
}

// The answers of failures are the contract's too: a panic, a dependency
// down, a path or a method no route takes, /metrics served elsewhere.
func TestContract_Failures(t *testing.T) {
	// newTestHandler's application has no queries: reading a user panics.
	handler, _ := newTestHandler(t, ports.HTTPConfig{})
	rec := httptest.NewRecorder()
	read := httptest.NewRequest(http.MethodGet, "/users/0190f5c4-7b9e-7000-8000-000000000001", nil)
	read.Header.Set("Authorization", "Bearer some-token")
	handler.ServeHTTP(rec, read)
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.JSONEq(t, `{"error":{"code":"internal","message":"internal error"}}`, rec.Body.String())

	down, err := ports.NewHandler(app.Application{}, ports.HTTPConfig{
		Ready: func(context.Context) error { return errors.New("the database is down") }, IdempotencySecret: bytes.Repeat([]byte{7}, 32),
	})
	require.NoError(t, err)
	down = apitest.New(t).Handler(down)
	for _, tt := range []struct {
		method, target string
		status         int
	}{
		{http.MethodGet, "/readyz", http.StatusServiceUnavailable},
		{http.MethodGet, "/nowhere", http.StatusNotFound},
		{http.MethodDelete, "/healthz", http.StatusMethodNotAllowed},
		{http.MethodGet, "/metrics", http.StatusNotFound}, // no MetricsHandler: METRICS_ADDR serves them
	} {
		rec := httptest.NewRecorder()
		down.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.target, nil))
		assert.Equal(t, tt.status, rec.Code, "%s %s: %s", tt.method, tt.target, rec.Body.String())
	}
}

// GET /metrics is written as the Prometheus client serves it alone, as on
// METRICS_ADDR's listener (the service's Metrics.Handler): without the
// API's headers.
func TestContract_MetricsAsPrometheusServesThem(t *testing.T) {
	metrics, err := telemetry.NewMetrics()
	require.NoError(t, err)
	requests := prometheus.NewCounter(prometheus.CounterOpts{Name: "onboard_contract_test_total", Help: "A counter."})
	require.NoError(t, metrics.Register(requests))
	requests.Inc()
	validator := apitest.New(t)
	handler := validator.Handler(metrics.Handler(slog.New(slog.DiscardHandler)))

	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.True(t, strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain; version=0.0.4"), rec.Header())
	assert.Contains(t, rec.Body.String(), "onboard_contract_test_total 1")
	assert.NotContains(t, validator.Unreached(), "GET /metrics")
}

// tourErasure exports a user, then erases it: by its session with its
// password, refused without either; then the operator finds it gone.
func (a *contractAPI) tourErasure(t *testing.T) {
	id, auth := a.register(t, "hopper@example.com")
	admin := bearer(contractAdminToken)

	rec := a.do(http.MethodGet, "/users/"+id+"/export", "", auth)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var export struct {
		User   struct{ Name, Email string }
		Events []struct {
			Type string
			Data map[string]any
		}
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &export))
	assert.Equal(t, "Ada Lovelace", export.User.Name)
	require.Len(t, export.Events, 1)
	assert.Equal(t, "UserRegistered", export.Events[0].Type)
	assert.Equal(t, "hopper@example.com", export.Events[0].Data["email"], "the event's address, decrypted")
	assert.Equal(t, http.StatusOK, a.do(http.MethodHead, "/users/"+id+"/export", "", admin).Code)

	other, _ := a.register(t, "erased.other@example.com")
	for _, tt := range []struct {
		name, target, body string
		header             map[string]string
		want               int
	}{
		{"no credential", "/users/" + id, `{"password":"correct horse battery"}`, nil, http.StatusUnauthorized},
		{"another user's id", "/users/" + other, `{"password":"correct horse battery"}`, auth, http.StatusNotFound},
		{"no password", "/users/" + id, `{}`, auth, http.StatusUnprocessableEntity},
		{"wrong password", "/users/" + id, `{"password":"wrong horse battery"}`, auth, http.StatusForbidden},
		{"unknown id, by the operator", "/users/" + uuid.NewString(), "", admin, http.StatusNotFound},
		{"the user, with its password", "/users/" + id, `{"password":"correct horse battery"}`, auth, http.StatusNoContent},
		{"again, by the operator", "/users/" + id, "", admin, http.StatusGone},
		{"the other, by the operator", "/users/" + other, "", admin, http.StatusNoContent},
	} {
		rec := a.do(http.MethodDelete, tt.target, tt.body, tt.header)
		assert.Equal(t, tt.want, rec.Code, "%s: %s", tt.name, rec.Body.String())
	}
	for _, target := range []string{"/users/" + id, "/users/" + id + "/export", "/users/" + id + "/points"} {
		rec := a.do(http.MethodGet, target, "", admin)
		assert.Equal(t, http.StatusGone, rec.Code, target)
		assert.Contains(t, rec.Body.String(), `"user-erased"`, target)
	}
	assert.Equal(t, http.StatusUnauthorized, a.do(http.MethodGet, "/users/"+id, "", auth).Code,
		"the erasure ended the user's sessions")
	rec = a.do(http.MethodPost, "/users", `{"name":"Grace","email":"hopper@example.com","password":"correct horse battery"}`, nil)
	require.Equal(t, http.StatusCreated, rec.Code, "the address is free again: %s", rec.Body.String())
	again, _ := registered(t, rec)
	assert.NotEqual(t, id, again, "a new user")
}
