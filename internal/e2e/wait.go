package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/onboard/onboard/internal/testenv"
)

// RequireProgress waits for the service to make progress, and on timeout
// names the transactions that may have stalled it before failing the test.
func RequireProgress(t testing.TB, db *testenv.DB, condition func() bool, wait time.Duration, msgAndArgs ...any) {
	t.Helper()
	if !AssertProgress(t, db, condition, wait, msgAndArgs...) {
		t.FailNow()
	}
}

// AssertProgress is RequireProgress without stopping the test.
func AssertProgress(t testing.TB, db *testenv.DB, condition func() bool, wait time.Duration, msgAndArgs ...any) bool {
	t.Helper()
	if assert.Eventually(t, condition, wait, Poll, msgAndArgs...) {
		return true
	}
	testenv.LogOldTransactions(t, db.DB)
	return false
}
