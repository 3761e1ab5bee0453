package transport_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/internal/testenv"
)

// transportWait bounds every wait of the transport tests.
const transportWait = 30 * time.Second

// durableKinds are the transports that keep messages for a handler whose
// subscription exists, while it is not subscribed.
var durableKinds = []string{transport.KindSQL, transport.KindAMQP, transport.KindNATS, transport.KindRedis,
	transport.KindGoogleCloud, transport.KindSQS}

// transportCase is a transport of one kind; the sql one on one database backend.
type transportCase struct {
	kind    string
	backend testenv.Backend // sql only
	// queueType is AMQP_QUEUE_TYPE, amqp only; quorum queues get a
	// namespace of their own, as a queue's type cannot change.
	queueType string
}

// forEachTransport runs test once per transport of the kinds, as subtests
// named for them; the sql transport once per database backend, as subtests
// sql/sqlite, sql/postgres and sql/mysql.
func forEachTransport(t *testing.T, kinds []string, test func(t *testing.T, tc transportCase)) {
	t.Helper()
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			if kind != transport.KindSQL {
				test(t, transportCase{kind: kind})
				return
			}
			testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
				test(t, transportCase{kind: kind, backend: backend})
			})
		})
	}
}

// newTestTransport builds a transport of the case on its test service and
// closes it when the test ends.
func newTestTransport(t *testing.T, tc transportCase) *transport.Transport {
	t.Helper()
	var (
		tr  *transport.Transport
		err error
	)
	switch tc.kind {
	case transport.KindGoChannel:
		tr, err = transport.NewTransport(transport.Config{Kind: tc.kind})
	case transport.KindSQL:
		return newSQLTransport(t, testenv.MigratedDB(t, tc.backend))
	case transport.KindAMQP:
		cfg := transport.Config{Kind: tc.kind, AMQPURL: testenv.URL(t, testenv.AMQPURLVar), AMQPQueueType: tc.queueType}
		if tc.queueType == transport.AMQPQueueQuorum {
			cfg.Namespace = testNamespace(t, tc.kind)
		}
		tr, err = transport.NewTransport(cfg)
	case transport.KindNATS:
		tr, err = transport.NewTransport(natsConfig(t))
	case transport.KindRedis:
		redisURL, ns := testenv.RedisNamespace(t)
		tr, err = transport.NewTransport(transport.Config{Kind: tc.kind, RedisURL: redisURL, Namespace: ns})
	case transport.KindGoogleCloud:
		tr, err = transport.NewTransport(googleCloudConfig(t))
	case transport.KindSQS:
		tr, err = transport.NewTransport(sqsConfig(t))
	default:
		t.Fatalf("no test service for transport %q", tc.kind)
	}
	require.NoError(t, err)
	require.NotNil(t, tr)
	t.Cleanup(func() { assert.NoError(t, tr.Close(), "close transport") })
	return tr
}

// natsConfig is the nats transport on the test server, in a namespace of
// the test's own whose streams are deleted when it ends.
func natsConfig(t *testing.T) transport.Config {
	t.Helper()
	return transport.Config{
		Kind: transport.KindNATS, NATSURL: testenv.URL(t, testenv.NATSURLVar),
		Namespace: testNamespace(t, transport.KindNATS),
	}
}

// deleteNATSStreams deletes the streams of a namespace, and with them
// their consumers; it logs what it cannot delete.
func deleteNATSStreams(t testing.TB, namespace string) {
	t.Helper()
	conn, err := nats.Connect(testenv.URL(t, testenv.NATSURLVar))
	if err != nil {
		t.Logf("delete the NATS streams of %s: %v", namespace, err)
		return
	}
	defer conn.Close()
	js, err := jetstream.New(conn)
	if err != nil {
		t.Logf("delete the NATS streams of %s: %v", namespace, err)
		return
	}
	for _, stream := range []string{namespace + "_messages", namespace + "_poison"} {
		ctx, cancel := context.WithTimeout(context.Background(), transportWait)
		if err := js.DeleteStream(ctx, stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Logf("delete NATS stream %s: %v", stream, err)
		}
		cancel()
	}
}

// natsJetStream is the test's own connection to the test server.
func natsJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	conn, err := nats.Connect(testenv.URL(t, testenv.NATSURLVar))
	require.NoError(t, err, "connect to %s", testenv.NATSURLVar)
	t.Cleanup(conn.Close)
	js, err := jetstream.New(conn)
	require.NoError(t, err)
	return js
}

// googleCloudConfig is the googlecloud transport on the test emulator, in
// a namespace of the test's own.
func googleCloudConfig(t *testing.T) transport.Config {
	t.Helper()
	return transport.Config{
		Kind: transport.KindGoogleCloud, GoogleCloudProject: testenv.GoogleCloudProject,
		PubSubEmulatorHost: testenv.URL(t, testenv.PubSubEmulatorVar),
		Namespace:          testNamespace(t, transport.KindGoogleCloud),
	}
}

// sqsConfig is the sqs transport on the test emulator, in a namespace of
// the test's own.
func sqsConfig(t *testing.T) transport.Config {
	t.Helper()
	return transport.Config{
		Kind: transport.KindSQS, AWSRegion: testenv.AWSRegion, AWSEndpointURL: testenv.URL(t, testenv.SQSEndpointVar),
		AWSAccessKeyID: testenv.AWSTestKey, AWSSecretAccessKey: testenv.AWSTestKey,
		Namespace: testNamespace(t, transport.KindSQS),
	}
}

// newTransportOf builds the transport of cfg and closes it when the test ends.
func newTransportOf(t testing.TB, cfg transport.Config) *transport.Transport {
	t.Helper()
	tr, err := transport.NewTransport(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, tr.Close(), "close transport") })
	return tr
}

// newSQLTransport builds the SQL transport on db and closes it when the test ends.
func newSQLTransport(t *testing.T, db *testenv.DB) *transport.Transport {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			testenv.LogOldTransactions(t, db.DB)
		}
	})
	// On PostgreSQL, as the service does: subscribers woken by notifications.
	var wakeup *watermillsql.Wakeup
	if db.Dialect == "postgres" {
		var err error
		wakeup, err = watermillsql.NewWakeup(db.DB)
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, wakeup.Close()) })
	}
	tr, err := transport.NewTransport(transport.Config{Kind: transport.KindSQL, DB: db.DB, Wakeup: wakeup})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, tr.Close(), "close transport") })
	return tr
}

// testNamespace is a namespace of this test alone; on RabbitMQ, its poison
// queue and exchange are deleted when the test ends, on NATS its streams,
// on Redis its keys.
func testNamespace(t testing.TB, kind string) string {
	t.Helper()
	if kind == transport.KindRedis {
		_, ns := testenv.RedisNamespace(t)
		return ns
	}
	ns := "t" + strings.ReplaceAll(uuid.NewString(), "-", "")[:10]
	switch kind {
	case transport.KindAMQP:
		poison := transport.NamespacedTopic(ns, transport.PoisonTopic)
		t.Cleanup(func() { deleteAMQPTopology(t, poison, "") })
	case transport.KindNATS:
		t.Cleanup(func() { deleteNATSStreams(t, ns) })
	}
	return ns
}

// deleteAMQPTopology removes the exchange and queues a test topic created on
// RabbitMQ: topic_group for each group, or the queue named as the topic
// for an empty group.
func deleteAMQPTopology(t testing.TB, topic string, groups ...string) {
	t.Helper()
	conn, err := amqp091.Dial(testenv.URL(t, testenv.AMQPURLVar))
	if err != nil {
		t.Logf("clean up RabbitMQ topic %s: %v", topic, err)
		return
	}
	defer func() { _ = conn.Close() }()
	ch, err := conn.Channel()
	if err != nil {
		t.Logf("clean up RabbitMQ topic %s: %v", topic, err)
		return
	}
	defer func() { _ = ch.Close() }()
	for _, group := range groups {
		queue := topic
		if group != "" {
			queue += "_" + group
		}
		if _, err := ch.QueueDelete(queue, false, false, false); err != nil {
			t.Logf("delete queue %s: %v", queue, err)
			return // the channel is closed after an error
		}
	}
	if err := ch.ExchangeDelete(topic, false, false); err != nil {
		t.Logf("delete exchange %s: %v", topic, err)
	}
}

// uniqueTopic returns a fresh topic, whose RabbitMQ queues for groups are
// deleted when the test ends.
func uniqueTopic(t *testing.T, kind string, groups ...string) string {
	t.Helper()
	topic := testenv.Name("events")
	if kind == transport.KindAMQP {
		t.Cleanup(func() { deleteAMQPTopology(t, topic, groups...) })
	}
	return topic
}

func subscriber(t testing.TB, tr *transport.Transport, group, topic string) message.Subscriber {
	t.Helper()
	sub, err := tr.Subscriber(group, topic)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, sub.Close(), "close subscriber %s", group) })
	return sub
}

// subscribe starts consuming; the subscription ends with the test.
func subscribe(t testing.TB, sub message.Subscriber, topic string) <-chan *message.Message {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	messages, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	return messages
}

// collector acks and records every message of a subscription.
type collector struct {
	mu       sync.Mutex
	payloads map[string]string // by message UUID
	count    int
}

func collect(messages <-chan *message.Message) *collector {
	c := &collector{payloads: map[string]string{}}
	go func() {
		for msg := range messages {
			c.mu.Lock()
			c.payloads[msg.UUID] = string(msg.Payload)
			c.count++
			c.mu.Unlock()
			msg.Ack()
		}
	}()
	return c
}

func (c *collector) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.payloads)
}

func (c *collector) snapshot() (map[string]string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string, len(c.payloads))
	for k, v := range c.payloads {
		out[k] = v
	}
	return out, c.count
}

// publishAsync publishes in the background: gochannel's Publish blocks until
// every subscriber acked.
func publishAsync(tr *transport.Transport, topic string, msgs ...*message.Message) <-chan error {
	done := make(chan error, 1)
	go func() { done <- tr.Publisher.Publish(topic, msgs...) }()
	return done
}

func waitPublished(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		require.NoError(t, err, "publish")
	case <-time.After(transportWait):
		t.Fatal("publish did not return")
	}
}

func receive(t *testing.T, messages <-chan *message.Message, what string) *message.Message {
	t.Helper()
	select {
	case msg, ok := <-messages:
		require.True(t, ok, "subscription closed while waiting for %s", what)
		return msg
	case <-time.After(transportWait):
		t.Fatalf("%s was not delivered within %s", what, transportWait)
		return nil
	}
}

func newTestMessage(payload string) *message.Message {
	msg := message.NewMessage(uuid.NewString(), []byte(payload))
	msg.Metadata.Set("test", payload)
	return msg
}

func TestTransport_Contract(t *testing.T) {
	forEachTransport(t, transport.Kinds, testContract)
	t.Run("amqp/quorum", func(t *testing.T) {
		testContract(t, transportCase{kind: transport.KindAMQP, queueType: transport.AMQPQueueQuorum})
	})
}

// testContract is what every transport does.
func testContract(t *testing.T, tc transportCase) {
	t.Run("each group gets every message", func(t *testing.T) {
		testEachGroupGetsEveryMessage(t, tc)
	})
	t.Run("message published before Subscribe is delivered", func(t *testing.T) {
		if tc.kind == transport.KindGoChannel {
			t.Skip("gochannel is not durable: it only delivers to running subscriptions")
		}
		testPublishedBeforeSubscribe(t, tc)
	})
	t.Run("nacked message is redelivered", func(t *testing.T) {
		testNackRedelivers(t, tc)
	})
	t.Run("ready", func(t *testing.T) {
		tr := newTestTransport(t, tc)
		ctx, cancel := context.WithTimeout(context.Background(), transportWait)
		defer cancel()
		assert.NoError(t, tr.Ready(ctx))
	})
}

func testEachGroupGetsEveryMessage(t *testing.T, tc transportCase) {
	const n = 20
	groups := []string{"GroupA", "GroupB"}
	tr := newTestTransport(t, tc)
	topic := uniqueTopic(t, tc.kind, groups...)
	collectors := make([]*collector, len(groups))
	for i, group := range groups {
		collectors[i] = collect(subscribe(t, subscriber(t, tr, group, topic), topic))
	}

	want := map[string]string{}
	var done []<-chan error
	for i := range n {
		msg := newTestMessage(fmt.Sprintf(`{"n":%d}`, i))
		want[msg.UUID] = string(msg.Payload)
		done = append(done, publishAsync(tr, topic, msg))
	}
	for _, d := range done {
		waitPublished(t, d)
	}

	for i, c := range collectors {
		require.Eventually(t, func() bool { return c.distinct() >= n }, transportWait, 10*time.Millisecond,
			"%s got %d of %d messages", groups[i], c.distinct(), n)
		got, _ := c.snapshot()
		assert.Equal(t, want, got, "%s got every message, with its payload", groups[i])
	}
}

func testPublishedBeforeSubscribe(t *testing.T, tc transportCase) {
	groups := []string{"Early"}
	tr := newTestTransport(t, tc)
	topic := uniqueTopic(t, tc.kind, groups...)
	sub := subscriber(t, tr, "Early", topic)

	msg := newTestMessage(`{"early":true}`)
	waitPublished(t, publishAsync(tr, topic, msg))

	got := receive(t, subscribe(t, sub, topic), "the message published before Subscribe")
	got.Ack()
	assert.Equal(t, msg.UUID, got.UUID)
	assert.Equal(t, string(msg.Payload), string(got.Payload))
	assert.Equal(t, "{\"early\":true}", got.Metadata.Get("test"))
}

func testNackRedelivers(t *testing.T, tc transportCase) {
	groups := []string{"Nacker"}
	tr := newTestTransport(t, tc)
	topic := uniqueTopic(t, tc.kind, groups...)
	messages := subscribe(t, subscriber(t, tr, "Nacker", topic), topic)

	msg := newTestMessage(`{"nack":"me"}`)
	published := publishAsync(tr, topic, msg)

	first := receive(t, messages, "the message")
	require.Equal(t, msg.UUID, first.UUID)
	first.Nack()
	again := receive(t, messages, "the nacked message again")
	assert.Equal(t, msg.UUID, again.UUID, "the nacked message comes back")
	assert.Equal(t, string(msg.Payload), string(again.Payload))
	again.Ack()
	waitPublished(t, published)

	// Once acked, it is done: the next delivery is the next message.
	next := newTestMessage(`{"next":true}`)
	published = publishAsync(tr, topic, next)
	got := receive(t, messages, "the next message")
	got.Ack()
	assert.Equal(t, next.UUID, got.UUID, "the acked message is not delivered again")
	waitPublished(t, published)
}

// Ready asks the broker, and tells a connection that is gone, naming it.
func TestTransport_NotReadyOnceClosed(t *testing.T) {
	for kind, named := range map[string]string{transport.KindNATS: "NATS", transport.KindGoogleCloud: "Pub/Sub"} {
		t.Run(kind, func(t *testing.T) {
			cfg := natsConfig(t)
			if kind == transport.KindGoogleCloud {
				cfg = googleCloudConfig(t)
			}
			tr, err := transport.NewTransport(cfg)
			require.NoError(t, err)
			ctx := testenv.Context(t)
			require.NoError(t, tr.Ready(ctx))
			require.NoError(t, tr.Close())
			assert.ErrorContains(t, tr.Ready(ctx), named)
		})
	}
}
