package service

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/testenv"
)

// stockRawThroughput is rawThroughput on the peer a new user would pick:
// Watermill's stock pub/sub of the same broker, as its documentation
// configures it, with one subscriber. On sql, watermill-sql's PostgreSQL
// schema and its default offsets adapter (one log per topic, read at each
// group's offset); on amqp, watermill-amqp's durable pub/sub. ok is false
// on the other transports, which have no such peer here.
func stockRawThroughput(b *testing.B, pubsub string) (publish, subscribe float64, ok bool) {
	b.Helper()
	var (
		pub message.Publisher
		sub message.Subscriber
		err error
	)
	logger := watermill.NopLogger{}
	topic := testenv.Name("stock")
	switch pubsub {
	case transport.KindSQL:
		db := testenv.OpenDB(b, testenv.PostgresDatabase(b)).DB
		pub, err = wsql.NewPublisher(wsql.BeginnerFromStdSQL(db), wsql.PublisherConfig{
			SchemaAdapter: wsql.DefaultPostgreSQLSchema{}, AutoInitializeSchema: true,
		}, logger)
		if err == nil {
			sub, err = wsql.NewSubscriber(wsql.BeginnerFromStdSQL(db), wsql.SubscriberConfig{
				ConsumerGroup: "stock", SchemaAdapter: wsql.DefaultPostgreSQLSchema{},
				OffsetsAdapter: wsql.DefaultPostgreSQLOffsetsAdapter{}, InitializeSchema: true,
			}, logger)
		}
		if err == nil {
			err = sub.(message.SubscribeInitializer).SubscribeInitialize(topic)
		}
	case transport.KindAMQP:
		setup := &benchSetup{amqpURL: testenv.URL(b, testenv.AMQPURLVar)}
		setup.deleteOnRabbitMQ(b, []string{topic}, []string{topic + "_stock"})
		config := wamqp.NewDurablePubSubConfig(setup.amqpURL, wamqp.GenerateQueueNameTopicNameWithSuffix("stock"))
		pub, err = wamqp.NewPublisher(config, logger)
		if err == nil {
			sub, err = wamqp.NewSubscriber(config, logger)
		}
		if err == nil {
			err = sub.(message.SubscribeInitializer).SubscribeInitialize(topic)
		}
	default:
		return 0, 0, false
	}
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = pub.Close(); _ = sub.Close() }()
	publish, subscribe = timeRawMessages(b, pub, sub, topic, backlogOf(pubsub))
	return publish, subscribe, true
}
