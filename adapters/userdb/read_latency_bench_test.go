package userdb_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/onboard/onboard/adapters/userdb"
	"github.com/onboard/onboard/internal/testenv"
)

// readUsersPerKind is how many users of each kind, sealed and plain, the
// reads go round: their rows share one table, as in a database that has
// both.
const readUsersPerKind = 200

// BenchmarkUserByID_SealedVsPlain: GET /users/{id}'s read of the users
// read model (UserReadModel.UserByID), on each database, of rows sealed
// under their users' keys and of plain rows, as an older version wrote
// them (no key: today's cost before encryption, its join finding no key),
// interleaved in one run: each iteration reads one of each, in turns
// first. It reports each kind's p50 and p99 and the ratio of the p99s
// (the target: at most 1.10). A few thousand iterations make a
// p99; the default benchmark time gives them:
//
//	go test -run '^$' -bench UserByID_SealedVsPlain ./adapters/
func BenchmarkUserByID_SealedVsPlain(b *testing.B) {
	forEachBackendB(b, func(b *testing.B, db *testenv.DB) {
		store := testenv.NewUserStore(b, db.DB, slog.New(slog.DiscardHandler))
		sealed := registerBenchUsers(b, store, "sealed", readUsersPerKind)
		plain := registerBenchUsers(b, store, "plain", readUsersPerKind)
		ctx := context.Background()
		for id, email := range plain {
			if _, err := db.ExecContext(ctx, db.Rebind(`UPDATE users SET name = ?, email = ? WHERE user_id = ?`),
				"Bench User", email, id); err != nil {
				b.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, db.Rebind(`DELETE FROM user_keys WHERE user_id = ?`), id); err != nil {
				b.Fatal(err)
			}
		}
		if n := db.Count(b, `SELECT count(*) FROM user_keys`); n != readUsersPerKind {
			b.Fatalf("%d users have a key, want the %d sealed ones", n, readUsersPerKind)
		}

		sealedIDs, plainIDs := sortedKeys(sealed), sortedKeys(plain)
		read := func(ids []string, emails map[string]string, i int) time.Duration {
			id := ids[i%len(ids)]
			start := time.Now()
			u, err := store.ReadModel().UserByID(ctx, id)
			elapsed := time.Since(start)
			if err != nil {
				b.Fatal(err)
			}
			if u.Name != "Bench User" || u.Email != emails[id] {
				b.Fatalf("user %s read as %q <%s>, want %q <%s>", id, u.Name, u.Email, "Bench User", emails[id])
			}
			return elapsed
		}
		var sealedTimes, plainTimes []time.Duration
		i := 0
		for b.Loop() {
			if i%2 == 0 {
				sealedTimes = append(sealedTimes, read(sealedIDs, sealed, i))
				plainTimes = append(plainTimes, read(plainIDs, plain, i))
			} else {
				plainTimes = append(plainTimes, read(plainIDs, plain, i))
				sealedTimes = append(sealedTimes, read(sealedIDs, sealed, i))
			}
			i++
		}
		sealedP99, plainP99 := testenv.Percentile(sealedTimes, 0.99), testenv.Percentile(plainTimes, 0.99)
		b.ReportMetric(testenv.Milliseconds(testenv.Percentile(sealedTimes, 0.50)), "sealed-p50-ms")
		b.ReportMetric(testenv.Milliseconds(sealedP99), "sealed-p99-ms")
		b.ReportMetric(testenv.Milliseconds(testenv.Percentile(plainTimes, 0.50)), "plain-p50-ms")
		b.ReportMetric(testenv.Milliseconds(plainP99), "plain-p99-ms")
		b.ReportMetric(float64(sealedP99)/float64(plainP99), "sealed/plain-p99")
	})
}

// registerBenchUsers registers n users through the store, sealed as any
// new user, and returns their addresses by id.
func registerBenchUsers(b *testing.B, store *userdb.UserStore, prefix string, n int) map[string]string {
	b.Helper()
	emails := make(map[string]string, n)
	for i := range n {
		id, email := uuid.Must(uuid.NewV7()).String(), fmt.Sprintf("%s%d@example.com", prefix, i)
		if err := store.Register(context.Background(), newStoreUser(b, id, "Bench User", email), benchHash, nil); err != nil {
			b.Fatal(err)
		}
		emails[id] = email
	}
	return emails
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
