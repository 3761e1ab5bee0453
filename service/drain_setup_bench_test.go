package service

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testfake"
)

// unreachableAMQP is given to the transports that must not use RabbitMQ.
const unreachableAMQP = "amqp://guest:guest@127.0.0.1:1/"

// benchSetup is a transport of one kind on a fresh PostgreSQL database (and,
// for AMQP, on RabbitMQ) in a namespace of its own: no other run shares its
// queues, so none is emptied first or waited for.
type benchSetup struct {
	pubsub, namespace, dbURL, amqpURL, natsURL, redisURL string
	pubSubEmulator, sqsEndpoint                          string
	db                                                   *testenv.DB
	tr                                                   *transport.Transport
}

func newBenchSetup(b *testing.B, pubsub string) *benchSetup {
	b.Helper()
	return newBenchSetupOn(b, pubsub, testenv.PostgresDatabase(b))
}

// newBenchSetupOn is newBenchSetup on the PostgreSQL database at dbURL.
func newBenchSetupOn(b *testing.B, pubsub, dbURL string) *benchSetup {
	b.Helper()
	s := &benchSetup{pubsub: pubsub, namespace: "bench-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:8],
		dbURL: dbURL, amqpURL: unreachableAMQP}
	s.db = testenv.OpenDB(b, s.dbURL)
	switch pubsub {
	case transport.KindNATS:
		s.natsURL = testenv.URL(b, testenv.NATSURLVar)
		b.Cleanup(func() { e2e.DeleteNATSNamespace(b, s.natsURL, s.namespace) })
	case transport.KindRedis:
		s.redisURL = testenv.URL(b, testenv.RedisURLVar)
		b.Cleanup(func() { testenv.DeleteRedisNamespace(b, s.redisURL, s.namespace) })
	case transport.KindGoogleCloud:
		s.pubSubEmulator = testenv.URL(b, testenv.PubSubEmulatorVar)
	case transport.KindSQS:
		s.sqsEndpoint = testenv.URL(b, testenv.SQSEndpointVar)
	case transport.KindAMQP:
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
	s.tr, err = transport.NewTransport(benchConfig(b, s).Transport(s.db.DB, s.namespace))
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

// benchConfig is the service's configuration on the setup.
func benchConfig(b *testing.B, s *benchSetup) Config {
	b.Helper()
	return Config{
		PubSub:             s.pubsub,
		Namespace:          s.namespace,
		DatabaseURL:        s.dbURL,
		AMQPURL:            s.amqpURL,
		NATSURL:            s.natsURL,
		RedisURL:           s.redisURL,
		GoogleCloudProject: testenv.GoogleCloudProject,
		PubSubEmulatorHost: s.pubSubEmulator,
		AWSRegion:          testenv.AWSRegion,
		AWSEndpointURL:     s.sqsEndpoint,
		AWSAccessKeyID:     testenv.AWSTestKey,
		AWSSecretAccessKey: testenv.AWSTestKey,
		HTTPAddr:           "127.0.0.1:0",
		BcryptCost:         10,
		SignupPoints:       100,
		MailFrom:           "no-reply@onboard.local",
		MasterKeys:         testMasterKeys(b, s.dbURL),
	}
}

// benchService builds the service of cfg, not yet running, with a quiet log.
func benchService(ctx context.Context, b *testing.B, cfg Config, mailer *testfake.Mailer) *Service {
	b.Helper()
	svc, err := New(ctx, cfg, mailer, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	return svc
}
