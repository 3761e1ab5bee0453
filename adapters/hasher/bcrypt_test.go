package hasher_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/onboard/onboard/adapters/hasher"
	"github.com/onboard/onboard/internal/telemetry"
)

func newTestMetrics(t *testing.T) (*telemetry.Metrics, *prometheus.Registry) {
	t.Helper()
	m, err := telemetry.NewMetrics()
	require.NoError(t, err)
	return m, m.Registry()
}

// Each wait for a turn of the hasher is observed, a turn at once included.
func TestBcrypt_TellsEachWait(t *testing.T) {
	m, registry := newTestMetrics(t)
	h, err := hasher.New(hasher.Config{Cost: bcrypt.MinCost, OnWait: m.ObserveHashWait})
	require.NoError(t, err)
	hash, err := h.Hash(context.Background(), "correct horse")
	require.NoError(t, err)
	_, err = h.Matches(context.Background(), hash, "correct horse")
	require.NoError(t, err)
	families, err := registry.Gather()
	require.NoError(t, err)
	var count uint64
	for _, f := range families {
		if f.GetName() == "onboard_password_hash_wait_seconds" {
			count = f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	assert.Equal(t, uint64(2), count)
}

// The hasher's CPU is what its hashes and comparisons took on their own
// threads: more than nothing, no more than the wall time they took.
func TestBcrypt_CountsItsCPU(t *testing.T) {
	m, registry := newTestMetrics(t)
	h, err := hasher.New(hasher.Config{Cost: 8})
	require.NoError(t, err)
	require.NoError(t, m.CountHashCPU(h.CPU))
	assert.Zero(t, h.CPU())
	start := time.Now()
	hash, err := h.Hash(context.Background(), "correct horse")
	require.NoError(t, err)
	_, err = h.Matches(context.Background(), hash, "correct horse")
	require.NoError(t, err)
	took := time.Since(start)
	assert.Positive(t, h.CPU())
	assert.LessOrEqual(t, h.CPU(), took)

	families, err := registry.Gather()
	require.NoError(t, err)
	var seconds float64
	for _, f := range families {
		if f.GetName() == "onboard_password_hash_cpu_seconds_total" {
			seconds = f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	assert.InDelta(t, h.CPU().Seconds(), seconds, 1e-9)
}
