package e2e

import "sync"

// burst serializes the tests' bursts of concurrent registrations. A burst
// hashes on every core at once; two bursts, or a burst among many busy
// tests, would leave requests waiting for a hash past the service's
// deadline (10 s, then 503 overloaded).
var burst sync.Mutex

// Burst runs f, which sends many registrations at once, while no other test
// of this binary runs a burst.
func Burst(f func()) {
	burst.Lock()
	defer burst.Unlock()
	f()
}
