package domain

import "time"

// PointsEntry is one line of a user's points ledger.
type PointsEntry struct {
	Amount    int       `json:"amount"`
	Reason    string    `json:"reason"`
	GrantedAt time.Time `json:"granted_at"`
}

// ReasonSignup is the ledger reason of the points granted on registration;
// a user gets at most one entry per reason.
const ReasonSignup = "signup"

// Balance sums a ledger.
func Balance(entries []PointsEntry) int {
	total := 0
	for _, e := range entries {
		total += e.Amount
	}
	return total
}
