package testenv

import (
	"math"
	"slices"
	"time"
)

// Percentile is the q-quantile of the durations (nearest rank); 0 of none.
func Percentile(durations []time.Duration, q float64) time.Duration {
	if len(durations) == 0 {
		return 0
	}
	sorted := slices.Clone(durations)
	slices.Sort(sorted)
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(rank, 0)]
}

// Milliseconds is d in milliseconds, for a benchmark's metric.
func Milliseconds(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
