//go:build !e2e_fast_hash

package service

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A release build refuses a bcrypt cost under 10 (OWASP's floor); only the
// end-to-end tests' binary accepts less.
func TestLoadConfig_BcryptCostFloor(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"4", "9", "15"} {
		_, err := LoadConfig(env(map[string]string{"BCRYPT_COST": bad}))
		require.Error(t, err, "BCRYPT_COST=%s", bad)
		assert.Contains(t, err.Error(), "BCRYPT_COST: want a whole number from 10 to 14")
	}
	cfg, err := LoadConfig(env(map[string]string{"BCRYPT_COST": "10"}))
	require.NoError(t, err)
	assert.Equal(t, 10, cfg.BcryptCost)
}
