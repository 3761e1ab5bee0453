package service

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

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
	case transport.TransportSQL:
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
	case transport.TransportAMQP:
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

	msgs := make([]*message.Message, backlogOf(pubsub))
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
			b.Fatal("the stock subscriber's messages did not all arrive")
		}
	}
	return publish, float64(len(msgs)) / time.Since(start).Seconds(), true
}
