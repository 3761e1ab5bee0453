package transport_test

import (
	"bytes"
	"context"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/telemetry"
	"github.com/onboard/onboard/internal/testenv"
)

// series gathers a collector into "name{label=value,...}" → value.
func series(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	families, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			value := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			out[f.GetName()+"{"+strings.Join(labels, ",")+"}"] = value
		}
	}
	return out
}

// newBacklog is the service's collector of cfg's backlogs, a reading a
// scrape unless collector says otherwise.
func newBacklog(t *testing.T, cfg transport.BacklogConfig, collector ...telemetry.BacklogConfig) *telemetry.BacklogCollector {
	t.Helper()
	reader, err := transport.NewBacklogReader(cfg)
	require.NoError(t, err)
	c := telemetry.BacklogConfig{CacheFor: time.Nanosecond}
	if len(collector) > 0 {
		c = collector[0]
	}
	c.Reader = reader
	return telemetry.NewBacklogCollector(c)
}

// addRetries stores n messages of handler in the retry queue, the first
// failed age ago.
func addRetries(t *testing.T, db *testenv.DB, handler string, n int, age time.Duration) {
	t.Helper()
	for i := range n {
		_, err := db.ExecContext(testenv.Context(t), db.Rebind(`INSERT INTO message_retries
			(id, handler, topic, message_uuid, payload, metadata, reason, attempts, first_failed_ms, next_attempt_ms)
			VALUES (?, ?, 'events.X', ?, ?, '{}', 'SMTP RCPT TO failed: server answered 451', 1, ?, ?)`),
			testenv.Name("retry"), handler, testenv.Name("msg"), []byte("{}"),
			time.Now().Add(-age).Add(time.Duration(i)*time.Second).UnixMilli(), time.Now().Add(time.Hour).UnixMilli())
		require.NoError(t, err)
	}
}

// On sql, the collector reads the outbox, each handler's queue (messages
// and the age of the oldest), the retry queue and the poison queue.
func TestBacklogCollector_SQL(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.MigratedDB(t, backend)
		tr := newSQLTransport(t, db) // no namespace: the handlers' topics sit beside the outbox
		topic := uniqueTopic(t, transport.KindSQL)
		subscriber(t, tr, "H", topic)
		subscriber(t, tr, transport.OutboxGroup, transport.OutboxTopic)
		cfg := transport.BacklogConfig{Transport: tr, DB: db.DB, Handlers: []transport.HandlerTopic{{Handler: "H", Topic: topic}}}

		assert.Equal(t, map[string]float64{
			"onboard_outbox_pending_messages{}": 0, "onboard_outbox_oldest_age_seconds{}": 0,
			"onboard_handler_backlog_messages{handler=H}": 0, "onboard_handler_backlog_oldest_age_seconds{handler=H}": 0,
			"onboard_retry_queue_messages{handler=H}": 0, "onboard_retry_queue_oldest_age_seconds{handler=H}": 0,
			"onboard_poison_queue_messages{}":   0,
			"onboard_backlog_up{source=outbox}": 1, "onboard_backlog_up{source=handlers}": 1,
			"onboard_backlog_up{source=retry_queue}": 1, "onboard_backlog_up{source=poison_queue}": 1,
		}, series(t, newBacklog(t, cfg)), "all empty")

		require.NoError(t, tr.Publisher.Publish(topic, newTestMessage("a"), newTestMessage("b"), newTestMessage("c")))
		require.NoError(t, tr.Publisher.Publish(transport.OutboxTopic, newTestMessage("o")))
		require.NoError(t, tr.Publisher.Publish(transport.PoisonTopic, newTestMessage("p")))
		addRetries(t, db, "H", 2, time.Minute)
		addRetries(t, db, "Gone", 1, time.Minute) // a handler no longer known still shows
		var got map[string]float64
		require.Eventually(t, func() bool {
			got = series(t, newBacklog(t, cfg))
			return got["onboard_handler_backlog_oldest_age_seconds{handler=H}"] > 0 &&
				got["onboard_outbox_oldest_age_seconds{}"] > 0
		}, transportWait, 20*time.Millisecond, "the ages grow")
		assert.Equal(t, 3.0, got["onboard_handler_backlog_messages{handler=H}"])
		assert.Less(t, got["onboard_handler_backlog_oldest_age_seconds{handler=H}"], 60.0, "by the database's clock")
		assert.Equal(t, 1.0, got["onboard_outbox_pending_messages{}"])
		assert.Equal(t, 1.0, got["onboard_poison_queue_messages{}"])
		assert.Equal(t, 2.0, got["onboard_retry_queue_messages{handler=H}"])
		assert.InDelta(t, 60, got["onboard_retry_queue_oldest_age_seconds{handler=H}"], 5)
		assert.Equal(t, 1.0, got["onboard_retry_queue_messages{handler=Gone}"])

		// Acked: no longer waiting.
		messages := subscribe(t, subscriber(t, tr, "H", topic), topic)
		for range 3 {
			receive(t, messages, "a waiting message").Ack()
		}
		require.Eventually(t, func() bool {
			got = series(t, newBacklog(t, cfg))
			return got["onboard_handler_backlog_messages{handler=H}"] == 0
		}, transportWait, 20*time.Millisecond, "acked messages leave the backlog")
		assert.Zero(t, got["onboard_handler_backlog_oldest_age_seconds{handler=H}"])
	})
}

// A source that cannot be read leaves its series out, counts an error and
// logs one warning, however many scrapes fail; the others go on.
func TestBacklogCollector_FailingSourceDoesNotFailTheScrape(t *testing.T) {
	db := testenv.MigratedDB(t, testenv.Backends()[0])
	tr := newSQLTransport(t, db)
	var logs bytes.Buffer
	c := newBacklog(t, transport.BacklogConfig{
		Transport: tr, DB: db.DB, Handlers: []transport.HandlerTopic{{Handler: "H", Topic: "events.X"}},
	}, telemetry.BacklogConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil)), CacheFor: time.Nanosecond})
	_, err := db.ExecContext(testenv.Context(t), `DROP TABLE message_retries`)
	require.NoError(t, err)

	series(t, c)
	got := series(t, c)
	assert.Equal(t, 0.0, got["onboard_backlog_up{source=retry_queue}"])
	assert.Equal(t, 2.0, got["onboard_backlog_scrape_errors_total{source=retry_queue}"])
	assert.NotContains(t, got, "onboard_retry_queue_messages{handler=H}")
	assert.Equal(t, 1.0, got["onboard_backlog_up{source=outbox}"])
	assert.Contains(t, got, "onboard_handler_backlog_messages{handler=H}", "a table never created holds nothing")
	assert.Equal(t, 1, strings.Count(logs.String(), "level=WARN"), "one warning: %s", logs.String())
	assert.Contains(t, logs.String(), "source=retry_queue")
}

// A reading serves every scrape within CacheFor.
func TestBacklogCollector_CachesAReading(t *testing.T) {
	db := testenv.MigratedDB(t, testenv.Backends()[0])
	tr := newSQLTransport(t, db)
	c := newBacklog(t, transport.BacklogConfig{Transport: tr, DB: db.DB}, telemetry.BacklogConfig{CacheFor: time.Hour})
	assert.Equal(t, 0.0, series(t, c)["onboard_poison_queue_messages{}"])
	require.NoError(t, tr.Publisher.Publish(transport.PoisonTopic, newTestMessage("p")))
	assert.Equal(t, 0.0, series(t, c)["onboard_poison_queue_messages{}"], "the reading of the last hour")
	assert.Equal(t, 1.0, series(t, newBacklog(t, transport.BacklogConfig{Transport: tr, DB: db.DB}))["onboard_poison_queue_messages{}"])
}

// On amqp, a handler's backlog is its queue's ready messages plus those
// its handlers hold here, unacked, and the oldest age is that of the
// oldest held. gochannel keeps nothing to read but the outbox and the
// retry queue, in the database.
func TestBacklogCollector_AMQPAndGoChannel(t *testing.T) {
	db := testenv.MigratedDB(t, testenv.Backends()[0])
	goch := newTestTransport(t, transportCase{kind: transport.KindGoChannel})
	got := series(t, newBacklog(t, transport.BacklogConfig{
		Transport: goch, DB: db.DB, Handlers: []transport.HandlerTopic{{Handler: "H", Topic: "events.X"}},
	}))
	assert.NotContains(t, got, "onboard_handler_backlog_messages{handler=H}")
	assert.NotContains(t, got, "onboard_poison_queue_messages{}")
	assert.Contains(t, got, "onboard_retry_queue_messages{handler=H}")
	assert.Contains(t, got, "onboard_outbox_pending_messages{}")

	ns := testNamespace(t, transport.KindAMQP)
	tr, err := transport.NewTransport(transport.Config{
		Kind: transport.KindAMQP, AMQPURL: testenv.URL(t, testenv.AMQPURLVar), Namespace: ns,
	})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, tr.Close()) })
	topic := testenv.Name("events")
	t.Cleanup(func() { deleteAMQPTopology(t, tr.Topic(topic), "H") })
	subscriber(t, tr, "H", topic)
	cfg := transport.BacklogConfig{Transport: tr, DB: db.DB, Handlers: []transport.HandlerTopic{{Handler: "H", Topic: topic}}}
	got = series(t, newBacklog(t, cfg))
	assert.Equal(t, 0.0, got["onboard_handler_backlog_messages{handler=H}"])
	assert.Equal(t, 0.0, got["onboard_poison_queue_messages{}"])
	assert.Equal(t, 0.0, got["onboard_handler_backlog_oldest_age_seconds{handler=H}"])

	require.NoError(t, tr.Publisher.Publish(topic, []*message.Message{newTestMessage("a"), newTestMessage("b")}...))
	require.NoError(t, tr.Publisher.Publish(transport.PoisonTopic, newTestMessage("p")))
	require.Eventually(t, func() bool {
		got = series(t, newBacklog(t, cfg))
		return got["onboard_handler_backlog_messages{handler=H}"] == 2 && got["onboard_poison_queue_messages{}"] == 1
	}, transportWait, 20*time.Millisecond, "the queues' depths")
	assert.Equal(t, 1.0, got["onboard_backlog_up{source=handlers}"])
	assert.Equal(t, 0.0, got["onboard_handler_backlog_oldest_age_seconds{handler=H}"], "none held")
}

// On amqp a handler's backlog adds the messages this process's handlers
// hold unacked, which the queue's ready count no longer shows; on
// googlecloud those are the backlog, Pub/Sub telling the rest in Cloud
// Monitoring alone, and no poison count is reported; on sqs the queue
// counts them as not visible. The oldest age is the oldest held's.
func TestBacklogCollector_CountsHeldMessages(t *testing.T) {
	forEachTransport(t, []string{transport.KindAMQP, transport.KindGoogleCloud, transport.KindSQS}, func(t *testing.T, tc transportCase) {
		db := testenv.MigratedDB(t, testenv.Backends()[0])
		cfg := transport.Config{
			Kind: transport.KindAMQP, AMQPURL: testenv.URL(t, testenv.AMQPURLVar),
			Namespace: testNamespace(t, transport.KindAMQP),
		}
		switch tc.kind {
		case transport.KindGoogleCloud:
			cfg = googleCloudConfig(t)
		case transport.KindSQS:
			cfg = sqsConfig(t)
		}
		tr := newTransportOf(t, cfg)
		topic := testenv.Name("events")
		if tc.kind == transport.KindAMQP {
			t.Cleanup(func() { deleteAMQPTopology(t, tr.Topic(topic), "H") })
		}

		router, err := message.NewRouter(message.RouterConfig{}, nil)
		require.NoError(t, err)
		router.AddMiddleware(tr.HoldMiddleware)
		entered, done := make(chan string, 3), make(chan struct{})
		router.AddConsumerHandler("H", topic, subscriber(t, tr, "H", topic), func(msg *message.Message) error {
			entered <- msg.UUID
			<-done
			return nil
		})
		release := sync.OnceFunc(func() { close(done) })
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan struct{})
		go func() { _ = router.Run(ctx); close(stopped) }()
		t.Cleanup(func() { release(); cancel(); <-stopped })
		<-router.Running()

		const age = time.Minute
		old, recent := newTestMessage("old"), newTestMessage("recent")
		old.UUID, recent.UUID = transport.UUIDV7At(time.Now().Add(-age)), transport.UUIDV7At(time.Now())
		require.NoError(t, tr.Publisher.Publish(topic, old, recent))
		for range 2 {
			select {
			case <-entered:
			case <-time.After(transportWait):
				t.Fatal("the handler did not get both messages")
			}
		}
		backlog := transport.BacklogConfig{Transport: tr, DB: db.DB, Handlers: []transport.HandlerTopic{{Handler: "H", Topic: topic}}}
		got := series(t, newBacklog(t, backlog))
		assert.Equal(t, 2.0, got["onboard_handler_backlog_messages{handler=H}"], "held, not ready")
		assert.InDelta(t, age.Seconds(), got["onboard_handler_backlog_oldest_age_seconds{handler=H}"], 5)
		_, poisonReported := got["onboard_poison_queue_messages{}"]
		assert.Equal(t, tc.kind != transport.KindGoogleCloud, poisonReported, "the poison queue's count")

		release()
		require.Eventually(t, func() bool {
			got = series(t, newBacklog(t, backlog))
			return got["onboard_handler_backlog_messages{handler=H}"] == 0
		}, transportWait, 20*time.Millisecond, "released once handled")
		assert.Equal(t, 0.0, got["onboard_handler_backlog_oldest_age_seconds{handler=H}"])
	})
}
