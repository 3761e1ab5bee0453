package adapters_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
)

var ledgerT0 = time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)

func TestPointsLedger_GrantIsIdempotentPerReason(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.MigratedDB(t, backend)
		ledger := adapters.NewPointsLedger(db.DB)
		ctx := testenv.Context(t)
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
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.MigratedDB(t, backend)
		ledger := adapters.NewPointsLedger(db.DB)
		ctx := testenv.Context(t)
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
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.MigratedDB(t, backend)
		ledger := adapters.NewPointsLedger(db.DB)

		entries, err := ledger.Entries(testenv.Context(t), "nobody")
		require.NoError(t, err)
		assert.NotNil(t, entries, "an empty list, not null, in JSON")
		assert.Empty(t, entries)
		assert.Zero(t, domain.Balance(entries))
	})
}

// On the sql transport a grant made while handling a message is written in
// the transaction that acks it: nothing commits before the ack (a nacked
// message comes again in the same transaction, whose second grant writes
// nothing), and the grant stays, once.
func TestPointsLedger_GrantCommitsWithTheAck(t *testing.T) {
	for _, backend := range testenv.Backends() {
		if backend.Name == "sqlite" { // its subscriber holds no transaction
			continue
		}
		t.Run(backend.Name, func(t *testing.T) {
			db := testenv.MigratedDB(t, backend)
			var told atomic.Int32
			ledger := adapters.NewPointsLedger(db.DB).OnGrant(func(string) { told.Add(1) })
			sub, err := watermillsql.NewSQLSubscriber(db.DB, "ledger", watermill.NopLogger{})
			require.NoError(t, err)
			t.Cleanup(func() { _ = sub.Close() })
			topic := testenv.Name("grants")
			require.NoError(t, sub.SubscribeInitialize(topic))
			pub, err := wsql.NewPublisher(wsql.BeginnerFromStdSQL(db.DB),
				wsql.PublisherConfig{SchemaAdapter: watermillsql.SchemaAdapter(db.DB)}, watermill.NopLogger{})
			require.NoError(t, err)
			require.NoError(t, pub.Publish(topic, message.NewMessage(uuid.NewString(), []byte("{}"))))
			messages, err := sub.Subscribe(testenv.Context(t), topic)
			require.NoError(t, err)
			entry := domain.PointsEntry{Amount: 100, Reason: domain.ReasonSignup, GrantedAt: ledgerT0}

			receive := func() *message.Message {
				select {
				case msg := <-messages:
					return msg
				case <-time.After(10 * time.Second):
					t.Fatal("no message")
					return nil
				}
			}
			first := receive()
			require.NoError(t, ledger.Grant(first.Context(), "user-1", entry))
			assert.Zero(t, db.Count(t, `SELECT count(*) FROM points_entries`), "not committed before the ack")
			if backend.Name == "postgres" {
				assert.Zero(t, told.Load(), "the grant goes with the COMMIT, and is told then")
			}
			first.Nack()
			again := receive()
			assert.Equal(t, first.UUID, again.UUID, "the nacked message comes again")
			assert.Zero(t, db.Count(t, `SELECT count(*) FROM points_entries`), "still not committed after the nack")
			require.NoError(t, ledger.Grant(again.Context(), "user-1", entry))
			again.Ack()
			require.Eventually(t, func() bool { return db.Count(t, `SELECT count(*) FROM points_entries`) == 1 },
				10*time.Second, 10*time.Millisecond, "committed with the ack")
			require.Eventually(t, func() bool { return told.Load() == 1 }, 10*time.Second, 10*time.Millisecond,
				"told once: the redelivery's grant wrote nothing")
		})
	}
}
