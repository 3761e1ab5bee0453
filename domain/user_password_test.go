package domain_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/domain"
)

// strong64 is a 64-character password that zxcvbn rates strong.
const strong64 = "Xk9#mQ2$vL7!pR4@nW6^jT8&hY3*fB5%dG1(sZ0)cV2-bN4+xM6=qA8~wE1?uI3<"

func TestValidatePassword(t *testing.T) {
	tests := []struct {
		name     string
		password string
		wantSlug string // "" when valid
	}{
		{name: "empty", password: "", wantSlug: "required"},
		{name: "passphrase", password: "correct horse battery staple"},
		{name: "a passphrase in Unicode", password: "Ünïcödé-pässwörd"},
		// Lengths count characters: 8 to 64, and at most 72 bytes (bcrypt).
		{name: "1 character", password: "a", wantSlug: "too-short"},
		{name: "7 characters", password: "Xk9#mQ2", wantSlug: "too-short"},
		{name: "8 characters", password: "Tr0u#4d&"},
		{name: "7 two-byte characters are 14 bytes", password: "éàüöñçø", wantSlug: "too-short"},
		{name: "2 emoji are 8 bytes", password: "🦊🐙", wantSlug: "too-short"},
		{name: "4 emoji are 16 bytes", password: "🦊🐙🌵🎻", wantSlug: "too-short"},
		{name: "8 emoji", password: "🦊🐙🌵🎻🚲🧭🍋🦉"},
		{name: "64 characters", password: strong64},
		{name: "65 characters", password: strong64 + "x", wantSlug: "too-long"},
		{name: "64 characters, 8 of two bytes, are 72 bytes", password: "éàüöñçøß" + strong64[8:]},
		{name: "60 characters, 13 of two bytes, are 73 bytes", password: "éàüöñçøßéàüöñ" + strong64[13:60], wantSlug: "too-long"},
		{name: "24 three-byte characters are 72 bytes", password: "我的密码是一个很长的句子但是不常见的对吧好吗真的"},
		{name: "25 three-byte characters are 75 bytes", password: "我的密码是一个很长的句子但是不常见的对吧好吗真的呀", wantSlug: "too-long"},
		{name: "18 emoji are 72 bytes", password: "🦊🐙🌵🎻🚲🧭🍋🪁🦉🌋🎲🧩🛶🍄🪐🐝🥨🔭"},
		{name: "19 emoji are 76 bytes", password: "🦊🐙🌵🎻🚲🧭🍋🪁🦉🌋🎲🧩🛶🍄🪐🐝🥨🔭🎈", wantSlug: "too-long"},
		{name: "1000 bytes", password: strings.Repeat(strong64, 16)[:1000], wantSlug: "too-long"},
		// Characters that are not typed text.
		{name: "replacement character (a lone surrogate)", password: "correct horse � battery", wantSlug: "invalid-characters"},
		{name: "invalid UTF-8", password: "correct horse \xff battery", wantSlug: "invalid-characters"},
		{name: "NUL", password: "correct horse\x00battery", wantSlug: "invalid-characters"},
		{name: "tab", password: "correct\thorse battery", wantSlug: "invalid-characters"},
		{name: "line feed", password: "correct horse battery\n", wantSlug: "invalid-characters"},
		{name: "DEL", password: "correct horse\x7fbattery", wantSlug: "invalid-characters"},
		{name: "C1 control (U+0085)", password: "correct horse\u0085battery", wantSlug: "invalid-characters"},
		{name: "spaces inside are fine", password: "correct   horse   battery"},
		// Common or easily guessed (zxcvbn score below 3).
		{name: "8 digits", password: "12345678", wantSlug: "too-weak"},
		{name: "8 spaces", password: "        ", wantSlug: "too-weak"},
		{name: "one letter 64 times", password: strings.Repeat("p", 64), wantSlug: "too-weak"},
		{name: "one two-byte letter 36 times", password: strings.Repeat("é", 36), wantSlug: "too-weak"},
		{name: "one emoji 18 times", password: strings.Repeat("🔑", 18), wantSlug: "too-weak"},
		{name: "common password", password: "password", wantSlug: "too-weak"},
		{name: "common password with a digit and a symbol", password: "Password1!", wantSlug: "too-weak"},
		{name: "keyboard walk", password: "qwertyuiopasdfgh", wantSlug: "too-weak"},
		{name: "the user's name and a year", password: "ada lovelace 1815", wantSlug: "too-weak"},
		{name: "the user's name run together and a year", password: "adalovelace1815", wantSlug: "too-weak"},
		{name: "the user's email", password: "ada@example.com", wantSlug: "too-weak"},
		// Beyond 16 characters zxcvbn's cost soars: it scores the first 16,
		// or the unit that the password repeats.
		{name: "a weak unit repeated past 16 characters", password: "Password1!Password1!Password1!Password1!", wantSlug: "too-weak"},
		{name: "a weak unit repeated, the last copy cut", password: "summer2024summer2024summer20", wantSlug: "too-weak"},
		{name: "a weak start, whatever follows", password: "passwordpassword" + strong64[:20], wantSlug: "too-weak"},
		{name: "64 characters of l33t symbols", password: "1|7!4@8(<369+5$%2{[01|7!4@8(<369+5$%2{[01|7!4@8(<369+5$%2{[01|7!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := domain.ValidatePassword(tt.password, validName, validEmail)
			user, newErr := domain.NewUser(validID, validName, validEmail, tt.password, "", registeredAt)
			if tt.wantSlug == "" {
				assert.NoError(t, err)
				require.NoError(t, newErr)
				assert.NotNil(t, user)
				return
			}
			assert.Equal(t, map[string]string{"password": tt.wantSlug}, fieldErrors(t, err))
			assert.Equal(t, map[string]string{"password": tt.wantSlug}, fieldErrors(t, newErr))
			assert.Nil(t, user, "a password over the limit is rejected, never truncated")
		})
	}
}

func TestValidatePassword_NameAndEmailAreGuesses(t *testing.T) {
	for _, password := range []string{"QuarnbyZyxwoth", "zyxwothquarnby", "zyxwoth1815", "zqzyxwoth"} {
		require.NoError(t, domain.ValidatePassword(password, "Ada Lovelace", "ada@example.com"), password)
		err := domain.ValidatePassword(password, "Zyxwoth Quarnby", "zq@example.com")
		assert.Equal(t, map[string]string{"password": "too-weak"}, fieldErrors(t, err), password)
	}
}

func TestPasswordLimitMatchesBcrypt(t *testing.T) {
	assert.Equal(t, 8, domain.MinPasswordRunes)
	assert.Equal(t, 64, domain.MaxPasswordRunes)
	assert.Equal(t, 72, domain.MaxPasswordBytes, "bcrypt reads 72 bytes at most")
}

// BenchmarkValidatePassword: zxcvbn must cost little beside a bcrypt hash
// (about 75 ms at cost 10), whatever the password.
func BenchmarkValidatePassword(b *testing.B) {
	for name, password := range map[string]string{
		"passphrase":            "correct horse battery staple",
		"64 random characters":  strong64,
		"64 l33t symbols":       "1|7!4@8(<369+5$%2{[01|7!4@8(<369+5$%2{[01|7!4@8(<369+5$%2{[01|7!",
		"18 emoji":              "🦊🐙🌵🎻🚲🧭🍋🪁🦉🌋🎲🧩🛶🍄🪐🐝🥨🔭",
		"16 l33t symbols first": "357[<|8@4{+2!061abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL",
	} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				_ = domain.ValidatePassword(password, validName, validEmail)
			}
		})
	}
}
