package watermillsql_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/internal/testenv"
)

// TestPubSub runs Watermill's universal pub/sub suite on this package's
// watermill-sql adapters, as the sql transport uses them on each database:
// SQLiteSchema on SQLite, QueueSchema on PostgreSQL and MySQL.
func TestPubSub(t *testing.T) {
	for _, backend := range testenv.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			db := testenv.MigratedDB(t, backend).DB
			features := tests.Features{
				ConsumerGroups:      true,
				ExactlyOnceDelivery: false, // an ack that fails after the handler succeeded redelivers
				GuaranteedOrder:     true,
				// QueueSchema: subscribers of one group share its rows (SKIP LOCKED).
				GuaranteedOrderWithSingleSubscriber: backend.Name != "sqlite",
				Persistent:                          true,
				// The SQL subscribers poll, so keep the suite's volumes modest on 2 cores.
				ForceShort: true,
			}
			newPubSub := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
				publisher, err := wsql.NewPublisher(wsql.BeginnerFromStdSQL(db), wsql.PublisherConfig{
					SchemaAdapter:        watermillsql.SchemaAdapter(db),
					AutoInitializeSchema: true,
				}, watermill.NopLogger{})
				require.NoError(t, err)
				subscriber, err := watermillsql.NewSQLSubscriber(db, group, watermill.NopLogger{})
				require.NoError(t, err)
				return publisher, subscriber
			}
			tests.TestPubSub(t, features,
				func(t *testing.T) (message.Publisher, message.Subscriber) { return newPubSub(t, "") },
				newPubSub)
		})
	}
}

var (
	_ wsql.SchemaAdapter  = watermillsql.SQLiteSchema{}
	_ wsql.OffsetsAdapter = watermillsql.SQLiteOffsetsAdapter{}
	_ wsql.SchemaAdapter  = watermillsql.QueueSchema{}
	_ wsql.OffsetsAdapter = watermillsql.QueueOffsetsAdapter{}
)
