//go:build !nogooglecloud

package transport_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/internal/testenv"
)

// TestGoogleCloudPubSub runs Watermill's universal pub/sub suite on the
// googlecloud transport as the service builds it: namespaced, a
// subscription per group, HandlerConcurrency messages out at once. The
// suite skips, by these features:
//   - TestNoAck and TestPublishSubscribeInOrder: no order is kept (no
//     ordering keys, and HandlerConcurrency messages in flight);
//   - TestNewSubscriberReceivesOldMessages: a subscription gets only the
//     messages published after it was made;
//   - TestReconnect: it restarts the server (RestartServiceCommand), which
//     the other tests share, and the emulator keeps nothing across one.
//
// ExactlyOnceDelivery is false: an ack lost, or a deadline passed, brings
// a message again; the handlers are idempotent.
func TestGoogleCloudPubSub(t *testing.T) {
	runPubSubSuite(t, googleCloudConfig(t), true, newSuiteSubscriber)
}

// A handler's subscription is "<ns>.<topic>.<handler>", on the topic
// "<ns>.<topic>"; a name Pub/Sub would refuse is refused up front.
func TestGoogleCloud_Names(t *testing.T) {
	cfg := googleCloudConfig(t)
	tr := newTransportOf(t, cfg)
	_, err := tr.Subscriber("Bad handler", "events.Named")
	assert.ErrorContains(t, err, "Bad handler")
	_, err = transport.NewTransport(transport.Config{Kind: transport.KindGoogleCloud,
		GoogleCloudProject: testenv.GoogleCloudProject, PubSubEmulatorHost: cfg.PubSubEmulatorHost, Namespace: "1digit"})
	assert.ErrorContains(t, err, "PUBSUB_NAMESPACE")
	_, err = transport.NewTransport(transport.Config{Kind: transport.KindGoogleCloud})
	assert.ErrorContains(t, err, "GOOGLE_CLOUD_PROJECT")
}

// Throttling, deadlines and an unreachable service are outages; a refusal
// of the request itself is not.
func TestClassify_GoogleCloud(t *testing.T) {
	for code, want := range map[codes.Code]app.Failure{
		codes.Unavailable: app.FailureOutage, codes.DeadlineExceeded: app.FailureOutage,
		codes.ResourceExhausted: app.FailureOutage, codes.Aborted: app.FailureOutage,
		codes.PermissionDenied: app.FailurePermanent, codes.InvalidArgument: app.FailurePermanent,
		codes.NotFound: app.FailurePermanent,
	} {
		err := errors.Join(errors.New("publish"), status.Error(code, "from Pub/Sub"))
		assert.Equal(t, want, transport.Classify(err), code.String())
	}
}

// A message not acked in time (its replica died) comes back.
func TestGoogleCloud_NackedMessageComesBack(t *testing.T) {
	tr := newTransportOf(t, googleCloudConfig(t))
	topic := testenv.Name("events")
	messages := subscribe(t, subscriber(t, tr, "H", topic), topic)
	require.NoError(t, tr.Publisher.Publish(topic, newTestMessage("again")))
	first := receive(t, messages, "the message")
	first.Nack()
	again := receive(t, messages, "the message again")
	again.Ack()
	assert.Equal(t, first.UUID, again.UUID)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	select {
	case m := <-messages:
		t.Errorf("delivered a third time: %s", m.Payload)
	case <-ctx.Done():
	}
}

// A googlecloud subscriber's Close gives up after its limit: the client
// library's own waits for every ack, with no limit, and held a stop past
// 30 s after a broker cut. A Close in time returns what it returned.
func TestBoundedClose_GivesUpAfterItsLimit(t *testing.T) {
	release := make(chan struct{})
	stuck := &closingSubscriber{close: func() error { <-release; return nil }}
	err := transport.BoundedClose(stuck, 10*time.Millisecond).Close()
	close(release)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ack deadline")
	assert.True(t, stuck.closeCalled.Load())

	refused := errors.New("refused")
	prompt := &closingSubscriber{close: func() error { return refused }}
	assert.ErrorIs(t, transport.BoundedClose(prompt, time.Hour).Close(), refused)
}

// closingSubscriber is a subscriber whose Close runs close.
type closingSubscriber struct {
	close       func() error
	closeCalled atomic.Bool
}

func (s *closingSubscriber) Subscribe(context.Context, string) (<-chan *message.Message, error) {
	return nil, errors.New("not subscribed")
}

func (s *closingSubscriber) SubscribeInitialize(string) error { return nil }

func (s *closingSubscriber) Close() error {
	s.closeCalled.Store(true)
	return s.close()
}

// TestGoogleCloudPublishSettings_StopGivesUpOnAnUnansweredPublish: the
// client library's Stop waits for the publishes in flight, which with its
// default settings keep trying for 60 s against a server that does not
// answer (a broker cut). With the transport's settings it gives up at their
// limit, and the publish fails; the outbox keeps the message.
func TestGoogleCloudPublishSettings_StopGivesUpOnAnUnansweredPublish(t *testing.T) {
	silent := silentServer(t)
	ctx := context.Background()
	client, err := pubsub.NewClient(ctx, "onboard-test", option.WithEndpoint(silent),
		option.WithoutAuthentication(), option.WithTelemetryDisabled(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	publisher := client.Publisher("events")
	publisher.PublishSettings = transport.GoogleCloudPublishSettings(200 * time.Millisecond)
	result := publisher.Publish(ctx, &pubsub.Message{Data: []byte("{}")})

	stopped := make(chan struct{})
	go func() { publisher.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("Stop still waits for a publish the server never answered")
	}
	_, err = result.Get(ctx)
	assert.Error(t, err, "the unanswered publish fails")
}

// silentServer is the address of a TCP server that accepts connections and
// never answers on them.
func silentServer(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = listener.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, conn := range conns {
			_ = conn.Close()
		}
	})
	return listener.Addr().String()
}
