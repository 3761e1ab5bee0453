package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// env returns a getenv reading vars.
func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

func TestLoadConfig_HTTPDefaults(t *testing.T) {
	cfg, err := LoadConfig(env(nil))
	require.NoError(t, err)
	assert.Equal(t, 64, cfg.HashQueueMax)
}

// Every bad value is reported at once, each naming its variable.
func TestLoadConfig_HTTPVariablesRejectBadValues(t *testing.T) {
	_, err := LoadConfig(env(map[string]string{
		"HASH_QUEUE_MAX": "0",
	}))
	require.Error(t, err)
	for _, name := range []string{"HASH_QUEUE_MAX"} {
		assert.Contains(t, err.Error(), name)
	}

	cfg, err := LoadConfig(env(map[string]string{"HASH_QUEUE_MAX": "5"}))
	require.NoError(t, err)
	assert.Equal(t, 5, cfg.HashQueueMax)
}
