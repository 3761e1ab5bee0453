package service

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
)

// backlogEvents is how many UserRegistered events wait when the handlers start.
const backlogEvents = 20_000

// BenchmarkBacklogDrain: with the handlers stopped, backlogEvents events
// wait on the transport; the handlers start, and the benchmark reports the
// events/s until every email and every grant is done, beside the raw
// throughput of the same transport (a plain publisher and subscriber, no
// handlers) measured in the same run, and the ratio of the two.
//
//	go test -run '^$' -bench BacklogDrain -benchtime 1x ./service/
func BenchmarkBacklogDrain(b *testing.B) {
	for _, pubsub := range []string{transport.TransportSQL, transport.TransportAMQP} {
		b.Run(pubsub, func(b *testing.B) {
			for b.Loop() {
				raw := rawThroughput(b, pubsub)
				drain := drainBacklog(b, pubsub)
				b.ReportMetric(raw, "raw-msgs/s")
				b.ReportMetric(drain, "drain-events/s")
				b.ReportMetric(drain/raw, "drain/raw")
				b.Logf("%s on PostgreSQL: %d events drained at %.0f events/s; raw transport %.0f msgs/s; ratio %.2f",
					pubsub, backlogEvents, drain, raw, drain/raw)
			}
		})
	}
}

// unreachableAMQP is given to the transports that must not use RabbitMQ.
const unreachableAMQP = "amqp://guest:guest@127.0.0.1:1/"

// benchSetup is a transport of one kind on a fresh PostgreSQL database (and,
// for AMQP, on RabbitMQ) in a namespace of its own: no other run shares its
// queues, so none is emptied first or waited for.
type benchSetup struct {
	pubsub, namespace, dbURL, amqpURL string
	db                                *testenv.DB
	tr                                *transport.Transport
}

func newBenchSetup(b *testing.B, pubsub string) *benchSetup {
	b.Helper()
	s := &benchSetup{pubsub: pubsub, namespace: "bench-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:8],
		dbURL: testenv.PostgresDatabase(b), amqpURL: unreachableAMQP}
	s.db = testenv.OpenDB(b, s.dbURL)
	if pubsub == transport.TransportAMQP {
		s.amqpURL = testenv.URL(b, testenv.AMQPURLVar)
		// The service's exchanges and queues (topic_handler) in the namespace.
		events := s.topic(transport.EventTopic("UserRegistered"))
		commands := s.topic(transport.CommandTopic("RegisterUser"))
		s.deleteOnRabbitMQ(b, []string{events, commands, s.topic(transport.PoisonTopic)}, []string{
			events + "_" + event.SendWelcomeEmailName, events + "_" + event.SeedSignupPointsName,
			commands + "_" + RegisterUserHandlerName, s.topic(transport.PoisonTopic),
		})
	}
	migrated, err := sqldb.Open(context.Background(), s.dbURL, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err) // it applies the migrations
	}
	_ = migrated.Close()
	s.tr, err = transport.NewTransport(transport.TransportConfig{Kind: pubsub, DB: s.db.DB, AMQPURL: s.amqpURL, Namespace: s.namespace})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.tr.Close() })
	return s
}

// topic is topic in the setup's namespace.
func (s *benchSetup) topic(topic string) string { return transport.NamespacedTopic(s.namespace, topic) }

// deleteOnRabbitMQ deletes the exchanges and queues when the benchmark ends.
func (s *benchSetup) deleteOnRabbitMQ(b *testing.B, exchanges, queues []string) {
	b.Cleanup(func() {
		conn, err := amqp.Dial(s.amqpURL)
		if err != nil {
			b.Logf("clean up RabbitMQ: %v", err)
			return
		}
		defer func() { _ = conn.Close() }()
		ch, err := conn.Channel()
		if err != nil {
			b.Logf("clean up RabbitMQ: %v", err)
			return
		}
		defer func() { _ = ch.Close() }()
		for _, queue := range queues {
			if _, err := ch.QueueDelete(queue, false, false, false); err != nil {
				b.Logf("delete queue %s: %v", queue, err)
				return // an error closes the channel
			}
		}
		for _, exchange := range exchanges {
			if err := ch.ExchangeDelete(exchange, false, false); err != nil {
				b.Logf("delete exchange %s: %v", exchange, err)
				return
			}
		}
	})
}

// benchService builds the service on the setup, not yet running, with a quiet log.
func benchService(ctx context.Context, b *testing.B, s *benchSetup, mailer *recordingMailer) *Service {
	b.Helper()
	svc, err := NewService(ctx, Config{
		PubSub:       s.pubsub,
		Namespace:    s.namespace,
		DatabaseURL:  s.dbURL,
		AMQPURL:      s.amqpURL,
		HTTPAddr:     "127.0.0.1:0",
		BcryptCost:   10,
		SignupPoints: 100,
		MailFrom:     "no-reply@onboard.local",
		MasterKeys:   testMasterKeys(b, s.dbURL),
	}, mailer, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	return svc
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

// rawThroughput publishes backlogEvents small messages, then times one
// subscriber receiving and acking them all.
func rawThroughput(b *testing.B, pubsub string) float64 {
	b.Helper()
	setup := newBenchSetup(b, pubsub)
	tr := setup.tr
	topic := testenv.Name("raw")
	if pubsub == transport.TransportAMQP {
		setup.deleteOnRabbitMQ(b, []string{setup.topic(topic)}, []string{setup.topic(topic) + "_raw"})
	}
	sub, err := tr.Subscriber("raw", topic)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = sub.Close() }()
	msgs := make([]*message.Message, backlogEvents)
	for i := range msgs {
		msgs[i] = message.NewMessage(uuid.NewString(), []byte(`{"user_id":"`+uuid.NewString()+`"}`))
	}
	publishInBatches(b, tr.Publisher, topic, msgs)

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	messages, err := sub.Subscribe(ctx, topic)
	if err != nil {
		b.Fatal(err)
	}
	for range backlogEvents {
		select {
		case msg := <-messages:
			msg.Ack()
		case <-ctx.Done():
			b.Fatal("raw messages did not all arrive")
		}
	}
	return backlogEvents / time.Since(start).Seconds()
}

// drainBacklog builds the service (which registers its handlers' queues),
// publishes the backlog, then runs the service and times every effect.
func drainBacklog(b *testing.B, pubsub string) float64 {
	b.Helper()
	setup := newBenchSetup(b, pubsub)
	db, tr := setup.db, setup.tr
	mailer := &recordingMailer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc := benchService(ctx, b, setup, mailer)

	msgs := make([]*message.Message, backlogEvents)
	for i := range msgs {
		msg, err := transport.Marshaler.Marshal(&domain.UserRegistered{
			UserID:       uuid.Must(uuid.NewV7()).String(),
			Name:         "Backlog User",
			Email:        fmt.Sprintf("backlog%d@example.com", i),
			RegisteredAt: time.Now(),
		})
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = msg
	}
	// As from the service's own outbox: the forwarder marks each message.
	origin, err := deploymentID(ctx, db.DB)
	if err != nil {
		b.Fatal(err)
	}
	publishInBatches(b, transport.StampOrigin(tr.Publisher, origin), transport.EventTopic("UserRegistered"), msgs)

	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	deadline := time.After(10 * time.Minute)
	for {
		grants := db.Count(b, `SELECT count(*) FROM points_entries`)
		if mailer.count() >= backlogEvents && grants >= backlogEvents {
			break
		}
		select {
		case err := <-done:
			b.Fatalf("the service stopped: %v", err)
		case <-deadline:
			b.Fatalf("drained %d emails and %d grants of %d", mailer.count(), grants, backlogEvents)
		case <-time.After(50 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return backlogEvents / elapsed.Seconds()
}
