package messages

import (
	"time"
)

// MaxTotalWait is the longest the quick retries of one delivery wait in
// all, every wait at its longest (the randomization added), the attempts'
// own time aside.
func (r RetryPolicy) MaxTotalWait() time.Duration {
	r.setDefaults()
	var total, wait time.Duration
	wait = r.InitialInterval
	for range r.MaxRetries {
		total += time.Duration(float64(wait) * (1 + r.RandomizationFactor))
		wait = min(time.Duration(float64(wait)*r.Multiplier), r.MaxInterval)
	}
	return total
}
