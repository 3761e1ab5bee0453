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
	MaxEmailBytes     = 254 // RFC 5321: a path of 256 bytes, with its angle brackets
	MaxLocalPartBytes = 64  // RFC 5321 4.5.3.1.1
	MaxLabelBytes     = 63  // RFC 1035: a domain label
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

// parseEmail accepts one bare address that a mail relay delivers to one
// mailbox: RFC 5321 sizes (254 bytes, local part 64, domain label 63:
// too-long), a dot-atom local part without quotes, source routing (%, !)
// or RFC 2047 encoded words, and a host name of at least two LDH labels
// whose last is not all digits, so no IP address, IP literal, localhost or
// other single-label name (invalid-format).
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
	// A bare address only: no display name, no comments, no surrounding
	// spaces, no quoted local part (ParseAddress drops the quotes).
	if err != nil || addr.Name != "" || addr.Address != raw || strings.ContainsFunc(raw, isForbiddenInEmail) {
		v.add(fieldEmail, slugInvalidFormat)
		return Email{}
	}
	at := strings.LastIndexByte(raw, '@')
	local, domain := raw[:at], raw[at+1:]
	if slug := checkLocalPart(local); slug != "" {
		v.add(fieldEmail, slug)
		return Email{}
	}
	if slug := checkHostName(domain); slug != "" {
		v.add(fieldEmail, slug)
		return Email{}
	}
	return Email{address: raw}
}

func isForbiddenInEmail(r rune) bool {
	return r > unicode.MaxASCII || unicode.IsControl(r) || unicode.IsSpace(r)
}

// checkLocalPart returns the slug of what is wrong with an address's local
// part, which mail.ParseAddress already read as a dot-atom.
func checkLocalPart(local string) string {
	switch {
	case len(local) > MaxLocalPartBytes:
		return slugTooLong
	// % and ! route a message on through another host on some relays;
	// "=?" starts an RFC 2047 encoded word, which a mail client may decode
	// into another address; a quote means a quoted local part.
	case strings.ContainsAny(local, `%!"`), strings.Contains(local, "=?"):
		return slugInvalidFormat
	}
	return ""
}

// checkHostName returns the slug of what is wrong with an address's
// domain, which must be a host name of at least two labels.
func checkHostName(domain string) string {
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return slugInvalidFormat // localhost, or any name with no dot
	}
	for _, label := range labels {
		switch {
		case len(label) > MaxLabelBytes:
			return slugTooLong
		case label == "", label[0] == '-', label[len(label)-1] == '-',
			strings.ContainsFunc(label, func(r rune) bool { return !isLDH(r) }):
			return slugInvalidFormat
		}
	}
	// An all-numeric top-level label is an IP address, not a host name.
	if !strings.ContainsFunc(labels[len(labels)-1], func(r rune) bool { return r < '0' || r > '9' }) {
		return slugInvalidFormat
	}
	return ""
}

// isLDH reports whether r may appear in a host name label: an ASCII letter,
// digit or hyphen.
func isLDH(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-'
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
