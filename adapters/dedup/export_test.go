package dedup

import "time"

// HoldMarksFor has d hold its "done" marks for up to hold (PostgreSQL).
func HoldMarksFor(d Deduplicator, hold time.Duration) Deduplicator {
	d.held.holdFor = hold
	return d
}
