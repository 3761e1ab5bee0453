//go:build !nosqs

package transport

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// A queue's or topic's name length is checked beside its characters, at
// both ends.
func TestSQSName_Lengths(t *testing.T) {
	for name, want := range map[string]bool{
		"": false, "q": true, strings.Repeat("q", 80): true, strings.Repeat("q", 81): false, "a.b": false,
	} {
		assert.Equal(t, want, isSQSName(name, 80), "%q", name)
	}
	assert.True(t, isSQSName(strings.Repeat("t", 256), 256))
	assert.False(t, isSQSName(strings.Repeat("t", 257), 256))
}
