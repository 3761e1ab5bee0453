package adapters_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/internal/testenv"
)

// TestSQLTransportPubSub runs Watermill's universal pub/sub suite on the SQL
// transport as the service configures it on each database, with this
// package's watermill-sql adapters: SQLiteSchema on SQLite, QueueSchema on
// PostgreSQL and MySQL.
func TestSQLTransportPubSub(t *testing.T) {
	for _, backend := range testenv.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			db := migratedDB(t, backend).DB
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
				transport, err := adapters.NewTransport(adapters.TransportConfig{Kind: adapters.TransportSQL, DB: db})
				require.NoError(t, err)
				subscriber, err := adapters.NewSQLSubscriber(db, group, watermill.NopLogger{})
				require.NoError(t, err)
				return transport.Publisher, subscriber
			}
			tests.TestPubSub(t, features,
				func(t *testing.T) (message.Publisher, message.Subscriber) { return newPubSub(t, "") },
				newPubSub)
		})
	}
}

var (
	_ wsql.SchemaAdapter  = adapters.SQLiteSchema{}
	_ wsql.OffsetsAdapter = adapters.SQLiteOffsetsAdapter{}
	_ wsql.SchemaAdapter  = adapters.QueueSchema{}
	_ wsql.OffsetsAdapter = adapters.QueueOffsetsAdapter{}
)
