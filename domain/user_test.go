package domain_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/domain"
)

const (
	validID       = "0190f5c4-7b9e-7000-8000-000000000001"
	validName     = "Ada Lovelace"
	validEmail    = "ada@example.com"
	validPassword = "correct horse"
)

var registeredAt = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("CEST", 2*60*60))

// fieldErrors returns the per-field slugs of a validation error, failing the
// test if err is not one.
func fieldErrors(t *testing.T, err error) map[string]string {
	t.Helper()
	var de *domain.Error
	require.ErrorAs(t, err, &de)
	assert.Equal(t, domain.KindInvalid, de.Kind)
	assert.Equal(t, "validation-failed", de.Code)
	return de.Fields
}

// emailOf builds a syntactically valid address of exactly n bytes (n >= 71).
func emailOf(n int) string {
	local := strings.Repeat("l", 64)
	const tld = ".com"
	rest := n - len(local) - len("@") - len(tld)
	var labels []string
	for rest > 0 {
		size := min(rest, 63)
		if rest-size == 1 { // a label of zero characters would follow
			size--
		}
		labels = append(labels, strings.Repeat("d", size))
		rest -= size + 1 // the label and the dot after it
	}
	return local + "@" + strings.Join(labels, ".") + tld
}

func TestEmailOfHelper(t *testing.T) {
	for _, n := range []int{71, 200, 254, 255} {
		assert.Len(t, emailOf(n), n)
	}
}

func TestNewUser_Name(t *testing.T) {
	tests := []struct {
		name     string
		input    string
		wantName string // when valid
		wantSlug string // when invalid
	}{
		{name: "plain", input: "Ada Lovelace", wantName: "Ada Lovelace"},
		{name: "single rune", input: "A", wantName: "A"},
		{name: "surrounding spaces trimmed", input: "   Ada Lovelace  ", wantName: "Ada Lovelace"},
		{name: "surrounding tabs and newlines trimmed", input: "\t\nAda\r\n", wantName: "Ada"},
		{name: "inner spaces kept", input: "Ada  King", wantName: "Ada  King"},
		{name: "100 runes", input: strings.Repeat("a", 100), wantName: strings.Repeat("a", 100)},
		{name: "100 runes after trimming", input: "  " + strings.Repeat("a", 100) + "  ", wantName: strings.Repeat("a", 100)},
		{name: "101 runes", input: strings.Repeat("a", 101), wantSlug: "too-long"},
		{name: "100 two-byte runes", input: strings.Repeat("é", 100), wantName: strings.Repeat("é", 100)},
		{name: "101 two-byte runes", input: strings.Repeat("é", 101), wantSlug: "too-long"},
		{name: "100 three-byte runes", input: strings.Repeat("日", 100), wantName: strings.Repeat("日", 100)},
		{name: "a letter and 99 four-byte emoji", input: "A" + strings.Repeat("🙂", 99), wantName: "A" + strings.Repeat("🙂", 99)},
		{name: "101 four-byte emoji", input: strings.Repeat("🙂", 101), wantSlug: "too-long"},
		{name: "emoji", input: "Ada 🚀", wantName: "Ada 🚀"},
		{name: "emoji with skin tone", input: "Ada 👍🏽", wantName: "Ada 👍🏽"},
		{name: "flag emoji", input: "Ada 🇫🇷", wantName: "Ada 🇫🇷"},
		{name: "non-Latin script", input: "Ада Лавлейс", wantName: "Ада Лавлейс"},
		{name: "apostrophe and hyphen", input: "Anne-Marie O'Neil", wantName: "Anne-Marie O'Neil"},
		{name: "empty", input: "", wantSlug: "required"},
		{name: "spaces only", input: "    ", wantSlug: "required"},
		{name: "whitespace only", input: " \t\r\n\u00a0", wantSlug: "required"},
		{name: "line feed inside", input: "Ada\nLovelace", wantSlug: "invalid-characters"},
		{name: "carriage return inside", input: "Ada\rLovelace", wantSlug: "invalid-characters"},
		{name: "header injection", input: "Ada\r\nBcc: eve@example.com", wantSlug: "invalid-characters"},
		{name: "NUL inside", input: "Ada\x00Lovelace", wantSlug: "invalid-characters"},
		{name: "tab inside", input: "Ada\tLovelace", wantSlug: "invalid-characters"},
		{name: "DEL inside", input: "Ada\x7fLovelace", wantSlug: "invalid-characters"},
		{name: "escape inside", input: "Ada\x1b[31m", wantSlug: "invalid-characters"},
		{name: "next line (U+0085) inside", input: "Ada\u0085Lovelace", wantSlug: "invalid-characters"},
		{name: "zero-width space", input: "Ada\u200bLovelace", wantSlug: "invalid-characters"},
		{name: "zero-width space alone", input: "\u200b", wantSlug: "invalid-characters"},
		{name: "bidi override", input: "Ada\u202eecalevol", wantSlug: "invalid-characters"},
		{name: "byte order mark", input: "\ufeffAda", wantSlug: "invalid-characters"},
		{name: "invalid UTF-8", input: "Ada\xff", wantSlug: "invalid-characters"},
		{name: "truncated UTF-8 sequence", input: "Ad\xc3", wantSlug: "invalid-characters"},
		{name: "UTF-8 encoded surrogate", input: "Ada\xed\xa0\x80", wantSlug: "invalid-characters"},
		// Real names in other scripts.
		{name: "Vietnamese, NFC", input: "Nguyễn Văn Anh", wantName: "Nguyễn Văn Anh"},
		{name: "Vietnamese, NFD (two marks on one letter)", input: "Nguye\u0302\u0303n Va\u0306n Anh", wantName: "Nguye\u0302\u0303n Va\u0306n Anh"},
		{name: "Devanagari", input: "मोहनदास करमचंद गांधी", wantName: "मोहनदास करमचंद गांधी"},
		{name: "Persian", input: "محمدرضا", wantName: "محمدرضا"},
		{name: "Persian with a zero-width non-joiner", input: "علی\u200cرضا", wantName: "علی\u200cرضا"},
		{name: "Persian word with a zero-width non-joiner", input: "می\u200cخواهم", wantName: "می\u200cخواهم"},
		{name: "Devanagari half form: virama then zero-width joiner", input: "क्\u200dष", wantName: "क्\u200dष"},
		{name: "Devanagari eyelash ra: zero-width joiner then virama", input: "र\u200d्य", wantName: "र\u200d्य"},
		{name: "Hebrew with points", input: "שָׁלוֹם", wantName: "שָׁלוֹם"},
		{name: "diaeresis", input: "Zoë", wantName: "Zoë"},
		{name: "circumflex", input: "Siân", wantName: "Siân"},
		{name: "4 marks on one letter", input: "A\u0301\u0302\u0303\u0304da", wantName: "A\u0301\u0302\u0303\u0304da"},
		// Joiners anywhere else.
		{name: "zero-width non-joiner first", input: "\u200cAda", wantSlug: "invalid-characters"},
		{name: "zero-width non-joiner last", input: "Ada\u200c", wantSlug: "invalid-characters"},
		{name: "zero-width joiner alone", input: "\u200d", wantSlug: "invalid-characters"},
		{name: "zero-width non-joiner beside a space", input: "Ada \u200cLovelace", wantSlug: "invalid-characters"},
		{name: "two zero-width non-joiners", input: "Ada\u200c\u200cLovelace", wantSlug: "invalid-characters"},
		{name: "zero-width joiner between digits", input: "Ada 1\u200d2", wantSlug: "invalid-characters"},
		{name: "zero-width joiner between emoji", input: "Ada 👩\u200d💻", wantSlug: "invalid-characters"},
		// Visually blank.
		{name: "Hangul filler alone", input: "\u3164", wantSlug: "invalid-characters"},
		{name: "Hangul filler inside", input: "Ada\u3164Lovelace", wantSlug: "invalid-characters"},
		{name: "Hangul choseong filler", input: "\u115f", wantSlug: "invalid-characters"},
		{name: "Hangul jungseong filler", input: "\u1160", wantSlug: "invalid-characters"},
		{name: "halfwidth Hangul filler", input: "\uffa0", wantSlug: "invalid-characters"},
		{name: "Braille blank", input: "\u2800", wantSlug: "invalid-characters"},
		{name: "combining grapheme joiner", input: "Ada\u034fLovelace", wantSlug: "invalid-characters"},
		{name: "no letter: digits", input: "1234", wantSlug: "invalid-format"},
		{name: "no letter: punctuation", input: "- . -", wantSlug: "invalid-format"},
		{name: "no letter: emoji", input: "🚀🚀", wantSlug: "invalid-format"},
		{name: "no letter: marks only", input: "\u0301\u0302", wantSlug: "invalid-format"},
		// Stacked marks ("Zalgo") that overflow the lines around them.
		{name: "5 marks on one letter", input: "A\u0301\u0302\u0303\u0304\u0305da", wantSlug: "invalid-format"},
		{name: "99 stacked marks", input: "A" + strings.Repeat("\u0336", 99), wantSlug: "invalid-format"},
		{name: "marks stacked across a joiner", input: "A\u0301\u0302\u0303\u200d\u0304\u0305da", wantSlug: "invalid-format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, err := domain.NewUser(validID, tt.input, validEmail, validPassword, "", registeredAt)
			if tt.wantSlug != "" {
				require.Error(t, err)
				assert.Nil(t, user)
				assert.Equal(t, map[string]string{"name": tt.wantSlug}, fieldErrors(t, err))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantName, user.Name())
			registered := user.PendingEvents()[0].(domain.UserRegistered)
			assert.Equal(t, tt.wantName, registered.Name, "the event carries the trimmed name")
		})
	}
}

func TestNewUser_Email(t *testing.T) {
	tests := []struct {
		name     string
		input    string
		wantKey  string // when valid
		wantSlug string // when invalid
	}{
		{name: "plain", input: "ada@example.com", wantKey: "ada@example.com"},
		{name: "mixed case kept as typed", input: "Ada.Lovelace@Example.COM", wantKey: "ada.lovelace@example.com"},
		{name: "plus tag", input: "ada+signup@example.co.uk", wantKey: "ada+signup@example.co.uk"},
		{name: "254 bytes", input: emailOf(254), wantKey: emailOf(254)},
		{name: "255 bytes", input: emailOf(255), wantSlug: "too-long"},
		{name: "1000 bytes", input: strings.Repeat("a", 990) + "@example.com", wantSlug: "too-long"},
		{name: "empty", input: "", wantSlug: "required"},
		{name: "display name", input: "Ada <ada@example.com>", wantSlug: "invalid-format"},
		{name: "quoted display name", input: `"Ada Lovelace" <ada@example.com>`, wantSlug: "invalid-format"},
		{name: "angle brackets only", input: "<ada@example.com>", wantSlug: "invalid-format"},
		{name: "comment", input: "ada@example.com (Ada)", wantSlug: "invalid-format"},
		{name: "two addresses", input: "ada@example.com, eve@example.com", wantSlug: "invalid-format"},
		{name: "two addresses with semicolon", input: "ada@example.com;eve@example.com", wantSlug: "invalid-format"},
		{name: "leading space", input: " ada@example.com", wantSlug: "invalid-format"},
		{name: "trailing space", input: "ada@example.com ", wantSlug: "invalid-format"},
		{name: "spaces only", input: "   ", wantSlug: "invalid-format"},
		{name: "space inside", input: "ada lovelace@example.com", wantSlug: "invalid-format"},
		{name: "quoted local part with space", input: `"ada lovelace"@example.com`, wantSlug: "invalid-format"},
		{name: "missing @", input: "ada.example.com", wantSlug: "invalid-format"},
		{name: "two @", input: "ada@@example.com", wantSlug: "invalid-format"},
		{name: "missing local part", input: "@example.com", wantSlug: "invalid-format"},
		{name: "missing domain", input: "ada@", wantSlug: "invalid-format"},
		{name: "CRLF header injection", input: "ada@example.com\r\nBcc: eve@example.com", wantSlug: "invalid-format"},
		{name: "LF inside", input: "ada\n@example.com", wantSlug: "invalid-format"},
		{name: "CR inside", input: "ada@exa\rmple.com", wantSlug: "invalid-format"},
		{name: "trailing NUL", input: "ada@example.com\x00", wantSlug: "invalid-format"},
		{name: "non-ASCII local part", input: "adä@example.com", wantSlug: "invalid-format"},
		{name: "non-ASCII domain", input: "ada@exämple.com", wantSlug: "invalid-format"},
		{name: "Cyrillic look-alike", input: "аda@example.com", wantSlug: "invalid-format"},
		{name: "invalid UTF-8", input: "ada\xff@example.com", wantSlug: "invalid-format"},
		// RFC 5321 sizes: local part 64 bytes, domain label 63 bytes.
		{name: "64-byte local part", input: strings.Repeat("l", 64) + "@example.com", wantKey: strings.Repeat("l", 64) + "@example.com"},
		{name: "65-byte local part", input: strings.Repeat("l", 65) + "@example.com", wantSlug: "too-long"},
		{name: "63-byte label", input: "ada@" + strings.Repeat("d", 63) + ".com", wantKey: "ada@" + strings.Repeat("d", 63) + ".com"},
		{name: "64-byte label", input: "ada@" + strings.Repeat("d", 64) + ".com", wantSlug: "too-long"},
		{name: "64-byte top-level label", input: "ada@example." + strings.Repeat("d", 64), wantSlug: "too-long"},
		// The domain is a host name: letters, digits and hyphens, at least two labels.
		{name: "subdomains", input: "ada@mail.eu.example.co.uk", wantKey: "ada@mail.eu.example.co.uk"},
		{name: "hyphen inside a label", input: "ada@ex-ample.com", wantKey: "ada@ex-ample.com"},
		{name: "digits in a label", input: "ada@123.example.com", wantKey: "ada@123.example.com"},
		{name: "punycode label", input: "ada@xn--bcher-kva.example", wantKey: "ada@xn--bcher-kva.example"},
		{name: "label starts with a hyphen", input: "ada@-example.com", wantSlug: "invalid-format"},
		{name: "label ends with a hyphen", input: "ada@example-.com", wantSlug: "invalid-format"},
		{name: "top-level label starts with a hyphen", input: "ada@example.-com", wantSlug: "invalid-format"},
		{name: "underscore in the domain", input: "ada@exa_mple.com", wantSlug: "invalid-format"},
		{name: "empty label", input: "ada@example..com", wantSlug: "invalid-format"},
		{name: "leading dot in the domain", input: "ada@.example.com", wantSlug: "invalid-format"},
		{name: "trailing dot in the domain", input: "ada@example.com.", wantSlug: "invalid-format"},
		{name: "localhost", input: "ada@localhost", wantSlug: "invalid-format"},
		{name: "single-label domain", input: "ada@example", wantSlug: "invalid-format"},
		{name: "IPv4 literal", input: "ada@[127.0.0.1]", wantSlug: "invalid-format"},
		{name: "IPv6 literal", input: "ada@[IPv6:::1]", wantSlug: "invalid-format"},
		{name: "bare IPv4 address", input: "ada@127.0.0.1", wantSlug: "invalid-format"},
		{name: "all-numeric top-level label", input: "ada@example.123", wantSlug: "invalid-format"},
		// Local parts that route, quote or encode.
		{name: "apostrophe in the local part", input: "o'neil@example.com", wantKey: "o'neil@example.com"},
		{name: "percent routing", input: "a%b@c.com", wantSlug: "invalid-format"},
		{name: "percent relay through another host", input: "ada%evil.example@example.com", wantSlug: "invalid-format"},
		{name: "bang path", input: "evil.example!ada@example.com", wantSlug: "invalid-format"},
		{name: "quoted local part", input: `"ada"@example.com`, wantSlug: "invalid-format"},
		{name: "quoted local part with @", input: `"ada@evil.example"@example.com`, wantSlug: "invalid-format"},
		{name: "RFC 2047 encoded word", input: "=?utf-8?q?ada?=@x.com", wantSlug: "invalid-format"},
		{name: "RFC 2047 encoded word in base64", input: "=?utf-8?b?YWRh?=@example.com", wantSlug: "invalid-format"},
		{name: "RFC 2047 encoded word inside", input: "ada.=?iso-8859-1?q?=E9?=@example.com", wantSlug: "invalid-format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, err := domain.NewUser(validID, validName, tt.input, validPassword, "", registeredAt)
			if tt.wantSlug != "" {
				require.Error(t, err)
				assert.Nil(t, user)
				assert.Equal(t, map[string]string{"email": tt.wantSlug}, fieldErrors(t, err))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.input, user.Email().String(), "kept as typed")
			assert.Equal(t, tt.wantKey, user.Email().Key())
			registered := user.PendingEvents()[0].(domain.UserRegistered)
			assert.Equal(t, tt.input, registered.Email)
		})
	}
}

func TestEmailKeyIsCaseInsensitive(t *testing.T) {
	a, err := domain.NewUser(validID, validName, "ADA@EXAMPLE.COM", validPassword, "", registeredAt)
	require.NoError(t, err)
	b, err := domain.NewUser(validID, validName, "ada@Example.com", validPassword, "", registeredAt)
	require.NoError(t, err)
	assert.NotEqual(t, a.Email().String(), b.Email().String())
	assert.Equal(t, a.Email().Key(), b.Email().Key())
}

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

func TestNewUser_ReportsEveryInvalidFieldAtOnce(t *testing.T) {
	tests := []struct {
		name                          string
		id, userName, email, password string
		want                          map[string]string
	}{
		{
			name: "all fields empty",
			want: map[string]string{"id": "required", "name": "required", "email": "required", "password": "required"},
		},
		{
			name: "all fields malformed", id: validID, userName: "Ada\u202e", email: "Ada <ada@example.com>", password: "short",
			want: map[string]string{"name": "invalid-characters", "email": "invalid-format", "password": "too-short"},
		},
		{
			name: "all fields too long", id: validID, userName: strings.Repeat("n", 101), email: emailOf(255), password: strings.Repeat("p", 73),
			want: map[string]string{"name": "too-long", "email": "too-long", "password": "too-long"},
		},
		{
			name: "only the id", userName: validName, email: validEmail, password: validPassword,
			want: map[string]string{"id": "required"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, err := domain.NewUser(tt.id, tt.userName, tt.email, tt.password, "", registeredAt)
			require.Error(t, err)
			assert.Nil(t, user)
			assert.Equal(t, tt.want, fieldErrors(t, err))
			assert.True(t, domain.IsKind(err, domain.KindInvalid))
			assert.False(t, domain.IsKind(err, domain.KindConflict))
			assert.False(t, domain.IsKind(err, domain.KindNotFound))
		})
	}
}

func TestNewUser_ErrorMessageListsFieldsInOrder(t *testing.T) {
	const password = "pw-7byt"
	_, err := domain.NewUser(validID, "", "nope", password, "", registeredAt)
	require.Error(t, err)
	assert.Equal(t, "some fields are invalid (email: invalid-format, name: required, password: too-short)", err.Error())
	assert.NotContains(t, err.Error(), password, "the message never echoes the password")
}

func TestNewUser_Valid(t *testing.T) {
	user, err := domain.NewUser(validID, "  Ada Lovelace ", "Ada@Example.com", validPassword, "", registeredAt)
	require.NoError(t, err)

	wantAt := time.Date(2024, 5, 6, 5, 8, 9, 123456000, time.UTC)
	assert.Equal(t, validID, user.ID())
	assert.Equal(t, "Ada Lovelace", user.Name())
	assert.Equal(t, "Ada@Example.com", user.Email().String())
	assert.Equal(t, "ada@example.com", user.Email().Key())
	assert.Equal(t, wantAt, user.RegisteredAt())
	assert.Equal(t, time.UTC, user.RegisteredAt().Location())
	assert.Equal(t, 1, user.Version())

	require.Len(t, user.PendingEvents(), 1)
	assert.Equal(t, domain.UserRegistered{
		UserID:       validID,
		Name:         "Ada Lovelace",
		Email:        "Ada@Example.com",
		Locale:       "en",
		RegisteredAt: wantAt,
	}, user.PendingEvents()[0])
	assert.Equal(t, "UserRegistered", user.PendingEvents()[0].EventName())
}

func TestUserRegistered_CarriesNoSecret(t *testing.T) {
	const password = "s3cret-Passw0rd!"
	user, err := domain.NewUser(validID, validName, validEmail, password, "", registeredAt)
	require.NoError(t, err)
	payload, err := json.Marshal(user.PendingEvents())
	require.NoError(t, err)
	assert.NotContains(t, string(payload), password)
	assert.NotContains(t, strings.ToLower(string(payload)), "password")
	assert.JSONEq(t,
		`[{"user_id":"`+validID+`","name":"Ada Lovelace","email":"ada@example.com","locale":"en","registered_at":"2024-05-06T05:08:09.123456Z"}]`,
		string(payload))
}

func TestUnmarshalUserFromEvents(t *testing.T) {
	user, err := domain.NewUser(validID, " Ada Lovelace ", "Ada@Example.com", validPassword, "", registeredAt)
	require.NoError(t, err)

	t.Run("from the pending events", func(t *testing.T) {
		loaded, err := domain.UnmarshalUserFromEvents(user.PendingEvents())
		require.NoError(t, err)
		assertSameUser(t, user, loaded)
		assert.Empty(t, loaded.PendingEvents(), "a loaded user has nothing pending")
	})

	t.Run("from events stored as JSON", func(t *testing.T) {
		payload, err := json.Marshal(user.PendingEvents()[0])
		require.NoError(t, err)
		var stored domain.UserRegistered
		require.NoError(t, json.Unmarshal(payload, &stored))

		loaded, err := domain.UnmarshalUserFromEvents([]domain.Event{stored})
		require.NoError(t, err)
		assertSameUser(t, user, loaded)
	})

	t.Run("no events", func(t *testing.T) {
		for _, events := range [][]domain.Event{nil, {}} {
			loaded, err := domain.UnmarshalUserFromEvents(events)
			assert.Nil(t, loaded)
			require.ErrorIs(t, err, domain.ErrUserNotFound)
			assert.True(t, domain.IsKind(err, domain.KindNotFound))
		}
	})

	t.Run("unknown event", func(t *testing.T) {
		loaded, err := domain.UnmarshalUserFromEvents([]domain.Event{user.PendingEvents()[0], unknownEvent{}})
		require.Error(t, err)
		assert.Nil(t, loaded)
	})
}

type unknownEvent struct{}

func (unknownEvent) EventName() string { return "Unknown" }

func (unknownEvent) StreamID() string { return "" }

func assertSameUser(t *testing.T, want, got *domain.User) {
	t.Helper()
	assert.Equal(t, want.ID(), got.ID())
	assert.Equal(t, want.Name(), got.Name())
	assert.Equal(t, want.Email(), got.Email())
	assert.Equal(t, want.Email().Key(), got.Email().Key())
	assert.True(t, want.RegisteredAt().Equal(got.RegisteredAt()), "registered at %v, want %v", got.RegisteredAt(), want.RegisteredAt())
	assert.Equal(t, time.UTC, got.RegisteredAt().Location())
	assert.Equal(t, want.Version(), got.Version())
}

func TestErrorKinds(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantKind domain.Kind
		wantCode string
	}{
		{name: "email taken", err: domain.ErrEmailTaken, wantKind: domain.KindConflict, wantCode: "email-taken"},
		{name: "user exists", err: domain.ErrUserExists, wantKind: domain.KindConflict, wantCode: "user-exists"},
		{name: "user not found", err: domain.ErrUserNotFound, wantKind: domain.KindNotFound, wantCode: "user-not-found"},
		{name: "wrapped", err: fmt.Errorf("register: %w", domain.ErrEmailTaken), wantKind: domain.KindConflict, wantCode: "email-taken"},
		{name: "joined", err: errors.Join(errors.New("other"), domain.ErrUserNotFound), wantKind: domain.KindNotFound, wantCode: "user-not-found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var de *domain.Error
			require.ErrorAs(t, tt.err, &de)
			assert.Equal(t, tt.wantCode, de.Code)
			assert.NotEmpty(t, de.Message)
			for _, kind := range []domain.Kind{domain.KindInvalid, domain.KindConflict, domain.KindNotFound} {
				assert.Equal(t, kind == tt.wantKind, domain.IsKind(tt.err, kind), "IsKind(%d)", kind)
			}
		})
	}

	t.Run("not a domain error", func(t *testing.T) {
		err := fmt.Errorf("db: %w", errors.New("connection refused"))
		assert.False(t, domain.IsKind(err, domain.KindInvalid))
		assert.False(t, domain.IsKind(err, domain.KindConflict))
		assert.False(t, domain.IsKind(err, domain.KindNotFound))
		assert.False(t, domain.IsKind(nil, domain.KindInvalid))
	})
}

func TestNewUser_IDMustBeALowerCaseUUID(t *testing.T) {
	for id, slug := range map[string]string{
		"":                                       "required",
		"not-a-uuid":                             "invalid-format",
		"0190F5C4-7B9E-7000-8000-000000000001":   "invalid-format",
		"{0190f5c4-7b9e-7000-8000-000000000001}": "invalid-format",
	} {
		_, err := domain.NewUser(id, "Ada", "ada@example.com", "correct horse", "", time.Now())
		var de *domain.Error
		require.ErrorAs(t, err, &de, id)
		assert.Equal(t, slug, de.Fields["id"], id)
	}
	_, err := domain.NewUser("0190f5c4-7b9e-7000-8000-000000000001", "Ada", "ada@example.com", "correct horse", "", time.Now())
	require.NoError(t, err)
}
