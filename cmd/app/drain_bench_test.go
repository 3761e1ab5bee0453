package main

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/adapters/transport"
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
//	go test -run '^$' -bench BacklogDrain -benchtime 1x ./cmd/app/
func BenchmarkBacklogDrain(b *testing.B) {
	for _, pubsub := range []string{transport.TransportSQL, transport.TransportAMQP} {
		b.Run(pubsub, func(b *testing.B) {
			if pubsub == transport.TransportAMQP {
				lockServiceQueues(b, nil)
			}
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

// benchTransport is a transport of the kind on a fresh PostgreSQL database
// (and, for AMQP, on RabbitMQ with the service's queues emptied; the caller
// holds lockServiceQueues).
func benchTransport(b *testing.B, pubsub string) (dbURL, amqpURL string, db *testenv.DB, tr *transport.Transport) {
	b.Helper()
	dbURL = testenv.PostgresDatabase(b)
	db = testenv.OpenDB(b, dbURL)
	amqpURL = e2eUnreachableAMQP
	if pubsub == transport.TransportAMQP {
		amqpURL = testenv.URL(b, testenv.AMQPURLVar)
		resetServiceQueues(b, amqpURL)
	}
	migrated, err := sqldb.Open(context.Background(), dbURL, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err) // it applies the migrations
	}
	_ = migrated.Close()
	tr, err = transport.NewTransport(transport.TransportConfig{Kind: pubsub, DB: db.DB, AMQPURL: amqpURL, Namespace: e2eNamespace})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tr.Close() })
	return dbURL, amqpURL, db, tr
}

// benchService builds the service, not yet running, with a quiet log.
func benchService(ctx context.Context, b *testing.B, pubsub, dbURL, amqpURL string, mailer *recordingMailer) *Service {
	b.Helper()
	svc, err := NewService(ctx, Config{
		PubSub:       pubsub,
		Namespace:    e2eNamespace,
		DatabaseURL:  dbURL,
		AMQPURL:      amqpURL,
		HTTPAddr:     "127.0.0.1:0",
		BcryptCost:   10,
		SignupPoints: 100,
		MailFrom:     "no-reply@onboard.local",
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
	_, _, _, tr := benchTransport(b, pubsub)
	topic := testenv.Name("raw")
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
	dbURL, amqpURL, db, tr := benchTransport(b, pubsub)
	mailer := &recordingMailer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc := benchService(ctx, b, pubsub, dbURL, amqpURL, mailer)

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
