package transport

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The names' lengths are checked beside their characters, at both ends.
func TestCloudNames_Lengths(t *testing.T) {
	for name, want := range map[string]bool{
		"ab": false, "abc": true, "a" + strings.Repeat("b", 254): true, "a" + strings.Repeat("b", 255): false,
		"1ab": false, "ab c": false, "a.b~c+d%e": true,
	} {
		assert.Equal(t, want, isGoogleCloudName(name), "googlecloud %q", name)
	}
	for name, want := range map[string]bool{
		"": false, "q": true, strings.Repeat("q", 80): true, strings.Repeat("q", 81): false, "a.b": false,
	} {
		assert.Equal(t, want, isSQSName(name, 80), "sqs %q", name)
	}
	assert.True(t, isSQSName(strings.Repeat("t", 256), 256))
	assert.False(t, isSQSName(strings.Repeat("t", 257), 256))
}
