//go:build !nonats

package transport_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/testenv"
)

// natsConsumer reads the durable consumer of a handler on a topic, as the
// transport names it: "<namespace>_<topic, dots as hyphens>_<handler>".
func natsConsumer(t *testing.T, js jetstream.JetStream, namespace, handler, topic string) *jetstream.ConsumerInfo {
	t.Helper()
	ctx := testenv.Context(t)
	name := namespace + "_" + strings.ReplaceAll(topic, ".", "-") + "_" + handler
	consumer, err := js.Consumer(ctx, namespace+"_messages", name)
	require.NoError(t, err, "consumer %s", name)
	info, err := consumer.Info(ctx)
	require.NoError(t, err)
	return info
}

func natsStreamMessages(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	s, err := js.Stream(testenv.Context(t), stream)
	require.NoError(t, err, "stream %s", stream)
	info, err := s.Info(testenv.Context(t))
	require.NoError(t, err)
	return info.State.Msgs
}

// The namespace prefixes the streams, the subjects and the durable
// consumers: "<ns>_messages" on "<ns>.>", "<ns>_poison" on "<ns>_poison",
// and a consumer per handler and topic, filtered on the topic's subject.
func TestNATS_Names(t *testing.T) {
	cfg := natsConfig(t)
	tr := newTransportOf(t, cfg)
	js := natsJetStream(t)
	ns := cfg.Namespace
	topic := "events.Named"
	subscriber(t, tr, "NamedHandler", topic)

	ctx := testenv.Context(t)
	messages, err := js.Stream(ctx, ns+"_messages")
	require.NoError(t, err)
	assert.Equal(t, []string{ns + ".>"}, messages.CachedInfo().Config.Subjects)
	assert.Equal(t, jetstream.LimitsPolicy, messages.CachedInfo().Config.Retention,
		"interest retention loses messages at a restart of NATS before 2.9.16")
	assert.Equal(t, 7*24*time.Hour, messages.CachedInfo().Config.MaxAge)
	poison, err := js.Stream(ctx, ns+"_poison")
	require.NoError(t, err)
	assert.Equal(t, []string{ns + "_poison"}, poison.CachedInfo().Config.Subjects)
	assert.Equal(t, jetstream.LimitsPolicy, poison.CachedInfo().Config.Retention)

	consumer := natsConsumer(t, js, ns, "NamedHandler", topic)
	assert.Equal(t, jetstream.DeliverByStartSequencePolicy, consumer.Config.DeliverPolicy,
		"a consumer whose state NATS lost starts again from its creation")
	assert.Equal(t, ns+".events.Named", consumer.Config.FilterSubject)
	assert.Equal(t, jetstream.AckExplicitPolicy, consumer.Config.AckPolicy)
	assert.Equal(t, transport.NATSAckWait, consumer.Config.AckWait)
	assert.Equal(t, -1, consumer.Config.MaxDeliver, "an outage never drops a message")
	assert.Positive(t, consumer.Config.MaxAckPending)
	assert.LessOrEqual(t, consumer.Config.MaxAckPending, 256, "bounded")
}

// A message published again under its UUID to its topic (the forwarder
// retrying a publish) is stored once; one published again for one handler
// (the retry queue, a requeue) is a new delivery each time.
func TestNATS_PublishIsStoredOnceByMessageID(t *testing.T) {
	cfg := natsConfig(t)
	tr := newTransportOf(t, cfg)
	topic := testenv.Name("events")
	sub := subscriber(t, tr, "H", topic)

	forwarded := newTestMessage("forwarded")
	require.NoError(t, tr.Publisher.Publish(topic, forwarded))
	require.NoError(t, tr.Publisher.Publish(topic, forwarded.Copy()), "the forwarder retries")
	retried := newTestMessage("retried")
	retried.Metadata.Set(transport.ForHandlerKey, "H")
	require.NoError(t, tr.Publisher.Publish(topic, retried))
	require.NoError(t, tr.Publisher.Publish(topic, retried.Copy()), "retried again later")

	other := testenv.Name("events")
	subscriber(t, tr, "H", other)
	require.NoError(t, tr.Publisher.Publish(other, forwarded.Copy()), "the same message on another topic")

	js := natsJetStream(t)
	assert.Equal(t, uint64(3), natsConsumer(t, js, cfg.Namespace, "H", topic).NumPending)
	assert.Equal(t, uint64(1), natsConsumer(t, js, cfg.Namespace, "H", other).NumPending, "each topic its own ids")

	messages := subscribe(t, sub, topic)
	got := map[string]int{}
	for range 3 {
		m := receive(t, messages, "a message")
		m.Ack()
		got[m.UUID]++
	}
	assert.Equal(t, map[string]int{forwarded.UUID: 1, retried.UUID: 2}, got)
	assertNoMessage(t, messages, "no fourth message")
}

// assertNoMessage fails if a message arrives within half a second: one
// on its way would have by then.
func assertNoMessage(t *testing.T, messages <-chan *message.Message, what string) {
	t.Helper()
	select {
	case m := <-messages:
		m.Ack()
		t.Errorf("%s: got %q", what, m.Payload)
	case <-time.After(500 * time.Millisecond):
	}
}

// Limits retention: a message stays in the stream once every handler of
// its topic acked it, each handler getting it once; a handler whose
// consumer is made later starts at the messages published after it.
func TestNATS_MessagesStayOnceAcked(t *testing.T) {
	cfg := natsConfig(t)
	tr := newTransportOf(t, cfg)
	js := natsJetStream(t)
	stream := cfg.Namespace + "_messages"
	topic := testenv.Name("events")
	first, second := subscriber(t, tr, "First", topic), subscriber(t, tr, "Second", topic)

	require.NoError(t, tr.Publisher.Publish(topic, newTestMessage("a"), newTestMessage("b")))
	for _, sub := range []message.Subscriber{first, second} {
		messages := subscribe(t, sub, topic)
		for range 2 {
			receive(t, messages, "each handler's message").Ack()
		}
		assertNoMessage(t, messages, "each message once")
	}
	require.Eventually(t, func() bool {
		return natsConsumer(t, js, cfg.Namespace, "First", topic).NumAckPending == 0 &&
			natsConsumer(t, js, cfg.Namespace, "Second", topic).NumAckPending == 0
	}, transportWait, 20*time.Millisecond, "both acked both")
	assert.Equal(t, uint64(2), natsStreamMessages(t, js, stream), "kept once acked")

	late := subscriber(t, tr, "Late", topic)
	require.NoError(t, tr.Publisher.Publish(topic, newTestMessage("c")))
	messages := subscribe(t, late, topic)
	got := receive(t, messages, "the message published after the consumer")
	got.Ack()
	assert.Equal(t, "c", string(got.Payload))
	assertNoMessage(t, messages, "none from before it")
}

// A messages stream made with interest retention by an earlier version is
// kept, with a warning saying how to have it made anew, and so is a
// consumer of it that delivers from the first message.
func TestNATS_KeepsAnEarlierVersionsInterestStream(t *testing.T) {
	cfg := natsConfig(t)
	js := natsJetStream(t)
	ctx := testenv.Context(t)
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: cfg.Namespace + "_messages", Subjects: []string{cfg.Namespace + ".>"},
		Retention: jetstream.InterestPolicy, Storage: jetstream.FileStorage,
	})
	require.NoError(t, err)
	topic := testenv.Name("events")
	name := cfg.Namespace + "_" + strings.ReplaceAll(topic, ".", "-") + "_Old"
	_, err = js.CreateConsumer(ctx, cfg.Namespace+"_messages", jetstream.ConsumerConfig{
		Durable: name, FilterSubject: cfg.Namespace + "." + topic,
		DeliverPolicy: jetstream.DeliverAllPolicy, AckPolicy: jetstream.AckExplicitPolicy,
	})
	require.NoError(t, err)

	logs := &testenv.LockedBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	tr := newTransportOf(t, cfg)
	assert.Contains(t, logs.String(), "NATS stream keeps messages by interest")
	sub := subscriber(t, tr, "Old", topic)
	assert.Equal(t, jetstream.DeliverAllPolicy, natsConsumer(t, js, cfg.Namespace, "Old", topic).Config.DeliverPolicy)
	require.NoError(t, tr.Publisher.Publish(topic, newTestMessage("still delivered")))
	receive(t, subscribe(t, sub, topic), "a message on the earlier stream").Ack()
}

// A consumer made by an earlier version, delivering from the next
// message, keeps its policy, which cannot change: the transport starts on
// it with a warning and delivers.
func TestNATS_KeepsAnEarlierConsumersDeliverPolicy(t *testing.T) {
	cfg := natsConfig(t)
	newTransportOf(t, cfg) // the streams
	js := natsJetStream(t)
	topic := testenv.Name("events")
	_, err := js.CreateConsumer(testenv.Context(t), cfg.Namespace+"_messages", jetstream.ConsumerConfig{
		Durable: cfg.Namespace + "_" + topic + "_H", FilterSubject: cfg.Namespace + "." + topic,
		DeliverPolicy: jetstream.DeliverNewPolicy, AckPolicy: jetstream.AckExplicitPolicy,
	})
	require.NoError(t, err)

	tr := newTransportOf(t, cfg)
	messages := subscribe(t, subscriber(t, tr, "H", topic), topic)
	require.NoError(t, tr.Publisher.Publish(topic, newTestMessage("delivered")))
	got := receive(t, messages, "the message")
	got.Ack()
	assert.Equal(t, "delivered", string(got.Payload))
	assert.Equal(t, jetstream.DeliverNewPolicy, natsConsumer(t, js, cfg.Namespace, "H", topic).Config.DeliverPolicy)
}

func TestNewTransport_NATSNeedsANamespace(t *testing.T) {
	_, err := transport.NewTransport(transport.Config{Kind: transport.KindNATS, NATSURL: "nats://127.0.0.1:4222"})
	assert.ErrorContains(t, err, "namespace")
}

func TestNewTransport_NATSMalformedURL(t *testing.T) {
	const password = "s3cret-Pa55"
	for _, rawURL := range []string{
		"",
		"nats://someone:" + password + "@127.0.0.1:notaport",
		"http://someone:" + password + "@127.0.0.1:4222",
		"someone:" + password + "@127.0.0.1:4222",
		"nats://someone:" + password + "@/",
		"nats://someone:" + password + "@127.0.0.1:4222/%zz",
		"nats://someone:" + password + "@127.0.0.1:99999999999",
	} {
		t.Run(fmt.Sprintf("%q", rawURL), func(t *testing.T) {
			tr, err := transport.NewTransport(transport.Config{
				Kind: transport.KindNATS, NATSURL: rawURL, Namespace: "never-created",
			})
			if tr != nil {
				_ = tr.Close()
			}
			require.Error(t, err)
			t.Logf("error: %v", err)
			assert.Contains(t, err.Error(), "NATS")
			assert.NotContains(t, err.Error(), password, "the error never echoes the password")
			assert.NotContains(t, err.Error(), "someone:", "the error never echoes the URL")
		})
	}
}

// An unreachable server is an error at once (the service must exit
// within 15 s), without the password.
func TestNewTransport_NATSFailsFast(t *testing.T) {
	const password = "wrong-s3cret-Pa55"
	start := time.Now()
	tr, err := transport.NewTransport(transport.Config{
		Kind: transport.KindNATS, NATSURL: "nats://someone:" + password + "@127.0.0.1:1", Namespace: "never-created",
	})
	if tr != nil {
		_ = tr.Close()
	}
	require.Error(t, err)
	t.Logf("error after %s: %v", time.Since(start), err)
	assert.Less(t, time.Since(start), 15*time.Second, "fails fast")
	assert.Contains(t, err.Error(), "NATS")
	assert.NotContains(t, err.Error(), password)
}

// A stream of the namespace's name that is not the transport's (a work
// queue) stops the start, named.
func TestNewTransport_NATSForeignStream(t *testing.T) {
	cfg := natsConfig(t)
	js := natsJetStream(t)
	_, err := js.CreateStream(testenv.Context(t), jetstream.StreamConfig{
		Name: cfg.Namespace + "_messages", Subjects: []string{cfg.Namespace + ".>"},
		Retention: jetstream.WorkQueuePolicy,
	})
	require.NoError(t, err)
	tr, err := transport.NewTransport(cfg)
	if tr != nil {
		_ = tr.Close()
	}
	require.Error(t, err)
	assert.Contains(t, err.Error(), cfg.Namespace+"_messages")
	assert.Contains(t, err.Error(), "retention")
}
