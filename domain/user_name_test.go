package domain_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/domain"
)

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
