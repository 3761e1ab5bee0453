//go:build !nogooglecloud

package transport

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// A Pub/Sub name's length is checked beside its characters, at both ends.
func TestGoogleCloudName_Lengths(t *testing.T) {
	for name, want := range map[string]bool{
		"ab": false, "abc": true, "a" + strings.Repeat("b", 254): true, "a" + strings.Repeat("b", 255): false,
		"1ab": false, "ab c": false, "a.b~c+d%e": true,
	} {
		assert.Equal(t, want, isGoogleCloudName(name), "%q", name)
	}
}
