package ports_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/ports"
)

// overloadedHasher never gets a turn to hash.
type overloadedHasher struct{}

func (overloadedHasher) Hash(context.Context, string) ([]byte, error) {
	return nil, command.ErrOverloaded
}

func (overloadedHasher) Matches(context.Context, []byte, string) (bool, error) {
	return false, command.ErrOverloaded
}

func TestRegisterUser_OverloadedAnswers503RetryAfter(t *testing.T) {
	application := app.Application{Commands: app.Commands{
		RegisterUser: command.NewRegisterUserHandler(nil, overloadedHasher{}, nil),
	}}
	handler := ports.NewHandler(application, func(context.Context) error { return nil }, slog.New(slog.DiscardHandler))

	req := httptest.NewRequest(http.MethodPost, "/users",
		strings.NewReader(`{"name":"Ada Lovelace","email":"ada@example.com","password":"correct horse battery"}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)

	require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
	assert.Equal(t, "1", rec.Header().Get("Retry-After"))
	assert.JSONEq(t, `{"error":{"code":"overloaded","message":"too many registrations at once, try again shortly"}}`, rec.Body.String())
}
