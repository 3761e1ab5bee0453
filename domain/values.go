package domain

import (
	"net/mail"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
	"github.com/trustelem/zxcvbn/frequency"
)

// zxcvbn's matching ranks its frequency lists into dictionaries of its own
// when the program starts, and never reads the lists again: let the
// collector have them, some 2.5 MB a process would otherwise hold for
// good (docs/performance.md, "At a million stored users").
func init() { frequency.FrequencyLists = nil }

// Field limits of a registration.
const (
	MaxNameRunes      = 100
	MaxEmailBytes     = 254 // RFC 5321: a path of 256 bytes, with its angle brackets
	MaxLocalPartBytes = 64  // RFC 5321 4.5.3.1.1
	MaxLabelBytes     = 63  // RFC 1035: a domain label
	MinPasswordRunes  = 8
	MaxPasswordRunes  = 64
	MaxPasswordBytes  = 72 // bcrypt reads no further: a longer password is rejected, never truncated
	// MinPasswordGuesses is the fewest guesses, as zxcvbn estimates them,
	// that a password must take: the bound of zxcvbn's score 3, "moderate
	// protection from offline slow-hash scenario", where 2 only protects
	// "from unthrottled online attacks". (Score 3 itself starts 5 guesses
	// higher, which no 8-character password reaches: zxcvbn counts 8 random
	// characters as exactly 10^8 guesses.)
	MinPasswordGuesses = 1e8
	// ScoredPasswordRunes bounds the characters zxcvbn rates (see passwordGuesses).
	ScoredPasswordRunes = 16
	fieldName           = "name"
	fieldEmail          = "email"
	fieldPassword       = "password"
	slugRequired        = "required"
	slugTooLong         = "too-long"
	slugTooShort        = "too-short"
	slugInvalidChars    = "invalid-characters"
	slugInvalidFormat   = "invalid-format"
	slugTooWeak         = "too-weak"
)

// Email is a validated address. Its key, used for uniqueness, is its
// lower-cased form.
type Email struct{ address string }

// String returns the address as the user typed it.
func (e Email) String() string { return e.address }

// Key returns the case-insensitive form under which the address is unique.
func (e Email) Key() string { return EmailKey(e.address) }

// EmailKey is the key of an address an event holds.
func EmailKey(address string) string { return strings.ToLower(address) }

func parseName(raw string, v validation) string {
	name := strings.TrimSpace(raw)
	switch {
	case name == "":
		v.add(fieldName, slugRequired)
	case !utf8.ValidString(name):
		v.add(fieldName, slugInvalidChars)
	case utf8.RuneCountInString(name) > MaxNameRunes:
		v.add(fieldName, slugTooLong)
	default:
		if slug := checkNameCharacters([]rune(name)); slug != "" {
			v.add(fieldName, slug)
		}
	}
	return name
}

// maxMarksInARow bounds the combining marks on one letter: Vietnamese
// stacks two, Devanagari and Hebrew three; "Zalgo" text stacks dozens,
// which spill over the lines around the name.
const maxMarksInARow = 4

const (
	zeroWidthNonJoiner = '\u200c'
	zeroWidthJoiner    = '\u200d'
)

// checkNameCharacters returns the slug of what is wrong with a name's
// characters: one that is forbidden or out of place (invalid-characters),
// no letter at all, or too many marks in a row (invalid-format).
func checkNameCharacters(name []rune) string {
	hasLetter, marks := false, 0
	for i, r := range name {
		switch {
		case r == zeroWidthNonJoiner || r == zeroWidthJoiner:
			// Persian and Indic names need them, between two letters or
			// a letter and a mark (a virama); anywhere else they hide.
			if i == 0 || i == len(name)-1 || !isLetterOrMark(name[i-1]) || !isLetterOrMark(name[i+1]) {
				return slugInvalidChars
			}
			continue // a joiner does not end a run of marks
		case isForbiddenInName(r):
			return slugInvalidChars
		case unicode.IsMark(r):
			if marks++; marks > maxMarksInARow {
				return slugInvalidFormat
			}
			continue
		case unicode.IsLetter(r):
			hasLetter = true
		}
		marks = 0
	}
	if !hasLetter {
		return slugInvalidFormat // only digits, punctuation, symbols or marks
	}
	return ""
}

func isLetterOrMark(r rune) bool { return unicode.IsLetter(r) || unicode.IsMark(r) }

// isForbiddenInName rejects control, line-separator and invisible format
// characters (CR, LF, U+2028, zero-width, bidi overrides) that could forge
// headers or log lines, or spoof text; U+FFFD, which stands for bytes that
// were not text (invalid UTF-8, a lone surrogate); and characters that
// show nothing although they are not spaces: the Hangul fillers (U+3164,
// U+115F, U+1160, U+FFA0), the combining grapheme joiner and the other
// default-ignorable code points, and the blank Braille pattern (U+2800).
func isForbiddenInName(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) || r == utf8.RuneError ||
		unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) || r == '\u2800'
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

// ValidatePassword checks the password policy, with the user's name and
// email as words that make a password easy to guess.
func ValidatePassword(password, name, email string) error {
	v := validation{}
	checkPassword(password, name, email, v)
	return v.err()
}

// checkPassword applies NIST SP 800-63B: a length counted in characters
// (8 to 64, and at most 72 bytes, bcrypt's limit: longer is rejected, never
// truncated), any printable character, and no password that is common or
// easily guessed, as zxcvbn estimates with the user's name and email.
func checkPassword(password, name, email string, v validation) {
	runes := utf8.RuneCountInString(password)
	switch {
	case password == "":
		v.add(fieldPassword, slugRequired)
	case strings.ContainsFunc(password, isForbiddenInPassword) || !utf8.ValidString(password):
		v.add(fieldPassword, slugInvalidChars)
	case runes < MinPasswordRunes:
		v.add(fieldPassword, slugTooShort)
	case runes > MaxPasswordRunes || len(password) > MaxPasswordBytes:
		v.add(fieldPassword, slugTooLong)
	case passwordGuesses(password, userInputs(name, email)) < MinPasswordGuesses:
		v.add(fieldPassword, slugTooWeak)
	}
}

// isForbiddenInPassword rejects control characters, which no keyboard
// types, and U+FFFD, which stands for bytes that were not text (a lone
// surrogate in JSON decodes to it): two such passwords would hash alike.
func isForbiddenInPassword(r rune) bool {
	return unicode.IsControl(r) || r == utf8.RuneError
}

// passwordGuesses is zxcvbn's estimate of the guesses the password takes.
// zxcvbn's cost grows with the square of the length and with the number of
// l33t symbols: 64 characters of them cost about 80 ms, as much as the
// bcrypt hash, while 16 cost under 2 ms. So it rates at most the first
// ScoredPasswordRunes characters, and a password that repeats a unit is
// rated as that unit alone, since a cut second copy would hide the
// repetition from zxcvbn.
func passwordGuesses(password string, userInputs []string) float64 {
	scored := []rune(password)
	if len(scored) > ScoredPasswordRunes {
		scored = scored[:min(smallestPeriod(scored), ScoredPasswordRunes)]
	}
	return zxcvbn.PasswordStrength(string(scored), userInputs).Guesses
}

// smallestPeriod returns the smallest p such that s[i] == s[i-p] for every
// i >= p: the length of the unit s repeats, or len(s) when it repeats none.
func smallestPeriod(s []rune) int {
	if len(s) == 0 {
		return 0
	}
	// border[i] is the length of the longest proper prefix of s[:i+1]
	// that is also its suffix (the Knuth-Morris-Pratt failure function).
	border := make([]int, len(s))
	for i := 1; i < len(s); i++ {
		k := border[i-1]
		for k > 0 && s[i] != s[k] {
			k = border[k-1]
		}
		if s[i] == s[k] {
			k++
		}
		border[i] = k
	}
	return len(s) - border[len(s)-1]
}

// userInputs returns the user's name and email, whole, as words and with
// the words run together, which zxcvbn counts among the first guesses.
func userInputs(name, email string) []string {
	notAlphanumeric := func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }
	nameWords := strings.FieldsFunc(name, notAlphanumeric)
	emailWords := strings.FieldsFunc(email, notAlphanumeric)
	inputs := []string{name, email, strings.Join(nameWords, ""), strings.Join(emailWords, "")}
	inputs = append(inputs, nameWords...)
	inputs = append(inputs, emailWords...)
	return slices.DeleteFunc(inputs, func(s string) bool { return s == "" })
}
