package e2e_test

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/e2e"
)

func TestSecretsIn(t *testing.T) {
	hash := "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
	event := `{"user_id":"u1","password_hash":"` + hash + `"}`
	envelope := `{"destination_topic":"events.UserRegistered","payload":"` +
		base64.StdEncoding.EncodeToString([]byte(event)) + `","metadata":{}}`
	secrets := e2e.Secrets(e2e.User{Password: "correct-horse-42"})
	tests := []struct {
		name string
		text string
		want []string
	}{
		{name: "clean", text: `{"user_id":"u1","name":"Ada","email":"ada@example.com"}`, want: []string{}},
		{name: "plain hash", text: event, want: []string{"$2a$"}},
		{name: "$2b$ and $2y$", text: "x $2b$12$abc y $2y$10$abc", want: []string{"$2b$", "$2y$"}},
		{name: "base64 in an envelope", text: envelope, want: []string{"$2a$"}},
		{name: "envelope in a row", text: `(1,` + strings.ReplaceAll(envelope, `"`, `""`) + `)`, want: []string{"$2a$"}},
		{name: "envelope in base64", text: base64.StdEncoding.EncodeToString([]byte(envelope)), want: []string{"$2a$"}},
		{name: "bytea hex", text: `\x` + hex.EncodeToString([]byte(event)), want: []string{"$2a$"}},
		{name: "plain hex", text: `(1,` + hex.EncodeToString([]byte("x correct-horse-42")) + `)`, want: []string{"correct-horse-42"}},
		{name: "password", text: `{"password":"correct-horse-42"}`, want: []string{"correct-horse-42"}},
		{name: "password in base64", text: base64.RawURLEncoding.EncodeToString([]byte("pw=correct-horse-42")), want: []string{"correct-horse-42"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, e2e.SecretsIn(tt.text, secrets))
		})
	}
}

// The topology a test deletes covers every event's exchange and a queue
// per handler, named topic_handler.
func TestTopology(t *testing.T) {
	queues, exchanges := e2e.Topology("e2e-1")
	for _, name := range domain.Events.Names() {
		assert.Contains(t, exchanges, "e2e-1.events."+name)
	}
	assert.Subset(t, exchanges, []string{"e2e-1.commands.RegisterUser", "e2e-1.poison"})
	assert.Subset(t, queues, []string{
		"e2e-1.events.UserRegistered_SendWelcomeEmailOnUserRegistered",
		"e2e-1.events.UserRegistered_SeedSignupPointsOnUserRegistered",
		"e2e-1.events.VerificationEmailRequested_SendVerificationEmailOnVerificationEmailRequested",
		"e2e-1.events.EmailChanged_SendVerificationEmailOnEmailChanged",
		"e2e-1.events.EmailChanged_SendEmailChangedNoticeOnEmailChanged",
		"e2e-1.events.PasswordResetRequested_SendPasswordResetEmailOnPasswordResetRequested",
		"e2e-1.commands.RegisterUser_RegisterUserHandler",
		"e2e-1.poison",
	})
	assert.Len(t, queues, 8)
}

func TestNewNamespace(t *testing.T) {
	a, b := e2e.NewNamespace(), e2e.NewNamespace()
	assert.NotEqual(t, a, b)
	assert.NoError(t, transport.ValidateNamespace(a))
}
