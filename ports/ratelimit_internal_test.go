package ports

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func addr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

// A flood of distinct addresses keeps at most maxClients buckets.
func TestClientLimiters_BoundedMemory(t *testing.T) {
	l := newClientLimiters(RateLimit{Count: 30, Per: time.Minute, Burst: 10}, 1000)
	now := time.Now()
	for i := range 100_000 {
		l.reserve(addr(i), now)
		// A plain comparison: testify's, 100,000 times, is most of the
		// test's time under the race detector.
		if len(l.buckets) > 1000 {
			t.Fatalf("after client %d: %d buckets, want at most 1000", i, len(l.buckets))
		}
	}
	// The last clients are still counted.
	for range 9 {
		assert.Zero(t, l.reserve(addr(99_999), now))
	}
	assert.Positive(t, l.reserve(addr(99_999), now), "the 11th in a burst of 10 waits")
}

// A bucket that has refilled is dropped: it is the same as a new one.
func TestClientLimiters_DropsIdleClients(t *testing.T) {
	// One token back every 2 minutes.
	l := newClientLimiters(RateLimit{Count: 30, Per: time.Hour, Burst: 10}, 1000)
	now := time.Now()
	for i := range 100 {
		l.reserve(addr(i), now)
	}
	require.Len(t, l.buckets, 100)

	l.reserve(addr(1000), now.Add(clientSweepEvery+time.Second))
	assert.Len(t, l.buckets, 101, "clients still below their burst are kept")

	l.reserve(addr(2000), now.Add(2*time.Minute+2*clientSweepEvery))
	assert.Len(t, l.buckets, 1, "refilled clients are dropped")
}

func TestClientLimiters_RetryAfterFromTheReservation(t *testing.T) {
	l := newClientLimiters(RateLimit{Count: 2, Per: time.Minute, Burst: 1}, 10)
	now := time.Now()
	assert.Zero(t, l.reserve(addr(1), now))
	assert.Equal(t, 30*time.Second, l.reserve(addr(1), now))
	assert.Equal(t, 20*time.Second, l.reserve(addr(1), now.Add(10*time.Second)), "a refused request takes no token")
	assert.Zero(t, l.reserve(addr(1), now.Add(30*time.Second)))
}
