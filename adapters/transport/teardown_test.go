package transport_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/testenv"
)

// teardownTopology is what the teardown tests make in a namespace: a
// handler's subscription to one topic, and a topic nobody reads.
var teardownTopology = transport.Topology{
	Topics:   []string{"events.Read", "events.Unread"},
	Handlers: []transport.HandlerTopic{{Handler: "Handler", Topic: "events.Read"}},
}

// teardownConfig is a transport of the case in a new namespace, its
// resources removed when the test ends.
func teardownConfig(t *testing.T, tc transportCase, db *testenv.DB, namespace string) transport.Config {
	t.Helper()
	var cfg transport.Config
	switch tc.kind {
	case transport.KindSQL:
		cfg = transport.Config{Kind: tc.kind, DB: db.DB}
	case transport.KindAMQP:
		cfg = transport.Config{Kind: tc.kind, AMQPURL: testenv.URL(t, testenv.AMQPURLVar)}
	case transport.KindNATS:
		cfg = transport.Config{Kind: tc.kind, NATSURL: testenv.URL(t, testenv.NATSURLVar)}
	case transport.KindRedis:
		cfg = transport.Config{Kind: tc.kind, RedisURL: testenv.URL(t, testenv.RedisURLVar)}
	case transport.KindGoogleCloud:
		cfg = googleCloudConfig(t)
	case transport.KindSQS:
		cfg = sqsConfig(t)
	}
	cfg.Namespace = namespace
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), transportWait)
		defer cancel()
		if _, err := transport.Teardown(ctx, cfg, transport.TeardownOptions{Topology: teardownTopology, Force: true}); err != nil {
			t.Logf("tear down namespace %s: %v", namespace, err)
		}
	})
	return cfg
}

// populate makes the topology's resources in cfg's namespace: the
// handler's subscription, a message on each topic. It returns the
// transport and the handler's subscriber, open.
func populate(t *testing.T, cfg transport.Config) (*transport.Transport, message.Subscriber) {
	t.Helper()
	tr, err := transport.NewTransport(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	h := teardownTopology.Handlers[0]
	sub, err := tr.Subscriber(h.Handler, h.Topic)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	for _, topic := range teardownTopology.Topics {
		require.NoError(t, tr.Publisher.Publish(topic, message.NewMessage(uuid.NewString(), []byte(`{}`))))
	}
	return tr, sub
}

// A teardown removes what its namespace holds on the broker, the handler's
// queue and the poison queue among them, and nothing of another namespace
// on it: one whose name its own begins.
func TestTeardown_RemovesTheNamespaceAndNothingElse(t *testing.T) {
	forEachTransport(t, durableKinds, func(t *testing.T, tc transportCase) {
		var db *testenv.DB
		if tc.kind == transport.KindSQL {
			db = testenv.MigratedDB(t, tc.backend)
		}
		ns := "td" + strings.ReplaceAll(uuid.NewString(), "-", "")[:8]
		other := ns + "x"
		cfg, otherCfg := teardownConfig(t, tc, db, ns), teardownConfig(t, tc, db, other)
		for _, c := range []transport.Config{cfg, otherCfg} {
			tr, sub := populate(t, c)
			require.NoError(t, sub.Close())
			require.NoError(t, tr.Close())
		}
		exists := prober(t, tc.kind, db)
		ctx := testenv.Context(t)

		removed, err := transport.Teardown(ctx, cfg, transport.TeardownOptions{Topology: teardownTopology})
		require.NoError(t, err)
		names := map[string][]string{}
		for _, r := range removed {
			names[r.Kind] = r.Names
			for _, name := range r.Names {
				assert.True(t, strings.Contains(name, ns), "%s %s is the namespace's", r.Kind, name)
				assert.False(t, exists(r.Kind, name), "%s %s is gone", r.Kind, name)
				kept := strings.ReplaceAll(name, ns, other)
				assert.True(t, exists(r.Kind, kept), "%s %s of the other namespace is kept", r.Kind, kept)
			}
		}
		for kind, want := range expectedRemoved(tc, ns) {
			assert.Subset(t, names[kind], want, kind)
		}

		again, err := transport.Teardown(ctx, cfg, transport.TeardownOptions{Topology: teardownTopology})
		require.NoError(t, err)
		for _, r := range again {
			assert.Empty(t, r.Names, "a second teardown finds no %s", r.Kind)
		}
	})
}

// expectedRemoved are the resources of the topology in a namespace the
// teardown must name, by kind.
func expectedRemoved(tc transportCase, ns string) map[string][]string {
	switch tc.kind {
	case transport.KindSQL:
		if tc.backend.Name == "sqlite" {
			return map[string][]string{"tables": {
				"watermill_" + ns + ".events.Read", "watermill_offsets_" + ns + ".events.Read",
				"watermill_" + ns + ".poison", "watermill_offsets_" + ns + ".poison",
			}}
		}
		return map[string][]string{"tables": {
			"watermill_queue_" + ns + ".events.Read", "watermill_groups_" + ns + ".events.Read",
			"watermill_queue_" + ns + ".poison", "watermill_groups_" + ns + ".poison",
		}}
	case transport.KindAMQP:
		return map[string][]string{
			"RabbitMQ queues":    {ns + ".events.Read_Handler", ns + ".poison"},
			"RabbitMQ exchanges": {ns + ".events.Read", ns + ".events.Unread", ns + ".poison"},
		}
	case transport.KindNATS:
		return map[string][]string{
			"JetStream streams":   {ns + "_messages", ns + "_poison"},
			"JetStream consumers": {ns + "_events-Read_Handler"},
		}
	case transport.KindRedis:
		return map[string][]string{
			"Redis streams":         {ns + ".events.Read", ns + ".events.Unread"},
			"Redis consumer groups": {"Handler on " + ns + ".events.Read"},
		}
	case transport.KindGoogleCloud:
		return map[string][]string{
			"Pub/Sub subscriptions": {ns + ".events.Read.Handler", ns + ".poison.poison"},
			"Pub/Sub topics":        {ns + ".events.Read", ns + ".events.Unread", ns + ".poison"},
		}
	case transport.KindSQS:
		return map[string][]string{
			"SNS subscriptions": {ns + "_events_Read to " + ns + "_events_Read_Handler"},
			"SNS topics":        {ns + "_events_Read", ns + "_events_Unread", ns + "_poison"},
			"SQS queues":        {ns + "_events_Read_Handler", ns + "_events_Read_Handler_dead", ns + "_poison_poison"},
		}
	}
	return nil
}

// While a handler reads its namespace, a teardown on a broker that tells
// (RabbitMQ, NATS, Redis) refuses and removes nothing; forced, it removes.
func TestTeardown_RefusesWhileAServiceReads(t *testing.T) {
	forEachTransport(t, []string{transport.KindAMQP, transport.KindNATS, transport.KindRedis}, func(t *testing.T, tc transportCase) {
		ns := "tu" + strings.ReplaceAll(uuid.NewString(), "-", "")[:8]
		cfg := teardownConfig(t, tc, nil, ns)
		_, sub := populate(t, cfg)
		messages := subscribe(t, sub, teardownTopology.Handlers[0].Topic)
		select { // a delivery: the handler reads
		case msg := <-messages:
			msg.Ack()
		case <-testenv.Context(t).Done():
			t.Fatal("no delivery")
		}
		exists := prober(t, tc.kind, nil)
		// A resource of the namespace each: the handler's queue, the stream.
		kind, name := map[string]string{
			transport.KindAMQP: "RabbitMQ queues", transport.KindNATS: "JetStream streams", transport.KindRedis: "Redis streams",
		}[tc.kind], map[string]string{
			transport.KindAMQP: ns + ".events.Read_Handler", transport.KindNATS: ns + "_messages",
			transport.KindRedis: ns + ".events.Read",
		}[tc.kind]

		removed, err := transport.Teardown(testenv.Context(t), cfg, transport.TeardownOptions{Topology: teardownTopology})
		require.ErrorIs(t, err, transport.ErrNamespaceInUse)
		assert.Empty(t, removed)
		assert.True(t, exists(kind, name), "%s %s is kept", kind, name)

		removed, err = transport.Teardown(testenv.Context(t), cfg,
			transport.TeardownOptions{Topology: teardownTopology, Force: true})
		require.NoError(t, err)
		assert.False(t, exists(kind, name), "%s %s is gone", kind, name)
		assert.NotEmpty(t, removed)
	})
}

// Nothing in gochannel outlives the process: a teardown removes nothing.
func TestTeardown_GoChannelHasNothing(t *testing.T) {
	removed, err := transport.Teardown(context.Background(), transport.Config{Kind: transport.KindGoChannel},
		transport.TeardownOptions{})
	require.NoError(t, err)
	assert.Empty(t, removed)
}

// Without a namespace nothing tells a deployment's resources apart.
func TestTeardown_RefusesAnEmptyNamespace(t *testing.T) {
	_, err := transport.Teardown(context.Background(), transport.Config{
		Kind: transport.KindRedis, RedisURL: "redis://127.0.0.1:1/0",
	}, transport.TeardownOptions{Force: true})
	require.ErrorContains(t, err, "PUBSUB_NAMESPACE is empty")
}

// prober reports whether a resource a teardown names exists on the
// broker, asked the broker's own way.
func prober(t *testing.T, kind string, db *testenv.DB) func(kind, name string) bool {
	t.Helper()
	ctx := testenv.Context(t)
	switch kind {
	case transport.KindSQL:
		return func(_, table string) bool {
			_, err := db.ExecContext(ctx, "SELECT 1 FROM "+db.Quote(table)+" WHERE 1 = 0")
			if sqldb.Of(db.DB).IsMissingTable(err) {
				return false
			}
			require.NoError(t, err, table)
			return true
		}
	case transport.KindAMQP:
		conn, err := amqp091.Dial(testenv.URL(t, testenv.AMQPURLVar))
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		return func(kind, name string) bool {
			ch, err := conn.Channel()
			require.NoError(t, err)
			if kind == "RabbitMQ queues" {
				_, err = ch.QueueDeclarePassive(name, true, false, false, false, nil)
			} else {
				err = ch.ExchangeDeclarePassive(name, "fanout", true, false, false, false, nil)
			}
			var amqpErr *amqp091.Error
			if errors.As(err, &amqpErr) && amqpErr.Code == amqp091.NotFound {
				return false
			}
			require.NoError(t, err, name)
			_ = ch.Close()
			return true
		}
	case transport.KindNATS:
		js := natsJetStream(t)
		return func(kind, name string) bool {
			var err error
			if kind == "JetStream streams" {
				_, err = js.Stream(ctx, name)
			} else { // the handlers' consumers are on the messages stream
				namespace, _, _ := strings.Cut(name, "_")
				_, err = js.Consumer(ctx, namespace+"_messages", name)
			}
			if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				return false
			}
			require.NoError(t, err, name)
			return true
		}
	case transport.KindRedis:
		client := testenv.RedisClient(t, testenv.URL(t, testenv.RedisURLVar))
		return func(kind, name string) bool {
			if group, stream, ok := strings.Cut(name, " on "); ok && kind == "Redis consumer groups" {
				groups, err := client.XInfoGroups(ctx, stream).Result()
				return err == nil && slices.ContainsFunc(groups, func(g redis.XInfoGroup) bool { return g.Name == group })
			}
			n, err := client.Exists(ctx, name).Result()
			require.NoError(t, err, name)
			return n == 1
		}
	case transport.KindGoogleCloud:
		client, err := pubsub.NewClient(ctx, testenv.GoogleCloudProject,
			option.WithEndpoint(testenv.URL(t, testenv.PubSubEmulatorVar)), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
		require.NoError(t, err)
		t.Cleanup(func() { _ = client.Close() })
		project := "projects/" + testenv.GoogleCloudProject
		return func(kind, name string) bool {
			if kind == "Pub/Sub topics" {
				_, err = client.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: project + "/topics/" + name})
			} else {
				_, err = client.SubscriptionAdminClient.GetSubscription(ctx,
					&pubsubpb.GetSubscriptionRequest{Subscription: project + "/subscriptions/" + name})
			}
			if status.Code(err) == codes.NotFound {
				return false
			}
			require.NoError(t, err, name)
			return true
		}
	case transport.KindSQS:
		return sqsProber(t)
	}
	t.Fatalf("no prober for %s", kind)
	return nil
}

// sqsProber finds SQS queues by name, and SNS topics and their
// subscriptions ("<topic> to <queue>") by listing them.
func sqsProber(t *testing.T) func(kind, name string) bool {
	t.Helper()
	ctx := testenv.Context(t)
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(testenv.AWSRegion),
		config.WithBaseEndpoint(testenv.URL(t, testenv.SQSEndpointVar)),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(testenv.AWSTestKey, testenv.AWSTestKey, "")))
	require.NoError(t, err)
	sqsClient, snsClient := sqs.NewFromConfig(awsCfg), sns.NewFromConfig(awsCfg)
	topicArn := func(name string) string {
		pages := sns.NewListTopicsPaginator(snsClient, &sns.ListTopicsInput{})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			require.NoError(t, err)
			for _, topic := range page.Topics {
				if arn := aws.ToString(topic.TopicArn); strings.HasSuffix(arn, ":"+name) {
					return arn
				}
			}
		}
		return ""
	}
	return func(kind, name string) bool {
		switch kind {
		case "SQS queues":
			_, err := sqsClient.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
			var missing *sqstypes.QueueDoesNotExist
			if errors.As(err, &missing) {
				return false
			}
			require.NoError(t, err, name)
			return true
		case "SNS topics":
			return topicArn(name) != ""
		}
		topic, queue, _ := strings.Cut(name, " to ")
		arn := topicArn(topic)
		if arn == "" {
			return false
		}
		subs, err := snsClient.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(arn)})
		require.NoError(t, err)
		for _, s := range subs.Subscriptions {
			if strings.HasSuffix(aws.ToString(s.Endpoint), ":"+queue) {
				return true
			}
		}
		return false
	}
}
