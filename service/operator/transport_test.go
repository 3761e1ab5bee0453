package operator

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/ports/messages"
	"github.com/onboard/onboard/service"
)

// On PUBSUB=sql, `transport teardown` drops the tables of the database's
// namespace, a line per table under the count, and leaves the
// application's own tables and those of another namespace; run again, it
// finds nothing.
func TestTransportTeardown_SQLDropsTheNamespaceTables(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		ctx := testenv.Context(t)
		dbURL := backend.URL(t)
		cfg, err := service.LoadConfig(func(name string) string {
			return map[string]string{"DATABASE_URL": dbURL, "PUBSUB": transport.KindSQL}[name]
		})
		require.NoError(t, err)
		db, err := sqldb.Open(ctx, dbURL, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		namespace, err := service.DeploymentNamespace(ctx, cfg, db)
		require.NoError(t, err)
		other := "other-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:8]
		h := messages.Topology().Handlers[0]
		for _, ns := range []string{namespace, other} {
			tr, err := transport.NewTransport(cfg.Transport(db, ns))
			require.NoError(t, err)
			sub, err := tr.Subscriber(h.Handler, h.Topic)
			require.NoError(t, err)
			require.NoError(t, tr.Publisher.Publish(h.Topic, message.NewMessage(uuid.NewString(), []byte(`{}`))))
			require.NoError(t, sub.Close())
			require.NoError(t, tr.Close())
		}
		table := func(ns string) string {
			return watermillsql.MessagesTable(db, transport.NamespacedTopic(ns, h.Topic))
		}
		tdb := testenv.NewDB(db)
		exists := func(name string) bool {
			_, err := db.ExecContext(ctx, "SELECT 1 FROM "+tdb.Quote(name)+" WHERE 1 = 0")
			if sqldb.Of(db).IsMissingTable(err) {
				return false
			}
			require.NoError(t, err, name)
			return true
		}
		require.True(t, exists(table(namespace)))

		var out bytes.Buffer
		require.NoError(t, Run(ctx, cfg, []string{"transport", "teardown"}, &out, &out))
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		assert.Equal(t, "removed from namespace "+namespace+" on PUBSUB=sql:", lines[0])
		assert.Equal(t, "  tables: 4", lines[1], "the handler's topic and the poison topic: two tables each")
		assert.Contains(t, lines[2:], "    "+table(namespace))
		assert.Len(t, lines, 6)
		assert.False(t, exists(table(namespace)), "the namespace's table is dropped")
		assert.True(t, exists(table(other)), "another namespace's table is kept")
		assert.True(t, exists("events"), "the application's tables are kept")

		out.Reset()
		require.NoError(t, Run(ctx, cfg, []string{"transport", "teardown"}, &out, &out))
		assert.Equal(t, "namespace "+namespace+" holds nothing on PUBSUB=sql: nothing to remove\n", out.String())
	})
}

// On gochannel, nothing outlives the service.
func TestTransportTeardown_GoChannelHasNothing(t *testing.T) {
	cfg, err := service.LoadConfig(func(name string) string {
		return map[string]string{"DATABASE_URL": testenv.SQLiteDatabase(t), "PUBSUB": transport.KindGoChannel}[name]
	})
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, Run(testenv.Context(t), cfg, []string{"transport", "teardown", "-force"}, &out, &out))
	assert.Equal(t, "PUBSUB=gochannel keeps its messages in the service's memory alone: nothing to remove\n", out.String())
}
