package domain_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/domain"
)

var resetKey = domain.ResetKey(strings.Repeat("r", domain.MinVerificationKeyBytes))

func newResetUser(t *testing.T, now time.Time) *domain.User {
	t.Helper()
	u, err := domain.NewUser("0190f5c4-7b9e-7000-8000-000000000001", "Ada", "Ada@Example.com", "correct horse battery", "", now)
	require.NoError(t, err)
	return u
}

func TestResetPassword(t *testing.T) {
	now := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
	token := func(u *domain.User, number int, expires time.Time) string {
		return resetKey.Token(u.ID(), u.Email().Key(), u.EmailNumber(), number, expires)
	}
	for _, tt := range []struct {
		name    string
		prepare func(u *domain.User) string // returns the token to use
		wantErr error
	}{
		{"the newest link", func(u *domain.User) string {
			u.RequestPasswordReset(now)
			return token(u, 1, now.Add(domain.PasswordResetTTL))
		}, nil},
		{"no request", func(u *domain.User) string { return token(u, 1, now.Add(time.Hour)) }, domain.ErrInvalidResetToken},
		{"an older link", func(u *domain.User) string {
			u.RequestPasswordReset(now)
			u.RequestPasswordReset(now)
			return token(u, 1, now.Add(time.Hour))
		}, domain.ErrInvalidResetToken},
		{"expired", func(u *domain.User) string {
			u.RequestPasswordReset(now.Add(-2 * time.Hour))
			return token(u, 1, now.Add(-time.Hour))
		}, domain.ErrResetExpired},
		{"signed far ahead", func(u *domain.User) string {
			u.RequestPasswordReset(now)
			return token(u, 1, now.AddDate(10, 0, 0))
		}, domain.ErrInvalidResetToken},
		{"another key", func(u *domain.User) string {
			u.RequestPasswordReset(now)
			return domain.ResetKey(strings.Repeat("x", 32)).Token(u.ID(), u.Email().Key(), u.EmailNumber(), 1, now.Add(time.Hour))
		}, domain.ErrInvalidResetToken},
		{"the address changed since", func(u *domain.User) string {
			u.RequestPasswordReset(now)
			require.NoError(t, u.ChangeEmail("ada@example.org", now))
			return resetKey.Token(u.ID(), "ada@example.com", 1, 1, now.Add(time.Hour))
		}, domain.ErrInvalidResetToken},
		{"the address changed away and back", func(u *domain.User) string {
			u.RequestPasswordReset(now)
			old := token(u, 1, now.Add(time.Hour))
			require.NoError(t, u.ChangeEmail("ada@example.org", now))
			require.NoError(t, u.ChangeEmail("ada@example.com", now))
			return old
		}, domain.ErrInvalidResetToken},
		{"used", func(u *domain.User) string {
			u.RequestPasswordReset(now)
			used := token(u, 1, now.Add(time.Hour))
			require.NoError(t, u.ResetPassword(resetKey, used, now))
			return used
		}, domain.ErrInvalidResetToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := newResetUser(t, now.Add(-time.Hour))
			tok := tt.prepare(u)
			err := u.ResetPassword(resetKey, tok, now)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			pending := u.PendingEvents()
			assert.IsType(t, domain.PasswordChanged{}, pending[len(pending)-2])
			assert.IsType(t, domain.EmailVerified{}, pending[len(pending)-1], "the link was read at the address")
			assert.True(t, u.EmailVerified())
		})
	}
}
