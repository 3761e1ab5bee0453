package transport_test

import (
	"slices"
	"testing"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/internal/testenv"
)

// TestSQLTransport_RowCommittedLastIsDelivered: concurrent publishers commit
// in any order. The row that took the lower offset but committed last must
// still be delivered, and must not hold back the rows committed before it.
func TestSQLTransport_RowCommittedLastIsDelivered(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		if backend.Name == "sqlite" {
			t.Skip("SQLite has one writer at a time: its commits cannot interleave")
		}
		db := testenv.MigratedDB(t, backend)
		tr := newSQLTransport(t, db)
		topic := testenv.Name("events")
		messages := subscribe(t, subscriber(t, tr, "Late", topic), topic)

		tx, err := db.BeginTx(testenv.Context(t), nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = tx.Rollback() })
		inTx, err := wsql.NewPublisher(wsql.TxFromStdSQL(tx), wsql.PublisherConfig{
			SchemaAdapter: watermillsql.QueueSchema{MySQL: backend.Name == "mysql"},
		}, nil)
		require.NoError(t, err)
		first := newTestMessage(`{"n":1}`)
		require.NoError(t, inTx.Publish(topic, first), "the first row takes the lower offset")

		second := newTestMessage(`{"n":2}`)
		waitPublished(t, publishAsync(tr, topic, second))
		got := receive(t, messages, "the row committed first")
		require.Equal(t, second.UUID, got.UUID)
		got.Ack()

		require.NoError(t, tx.Commit())
		got = receive(t, messages, "the row committed last")
		assert.Equal(t, first.UUID, got.UUID)
		got.Ack()
	})
}

func TestTransport_SubscriberInitializesDurableStorage(t *testing.T) {
	// For each durable transport, Subscriber returns with the topic's storage
	// in place: two groups both get a message published right after.
	forEachTransport(t, durableKinds, func(t *testing.T, tc transportCase) {
		groups := []string{"First", "Second"}
		tr := newTestTransport(t, tc)
		topic := uniqueTopic(t, tc.kind, groups...)
		subs := make([]message.Subscriber, len(groups))
		for i, group := range groups {
			subs[i] = subscriber(t, tr, group, topic)
		}
		msgs := []*message.Message{newTestMessage(`{"i":1}`), newTestMessage(`{"i":2}`)}
		waitPublished(t, publishAsync(tr, topic, msgs...))

		for i, sub := range subs {
			messages := subscribe(t, sub, topic)
			var got []string
			for range msgs {
				m := receive(t, messages, groups[i]+"'s message")
				m.Ack()
				got = append(got, m.UUID)
			}
			slices.Sort(got)
			want := []string{msgs[0].UUID, msgs[1].UUID}
			slices.Sort(want)
			assert.Equal(t, want, got, groups[i])
		}
	})
}

// Two deployments on one broker or database, in two namespaces: a handler
// of one never receives what the other publishes, even under the same
// handler name and topic.
func TestTransport_NamespacesDoNotShareQueues(t *testing.T) {
	forEachTransport(t, durableKinds, func(t *testing.T, tc transportCase) {
		cfg := transport.Config{Kind: tc.kind}
		switch tc.kind {
		case transport.KindSQL:
			cfg.DB = testenv.MigratedDB(t, tc.backend).DB
		case transport.KindAMQP:
			cfg.AMQPURL = testenv.URL(t, testenv.AMQPURLVar)
		case transport.KindNATS:
			cfg.NATSURL = testenv.URL(t, testenv.NATSURLVar)
		case transport.KindRedis:
			cfg.RedisURL = testenv.URL(t, testenv.RedisURLVar)
		case transport.KindGoogleCloud:
			cfg = googleCloudConfig(t)
		case transport.KindSQS:
			cfg = sqsConfig(t)
		}
		topic := testenv.Name("events")
		const handler = "SameHandler"
		messagesOf := map[string]<-chan *message.Message{}
		transports := map[string]*transport.Transport{}
		for _, ns := range []string{testNamespace(t, tc.kind), testNamespace(t, tc.kind)} {
			cfg.Namespace = ns
			tr, err := transport.NewTransport(cfg)
			require.NoError(t, err)
			t.Cleanup(func() { assert.NoError(t, tr.Close()) })
			if tc.kind == transport.KindAMQP {
				physical := tr.Topic(topic)
				t.Cleanup(func() { deleteAMQPTopology(t, physical, handler) })
			}
			transports[ns], messagesOf[ns] = tr, subscribe(t, subscriber(t, tr, handler, topic), topic)
		}
		for ns, tr := range transports {
			msg := newTestMessage(ns)
			require.NoError(t, tr.Publisher.Publish(topic, msg))
		}
		for ns, messages := range messagesOf {
			got := receive(t, messages, "the message of namespace "+ns)
			got.Ack()
			assert.Equal(t, ns, string(got.Payload), "only its own namespace's message")
			select {
			case other := <-messages:
				t.Errorf("namespace %s received %q", ns, other.Payload)
			case <-time.After(500 * time.Millisecond): // the other message would have arrived by now
			}
		}
	})
}
