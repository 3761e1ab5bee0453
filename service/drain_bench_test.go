package service

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testfake"
)

// backlogEvents is how many UserRegistered events wait when the handlers
// start, each of a registered user.
const backlogEvents = 10_000

// backlogOf is the backlog drained on pubsub: backlogEvents, but on the
// Pub/Sub and SQS emulators a tenth. goaws scans a queue's every message
// under one lock at each receive and each delete. pstest hands a subscription's every message to
// its stream at once, without the flow control Google's service applies
// (MaxOutstandingMessages), and rescans its messages at each delivery and
// each ack: the client then holds thousands and extends their deadlines,
// and a backlog of 10,000 measures that churn, for minutes per drain.
func backlogOf(pubsub string) int {
	if pubsub == transport.KindGoogleCloud || pubsub == transport.KindSQS {
		return backlogEvents / 10
	}
	return backlogEvents
}

// drainOrder drains the plain and the sealed backlogs in turns, so that a
// drift of the machine's load weighs on both alike.
var drainOrder = []backlogFields{
	plainFields, sealedFields, sealedFields, plainFields,
	plainFields, sealedFields, sealedFields, plainFields,
}

// BenchmarkBacklogDrain: with the handlers stopped, backlogOf(pubsub) events
// wait on the transport; the handlers start, and the benchmark reports the
// events/s until every email and every grant is done, beside the raw
// rates of the same transport (a plain publisher and subscriber, no
// handlers) measured in the same run, and the ratio of the two; on sql and
// amqp also beside the raw rates of Watermill's stock pub/sub of the same
// broker (stockRawThroughput), the peer a new user would pick; on each
// transport: sql and amqp, nats and redis (TEST_NATS_URL, TEST_REDIS_URL),
// googlecloud and sqs on the emulators (TEST_PUBSUB_EMULATOR_HOST,
// TEST_AWS_ENDPOINT_URL).
//
// The events are those of backlogEvents users registered once, through
// the user store, into a database that each drain copies. They drain in
// drainOrder, with their personal fields plain, as an older version wrote
// them (today's drain), or sealed under the users' keys, as the event
// store writes them, which the handlers open; the benchmark reports both
// rates, each over all its drains, and their ratio (the target:
// sealed/plain at least 0.90).
//
//	go test -run '^$' -bench BacklogDrain -benchtime 1x ./service/
func BenchmarkBacklogDrain(b *testing.B) {
	users := registerBacklog(b)
	for _, pubsub := range []string{transport.KindSQL, transport.KindAMQP, transport.KindNATS,
		transport.KindRedis, transport.KindGoogleCloud, transport.KindSQS} {
		b.Run(pubsub, func(b *testing.B) {
			events := backlogOf(pubsub)
			for b.Loop() {
				rawPublish, raw := rawThroughput(b, pubsub)
				stockPublish, stock, hasPeer := stockRawThroughput(b, pubsub)
				var plain, sealed drainTotals
				for _, fields := range drainOrder {
					d := drainBacklog(b, pubsub, users, fields)
					b.Logf("%s backlog drained in %s, CPU per event: service %s, PostgreSQL %s", fields,
						d.elapsed.Round(time.Millisecond), d.serviceCPU/time.Duration(events), d.postgresCPU/time.Duration(events))
					if fields == sealedFields {
						sealed.add(d, events)
					} else {
						plain.add(d, events)
					}
				}
				b.ReportMetric(rawPublish, "raw-publish-msgs/s")
				b.ReportMetric(raw, "raw-msgs/s")
				b.ReportMetric(plain.rate(), "drain-events/s")
				b.ReportMetric(sealed.rate(), "sealed-drain-events/s")
				b.ReportMetric(plain.rate()/raw, "drain/raw")
				if hasPeer {
					b.ReportMetric(stockPublish, "stock-raw-publish-msgs/s")
					b.ReportMetric(stock, "stock-raw-msgs/s")
					b.ReportMetric(plain.rate()/stock, "drain/stock-raw")
				}
				b.ReportMetric(sealed.rate()/plain.rate(), "sealed/plain")
				if plain.cpuKnown && sealed.cpuKnown {
					b.ReportMetric(plain.cpuPerEvent(), "cpu-µs/event")
					b.ReportMetric(sealed.cpuPerEvent(), "sealed-cpu-µs/event")
					b.ReportMetric(plain.cpuPerEvent()/sealed.cpuPerEvent(), "cpu-plain/sealed")
				}
				b.Logf("%s on PostgreSQL: backlogs of %d events drained at %.0f events/s plain, %.0f sealed (ratio %.2f); "+
					"raw transport: publish %.0f msgs/s, subscribe %.0f msgs/s; drain/raw %.2f", pubsub, events,
					plain.rate(), sealed.rate(), sealed.rate()/plain.rate(), rawPublish, raw, plain.rate()/raw)
			}
		})
	}
}

// drain is what one drain took: its time, and the CPU time of the service
// and of the PostgreSQL backends serving its database meanwhile, when
// this machine's /proc shows them (cpuKnown).
type drain struct {
	elapsed, serviceCPU, postgresCPU time.Duration
	cpuKnown                         bool
}

// drainTotals adds up the drains of one kind.
type drainTotals struct {
	drain
	events int
}

func (t *drainTotals) add(d drain, events int) {
	t.cpuKnown = d.cpuKnown && (t.events == 0 || t.cpuKnown)
	t.elapsed += d.elapsed
	t.serviceCPU += d.serviceCPU
	t.postgresCPU += d.postgresCPU
	t.events += events
}

func (t drainTotals) rate() float64 { return float64(t.events) / t.elapsed.Seconds() }

// cpuPerEvent is the CPU, in µs, the service and PostgreSQL spent per
// event: the drain rate of a machine whose cores they saturate goes as
// its inverse, whatever else runs beside them.
func (t drainTotals) cpuPerEvent() float64 {
	return float64((t.serviceCPU + t.postgresCPU).Microseconds()) / float64(t.events)
}

// publishInBatches publishes msgs in batches of 500.
func publishInBatches(b *testing.B, publisher message.Publisher, topic string, msgs []*message.Message) {
	b.Helper()
	for start := 0; start < len(msgs); start += 500 {
		end := min(start+500, len(msgs))
		if err := publisher.Publish(topic, msgs[start:end]...); err != nil {
			b.Fatal(err)
		}
	}
}

// rawThroughput times the publishing of backlogOf(pubsub) small messages in
// batches of 500, then one subscriber (the service's, of HandlerConcurrency
// consumers where the transport has them) receiving and acking them all:
// the broker's Watermill rates as the service configures it, in msgs/s.
func rawThroughput(b *testing.B, pubsub string) (publish, subscribe float64) {
	b.Helper()
	setup := newBenchSetup(b, pubsub)
	tr := setup.tr
	topic := testenv.Name("raw")
	if pubsub == transport.KindAMQP {
		setup.deleteOnRabbitMQ(b, []string{setup.topic(topic)}, []string{setup.topic(topic) + "_raw"})
	}
	sub, err := tr.Subscriber("raw", topic)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = sub.Close() }()
	return timeRawMessages(b, tr.Publisher, sub, topic, backlogOf(pubsub))
}

// timeRawMessages times the publishing of n small messages to topic in
// batches of 500, then sub receiving and acking them all, in msgs/s.
func timeRawMessages(b *testing.B, pub message.Publisher, sub message.Subscriber, topic string, n int) (publish, subscribe float64) {
	b.Helper()
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = message.NewMessage(uuid.NewString(), []byte(`{"user_id":"`+uuid.NewString()+`"}`))
	}
	start := time.Now()
	publishInBatches(b, pub, topic, msgs)
	publish = float64(len(msgs)) / time.Since(start).Seconds()

	start = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	messages, err := sub.Subscribe(ctx, topic)
	if err != nil {
		b.Fatal(err)
	}
	for range msgs {
		select {
		case msg := <-messages:
			msg.Ack()
		case <-ctx.Done():
			b.Fatal("raw messages did not all arrive")
		}
	}
	return publish, float64(len(msgs)) / time.Since(start).Seconds()
}

// drainBacklog builds the service (which registers its handlers' queues)
// on a copy of the users' database, publishes their UserRegistered events
// with their personal fields as fields says, then runs the service and
// times every effect.
func drainBacklog(b *testing.B, pubsub string, users *backlogUsers, fields backlogFields) drain {
	b.Helper()
	setup := newBenchSetupOn(b, pubsub, copyPostgresDatabase(b, users.dbURL))
	db, tr := setup.db, setup.tr
	mailer := &testfake.Mailer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := benchConfig(b, setup)
	cfg.MasterKeys = users.masterKeys
	svc := benchService(ctx, b, cfg, mailer)

	events := users.events[:backlogOf(pubsub)]
	msgs := make([]*message.Message, len(events))
	for i, e := range events {
		payload := e.sealed
		if fields == plainFields {
			payload = e.plain
		}
		msgs[i] = transport.NewEventMessage(ctx, e.id, "UserRegistered", e.schemaVersion, payload)
	}
	// As from the service's own outbox: the forwarder marks each message.
	origin, err := deploymentID(ctx, db.DB)
	if err != nil {
		b.Fatal(err)
	}
	publishInBatches(b, transport.StampOrigin(tr.Publisher, origin), transport.EventTopic("UserRegistered"), msgs)

	meter := startCPUMeter(b, db)
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	deadline := time.After(10 * time.Minute)
	for {
		meter.sample()
		grants := db.Count(b, `SELECT count(*) FROM points_entries`)
		if mailer.Count() >= len(events) && grants >= len(events) {
			break
		}
		select {
		case err := <-done:
			b.Fatalf("the service stopped: %v", err)
		case <-deadline:
			b.Fatalf("drained %d emails and %d grants of %d", mailer.Count(), grants, len(events))
		case <-time.After(50 * time.Millisecond):
		}
	}
	d := drain{elapsed: time.Since(start)}
	d.serviceCPU, d.postgresCPU, d.cpuKnown = meter.stop()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	for _, mail := range mailer.Mails() {
		if !users.addresses[mail.To] {
			b.Fatalf("a welcome email went to %q, not to a registered address", mail.To)
		}
	}
	return d
}
