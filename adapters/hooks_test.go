package adapters_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/adapters/dedup"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/telemetry"
	"github.com/onboard/onboard/internal/testenv"
)

func newTestMetrics(t *testing.T) (*telemetry.Metrics, *prometheus.Registry) {
	t.Helper()
	m, err := telemetry.NewMetrics()
	require.NoError(t, err)
	return m, m.Registry()
}

// A grant is counted once it is written: a repeated grant writes nothing.
// A claim is counted when taken over from a holder whose lease ran out.
func TestMetrics_CountGrantsAndTakenOverClaims(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.MigratedDB(t, backend)
		m, registry := newTestMetrics(t)
		ctx := testenv.Context(t)
		ledger := adapters.NewPointsLedger(db.DB).OnGrant(m.CountPointsGrant)
		entry := domain.PointsEntry{Amount: 100, Reason: domain.ReasonSignup, GrantedAt: time.Now()}
		require.NoError(t, ledger.Grant(ctx, "user-1", entry))
		require.NoError(t, ledger.Grant(ctx, "user-1", entry))
		require.NoError(t, ledger.Grant(ctx, "user-2", entry))

		dedup := dedup.NewDeduplicator(db.DB, nil).OnTakeOver(m.CountClaimTakenOver)
		_, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO processed_messages (handler, message_key, state, claimed_until_ms)
			VALUES ('H', 'crashed', 'claimed', ?)`), time.Now().Add(-time.Second).UnixMilli())
		require.NoError(t, err)
		effect := func(context.Context) error { return nil }
		require.NoError(t, dedup.Once(ctx, event.Claim{Handler: "H", Key: "crashed"}, effect))
		require.NoError(t, dedup.Once(ctx, event.Claim{Handler: "H", Key: "fresh"}, effect))

		require.NoError(t, testutil.GatherAndCompare(registry, strings.NewReader(`
# HELP onboard_dedup_claims_taken_over_total Claims of an effect (an email) taken over after their lease ran out, by handler.
# TYPE onboard_dedup_claims_taken_over_total counter
onboard_dedup_claims_taken_over_total{handler="H"} 1
# HELP onboard_points_grants_total Points ledger entries written, by reason; a repeated grant is not counted.
# TYPE onboard_points_grants_total counter
onboard_points_grants_total{reason="signup"} 2
`), "onboard_dedup_claims_taken_over_total", "onboard_points_grants_total"))
	})
}
