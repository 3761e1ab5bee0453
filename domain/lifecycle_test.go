package domain_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/domain"
)

var verifyKey = domain.VerificationKey(strings.Repeat("k", domain.MinVerificationKeyBytes))

// registered is a user loaded from its stream, as a command finds it.
func registered(t *testing.T) *domain.User {
	t.Helper()
	user, err := domain.NewUser(validID, validName, "Ada@Example.com", validPassword, "de", registeredAt)
	require.NoError(t, err)
	loaded, err := domain.UnmarshalUserFromEvents(user.PendingEvents())
	require.NoError(t, err)
	return loaded
}

func TestVerificationKey_Tokens(t *testing.T) {
	expires := registeredAt.Add(48 * time.Hour)
	token := verifyKey.Token(validID, "ada@example.com", expires)
	assert.Equal(t, token, verifyKey.Token(validID, "ada@example.com", expires), "the same link for the same email")
	raw, err := base64.RawURLEncoding.DecodeString(token)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(raw)-8, 16, "at least 128 bits that only the key makes")

	assert.NoError(t, verifyKey.Check(validID, "ada@example.com", token, expires.Add(-time.Second)))
	assert.ErrorIs(t, verifyKey.Check(validID, "ada@example.com", token, expires), domain.ErrTokenExpired)
	tampered := []byte(token)
	tampered[len(tampered)/2] ^= 1
	otherKey := domain.VerificationKey(strings.Repeat("x", domain.MinVerificationKeyBytes))
	for name, check := range map[string]error{
		"another user":    verifyKey.Check("0190f5c4-7b9e-7000-8000-000000000002", "ada@example.com", token, registeredAt),
		"another address": verifyKey.Check(validID, "bob@example.com", token, registeredAt),
		"another key":     otherKey.Check(validID, "ada@example.com", token, registeredAt),
		"tampered":        verifyKey.Check(validID, "ada@example.com", string(tampered), registeredAt),
		"truncated":       verifyKey.Check(validID, "ada@example.com", token[:len(token)-4], registeredAt),
		"padding bits":    verifyKey.Check(validID, "ada@example.com", token[:len(token)-1]+"B", registeredAt),
		"not base64":      verifyKey.Check(validID, "ada@example.com", "%%%", registeredAt),
		"empty":           verifyKey.Check(validID, "ada@example.com", "", registeredAt),
		"a short key":     domain.VerificationKey("short").Check(validID, "ada@example.com", token, registeredAt),
	} {
		assert.ErrorIs(t, check, domain.ErrInvalidToken, name)
	}
	// A later expiry cannot be forged onto a token.
	later := append([]byte{}, raw...)
	later[0]++
	assert.ErrorIs(t, verifyKey.Check(validID, "ada@example.com", base64.RawURLEncoding.EncodeToString(later), registeredAt),
		domain.ErrInvalidToken)
}

func TestUser_VerifyEmail(t *testing.T) {
	user := registered(t)
	token := verifyKey.Token(validID, "ada@example.com", registeredAt.Add(time.Hour))
	assert.ErrorIs(t, user.VerifyEmail(verifyKey, "nope", registeredAt), domain.ErrInvalidToken)
	assert.Empty(t, user.PendingEvents())

	require.NoError(t, user.VerifyEmail(verifyKey, token, registeredAt))
	assert.True(t, user.EmailVerified())
	assert.Equal(t, 2, user.Version())
	require.Len(t, user.PendingEvents(), 1)
	assert.Equal(t, domain.EmailVerified{UserID: validID, Email: "Ada@Example.com",
		VerifiedAt: registeredAt.UTC().Truncate(time.Microsecond)}, user.PendingEvents()[0])

	require.NoError(t, user.VerifyEmail(verifyKey, token, registeredAt), "the same link again")
	assert.Len(t, user.PendingEvents(), 1, "records nothing more")
	assert.ErrorIs(t, user.VerifyEmail(verifyKey, "nope", registeredAt), domain.ErrInvalidToken,
		"a wrong token stays wrong once verified")
}

func TestUser_RequestVerificationEmail(t *testing.T) {
	user := registered(t)
	stored := registeredAt.Truncate(time.Microsecond) // as the event keeps it
	err := user.RequestVerificationEmail(stored.Add(20 * time.Second))
	var de *domain.Error
	require.ErrorAs(t, err, &de)
	assert.Equal(t, domain.KindTooMany, de.Kind)
	assert.Equal(t, 40*time.Second, de.RetryAfter, "a minute after the welcome email's link")

	at := stored.Add(time.Minute)
	require.NoError(t, user.RequestVerificationEmail(at))
	assert.Equal(t, []domain.Event{domain.VerificationEmailRequested{UserID: validID, Email: "Ada@Example.com",
		EmailNumber: 1, Locale: "de", RequestedAt: at.UTC().Truncate(time.Microsecond)}}, user.PendingEvents())
	require.ErrorAs(t, user.RequestVerificationEmail(at.Add(59*time.Second)), &de)
	assert.Equal(t, time.Second, de.RetryAfter)

	token := verifyKey.Token(validID, "ada@example.com", at.Add(time.Hour))
	require.NoError(t, user.VerifyEmail(verifyKey, token, at))
	assert.ErrorIs(t, user.RequestVerificationEmail(at.Add(time.Hour)), domain.ErrAlreadyVerified)
}

func TestUser_ChangeEmail(t *testing.T) {
	user := registered(t)
	oldToken := verifyKey.Token(validID, "ada@example.com", registeredAt.Add(time.Hour))
	require.NoError(t, user.VerifyEmail(verifyKey, oldToken, registeredAt))

	assert.Equal(t, map[string]string{"email": "invalid-format"}, fieldErrors(t, user.ChangeEmail("nope", registeredAt)))
	assert.Equal(t, map[string]string{"email": "unchanged"}, fieldErrors(t, user.ChangeEmail("ADA@example.COM", registeredAt)))

	at := registeredAt.Add(time.Minute)
	require.NoError(t, user.ChangeEmail("lovelace@example.org", at))
	assert.Equal(t, "lovelace@example.org", user.Email().String())
	assert.False(t, user.EmailVerified(), "a new address starts unverified")
	assert.Equal(t, 3, user.Version())
	assert.Equal(t, domain.EmailChanged{UserID: validID, OldEmail: "Ada@Example.com", NewEmail: "lovelace@example.org",
		EmailNumber: 2, Locale: "de", ChangedAt: at.UTC().Truncate(time.Microsecond)}, user.PendingEvents()[1])
	assert.Equal(t, 2, user.EmailNumber())

	assert.ErrorIs(t, user.VerifyEmail(verifyKey, oldToken, at), domain.ErrInvalidToken, "an old address's link is void")
	var de *domain.Error
	require.ErrorAs(t, user.RequestVerificationEmail(at.Add(time.Second)), &de, "the change sent a link")
	assert.Equal(t, domain.KindTooMany, de.Kind)

	loaded, err := domain.UnmarshalUserFromEvents(append([]domain.Event{domain.UserRegistered{UserID: validID,
		Name: validName, Email: "Ada@Example.com", Locale: "de", RegisteredAt: registeredAt}}, user.PendingEvents()...))
	require.NoError(t, err)
	assert.Equal(t, 3, loaded.Version())
	assert.Equal(t, "lovelace@example.org", loaded.Email().String())
	assert.False(t, loaded.EmailVerified())
	assert.Equal(t, "de", loaded.Locale())
	assert.Equal(t, 2, loaded.EmailNumber(), "counted again from the stream")
}

func TestNewUser_Locale(t *testing.T) {
	user, err := domain.NewUser(validID, validName, validEmail, validPassword, "", registeredAt)
	require.NoError(t, err)
	assert.Equal(t, "en", user.Locale())
	_, err = domain.NewUser(validID, validName, validEmail, validPassword, "xx", registeredAt)
	assert.Equal(t, map[string]string{"locale": "unsupported"}, fieldErrors(t, err))
}
