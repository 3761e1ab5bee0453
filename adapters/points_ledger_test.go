package adapters_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
)

var ledgerT0 = time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)

func TestPointsLedger_GrantIsIdempotentPerReason(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := migratedDB(t, backend)
		ledger := adapters.NewPointsLedger(db.DB)
		ctx := testTimeoutCtx(t)
		first := domain.PointsEntry{Amount: 100, Reason: domain.ReasonSignup, GrantedAt: ledgerT0}

		require.NoError(t, ledger.Grant(ctx, "user-1", first))
		// A redelivery, possibly computed later with another amount: a no-op.
		require.NoError(t, ledger.Grant(ctx, "user-1", domain.PointsEntry{
			Amount: 250, Reason: domain.ReasonSignup, GrantedAt: ledgerT0.Add(time.Hour)}))

		entries, err := ledger.Entries(ctx, "user-1")
		require.NoError(t, err)
		assert.Equal(t, []domain.PointsEntry{first}, entries, "one entry, the first one")
		assert.Equal(t, 100, domain.Balance(entries))
		assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM points_entries`))
	})
}

func TestPointsLedger_EntriesOrderAndBalance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := migratedDB(t, backend)
		ledger := adapters.NewPointsLedger(db.DB)
		ctx := testTimeoutCtx(t)
		cest := time.FixedZone("CEST", 2*60*60)
		signup := domain.PointsEntry{Amount: 100, Reason: domain.ReasonSignup, GrantedAt: ledgerT0}
		referralA := domain.PointsEntry{Amount: 25, Reason: "referral-a", GrantedAt: ledgerT0.Add(time.Minute)}
		referralB := domain.PointsEntry{Amount: 25, Reason: "referral-b", GrantedAt: ledgerT0.Add(time.Minute)}
		penalty := domain.PointsEntry{Amount: -30, Reason: "penalty", GrantedAt: ledgerT0.Add(time.Hour)}
		other := domain.PointsEntry{Amount: 7, Reason: domain.ReasonSignup, GrantedAt: ledgerT0.Add(-time.Hour)}

		// Granted out of order, one in another time zone.
		for _, e := range []domain.PointsEntry{penalty, referralB, signup} {
			require.NoError(t, ledger.Grant(ctx, "user-1", e))
		}
		referralAInCEST := referralA
		referralAInCEST.GrantedAt = referralA.GrantedAt.In(cest)
		require.NoError(t, ledger.Grant(ctx, "user-1", referralAInCEST))
		require.NoError(t, ledger.Grant(ctx, "user-2", other))

		entries, err := ledger.Entries(ctx, "user-1")
		require.NoError(t, err)
		assert.Equal(t, []domain.PointsEntry{signup, referralA, referralB, penalty}, entries,
			"oldest first, ties by reason, times in UTC")
		assert.Equal(t, 120, domain.Balance(entries))

		entries, err = ledger.Entries(ctx, "user-2")
		require.NoError(t, err)
		assert.Equal(t, []domain.PointsEntry{other}, entries, "each user has their own ledger")
		assert.Equal(t, 7, domain.Balance(entries))
	})
}

func TestPointsLedger_UnknownUserHasAnEmptyLedger(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := migratedDB(t, backend)
		ledger := adapters.NewPointsLedger(db.DB)

		entries, err := ledger.Entries(testTimeoutCtx(t), "nobody")
		require.NoError(t, err)
		assert.NotNil(t, entries, "an empty list, not null, in JSON")
		assert.Empty(t, entries)
		assert.Zero(t, domain.Balance(entries))
	})
}
