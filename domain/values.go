package domain

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Field limits of a registration.
const (
	MaxNameRunes      = 100
	MaxEmailBytes     = 254
	MinPasswordBytes  = 8
	MaxPasswordBytes  = 72 // bcrypt reads no further: a longer password is rejected, never truncated
	fieldName         = "name"
	fieldEmail        = "email"
	fieldPassword     = "password"
	slugRequired      = "required"
	slugTooLong       = "too-long"
	slugTooShort      = "too-short"
	slugInvalidChars  = "invalid-characters"
	slugInvalidFormat = "invalid-format"
)

// Email is a validated address. Its key, used for uniqueness, is its
// lower-cased form.
type Email struct{ address string }

// String returns the address as the user typed it.
func (e Email) String() string { return e.address }

// Key returns the case-insensitive form under which the address is unique.
func (e Email) Key() string { return strings.ToLower(e.address) }

func parseName(raw string, v validation) string {
	name := strings.TrimSpace(raw)
	switch {
	case name == "":
		v.add(fieldName, slugRequired)
	case !utf8.ValidString(name):
		v.add(fieldName, slugInvalidChars)
	case utf8.RuneCountInString(name) > MaxNameRunes:
		v.add(fieldName, slugTooLong)
	case strings.ContainsFunc(name, isForbiddenInName):
		v.add(fieldName, slugInvalidChars)
	}
	return name
}

// isForbiddenInName rejects control, line-separator and invisible format
// characters (CR, LF, U+2028, zero-width, bidi overrides) that could forge
// headers or log lines, or spoof text, and U+FFFD, which stands for bytes
// that were not text (invalid UTF-8, a lone surrogate).
func isForbiddenInName(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) || r == utf8.RuneError
}

func parseEmail(raw string, v validation) Email {
	switch {
	case raw == "":
		v.add(fieldEmail, slugRequired)
		return Email{}
	case len(raw) > MaxEmailBytes:
		v.add(fieldEmail, slugTooLong)
		return Email{}
	}
	addr, err := mail.ParseAddress(raw)
	// A bare address only: no display name, no comments, no surrounding spaces.
	if err != nil || addr.Name != "" || addr.Address != raw || strings.ContainsFunc(raw, isForbiddenInEmail) {
		v.add(fieldEmail, slugInvalidFormat)
		return Email{}
	}
	return Email{address: raw}
}

func isForbiddenInEmail(r rune) bool {
	return r > unicode.MaxASCII || unicode.IsControl(r) || unicode.IsSpace(r)
}

// ValidatePassword checks the password policy: 8 to 72 bytes.
func ValidatePassword(password string) error {
	v := validation{}
	checkPassword(password, v)
	return v.err()
}

func checkPassword(password string, v validation) {
	switch {
	case password == "":
		v.add(fieldPassword, slugRequired)
	case len(password) < MinPasswordBytes:
		v.add(fieldPassword, slugTooShort)
	case len(password) > MaxPasswordBytes:
		v.add(fieldPassword, slugTooLong)
	}
}
