package ports

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// If-Match takes our ETag, a quoted version, or the version bare as a
// client holding the user's "version" sends it; anything else matches no
// version.
func TestParseETag(t *testing.T) {
	for _, tc := range []struct {
		values  []string
		version int
		ok      bool
	}{
		{[]string{`"3"`}, 3, true},
		{[]string{`3`}, 3, true},
		{[]string{` "12" `}, 12, true},
		{[]string{`"03"`}, 0, false},
		{[]string{`03`}, 0, false},
		{[]string{`0`}, 0, false},
		{[]string{`-1`}, 0, false},
		{[]string{`W/"3"`}, 0, false},
		{[]string{`"3`}, 0, false},
		{[]string{`""`}, 0, false},
		{[]string{`"3"`, `"4"`}, 0, false},
		{[]string{`three`}, 0, false},
	} {
		version, ok := parseETag(tc.values)
		assert.Equal(t, tc.ok, ok, "%q", tc.values)
		assert.Equal(t, tc.version, version, "%q", tc.values)
	}
}
