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

// verifyTTL is VERIFY_TTL in these tests.
const verifyTTL = 48 * time.Hour

// ada is the subject of the tokens of the registered user's first address.
var ada = domain.TokenSubject{UserID: validID, EmailKey: "ada@example.com", EmailNumber: 1}

func TestVerificationKey_Tokens(t *testing.T) {
	expires := registeredAt.Add(verifyTTL)
	token := verifyKey.Token(ada, expires)
	assert.Equal(t, token, verifyKey.Token(ada, expires), "the same link for the same email")
	raw, err := base64.RawURLEncoding.DecodeString(token)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(raw)-8, 16, "at least 128 bits that only the key makes")

	assert.NoError(t, verifyKey.Check(ada, token, expires.Add(-time.Second), verifyTTL))
	assert.ErrorIs(t, verifyKey.Check(ada, token, expires, verifyTTL), domain.ErrTokenExpired)
	tampered := []byte(token)
	tampered[len(tampered)/2] ^= 1
	otherKey := domain.VerificationKey(strings.Repeat("x", domain.MinVerificationKeyBytes))
	with := func(change func(s *domain.TokenSubject)) domain.TokenSubject {
		s := ada
		change(&s)
		return s
	}
	for name, check := range map[string]error{
		"another user": verifyKey.Check(with(func(s *domain.TokenSubject) { s.UserID = "0190f5c4-7b9e-7000-8000-000000000002" }),
			token, registeredAt, verifyTTL),
		"another address": verifyKey.Check(with(func(s *domain.TokenSubject) { s.EmailKey = "bob@example.com" }),
			token, registeredAt, verifyTTL),
		"another number of the address": verifyKey.Check(with(func(s *domain.TokenSubject) { s.EmailNumber = 3 }),
			token, registeredAt, verifyTTL),
		"another key":  otherKey.Check(ada, token, registeredAt, verifyTTL),
		"tampered":     verifyKey.Check(ada, string(tampered), registeredAt, verifyTTL),
		"truncated":    verifyKey.Check(ada, token[:len(token)-4], registeredAt, verifyTTL),
		"padding bits": verifyKey.Check(ada, token[:len(token)-1]+"B", registeredAt, verifyTTL),
		"not base64":   verifyKey.Check(ada, "%%%", registeredAt, verifyTTL),
		"empty":        verifyKey.Check(ada, "", registeredAt, verifyTTL),
		"a short key":  domain.VerificationKey("short").Check(ada, token, registeredAt, verifyTTL),
		"no TTL":       verifyKey.Check(ada, token, registeredAt, 0),
	} {
		assert.ErrorIs(t, check, domain.ErrInvalidToken, name)
	}
	// A later expiry cannot be forged onto a token.
	later := append([]byte{}, raw...)
	later[0]++
	assert.ErrorIs(t, verifyKey.Check(ada, base64.RawURLEncoding.EncodeToString(later), registeredAt, verifyTTL),
		domain.ErrInvalidToken)
	// Number 0, which an event of the first schema version yields, is no
	// address's: its token never verifies, whatever signed it.
	unknown := with(func(s *domain.TokenSubject) { s.EmailNumber = 0 })
	assert.ErrorIs(t, verifyKey.Check(unknown, verifyKey.Token(unknown, expires), registeredAt, verifyTTL),
		domain.ErrInvalidToken)
}

// A token whose expiry lies further ahead than the TTL, and the clock skew
// allowed, is refused even when the key signed it: no link of the
// service's expires so late, so it was forged, or signed under a longer
// TTL than the one in force.
func TestVerificationKey_RefusesAnExpiryBeyondTheTTL(t *testing.T) {
	now := registeredAt
	for _, tt := range []struct {
		name    string
		expires time.Time
		want    error
	}{
		{"at the TTL", now.Add(verifyTTL), nil},
		{"within the clock skew", now.Add(verifyTTL + domain.MaxTokenClockSkew), nil},
		{"a second beyond", now.Add(verifyTTL + domain.MaxTokenClockSkew + time.Second), domain.ErrInvalidToken},
		{"in 10 years", now.AddDate(10, 0, 0), domain.ErrInvalidToken},
		{"at the end of time", time.Unix(1<<62, 0), domain.ErrInvalidToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := verifyKey.Check(ada, verifyKey.Token(ada, tt.expires), now, verifyTTL)
			if tt.want == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tt.want)
			}
		})
	}
}

func TestUser_VerifyEmail(t *testing.T) {
	user := registered(t)
	token := verifyKey.Token(ada, registeredAt.Add(time.Hour))
	assert.ErrorIs(t, user.VerifyEmail(verifyKey, verifyTTL, "nope", registeredAt), domain.ErrInvalidToken)
	assert.Empty(t, user.PendingEvents())

	require.NoError(t, user.VerifyEmail(verifyKey, verifyTTL, token, registeredAt))
	assert.True(t, user.EmailVerified())
	assert.Equal(t, 2, user.Version())
	require.Len(t, user.PendingEvents(), 1)
	assert.Equal(t, domain.EmailVerified{UserID: validID, Email: "Ada@Example.com",
		VerifiedAt: registeredAt.UTC().Truncate(time.Microsecond)}, user.PendingEvents()[0])

	require.NoError(t, user.VerifyEmail(verifyKey, verifyTTL, token, registeredAt), "the same link again")
	assert.Len(t, user.PendingEvents(), 1, "records nothing more")
	assert.ErrorIs(t, user.VerifyEmail(verifyKey, verifyTTL, "nope", registeredAt), domain.ErrInvalidToken,
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

	token := verifyKey.Token(ada, at.Add(time.Hour))
	require.NoError(t, user.VerifyEmail(verifyKey, verifyTTL, token, at))
	assert.ErrorIs(t, user.RequestVerificationEmail(at.Add(time.Hour)), domain.ErrAlreadyVerified)
}

func TestUser_ChangeEmail(t *testing.T) {
	user := registered(t)
	oldToken := verifyKey.Token(ada, registeredAt.Add(time.Hour))
	require.NoError(t, user.VerifyEmail(verifyKey, verifyTTL, oldToken, registeredAt))

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

	assert.ErrorIs(t, user.VerifyEmail(verifyKey, verifyTTL, oldToken, at), domain.ErrInvalidToken,
		"an old address's link is void")
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

// After a change of address A -> B -> A, no link of A's first spell
// verifies any more, nor one of B's; only a link of the current spell of A
// (its number 3) does. Each row follows a link after the changes.
func TestUser_AnAddressChangedBackVoidsItsOldLinks(t *testing.T) {
	user := registered(t)
	welcome := verifyKey.Token(ada, registeredAt.Add(verifyTTL))
	at := registeredAt.Add(time.Minute)
	require.NoError(t, user.ChangeEmail("bob@example.org", at))
	b := domain.TokenSubject{UserID: validID, EmailKey: "bob@example.org", EmailNumber: 2}
	bLink := verifyKey.Token(b, at.Add(verifyTTL))
	require.NoError(t, user.ChangeEmail("ADA@example.com", at.Add(time.Minute)))
	assert.Equal(t, 3, user.EmailNumber())
	assert.Equal(t, domain.TokenSubject{UserID: validID, EmailKey: "ada@example.com", EmailNumber: 3}, user.TokenSubject())

	// The stream as stored, and the user as a command loads it.
	loaded, err := domain.UnmarshalUserFromEvents(append([]domain.Event{domain.UserRegistered{UserID: validID,
		Name: validName, Email: "Ada@Example.com", Locale: "de", RegisteredAt: registeredAt}}, user.PendingEvents()...))
	require.NoError(t, err)
	now := at.Add(2 * time.Minute)
	for _, tt := range []struct { // the one that verifies last
		name  string
		token string
		want  error
	}{
		{"A's welcome link", welcome, domain.ErrInvalidToken},
		{"A's link of another request before the changes", verifyKey.Token(ada, registeredAt.Add(time.Hour)), domain.ErrInvalidToken},
		{"B's link", bLink, domain.ErrInvalidToken},
		{"the link of A's return", verifyKey.Token(loaded.TokenSubject(), at.Add(time.Minute+verifyTTL)), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := loaded.VerifyEmail(verifyKey, verifyTTL, tt.token, now)
			if tt.want == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tt.want)
			assert.False(t, loaded.EmailVerified())
		})
	}
}

func TestNewUser_Locale(t *testing.T) {
	user, err := domain.NewUser(validID, validName, validEmail, validPassword, "", registeredAt)
	require.NoError(t, err)
	assert.Equal(t, "en", user.Locale())
	_, err = domain.NewUser(validID, validName, validEmail, validPassword, "xx", registeredAt)
	assert.Equal(t, map[string]string{"locale": "unsupported"}, fieldErrors(t, err))
}
