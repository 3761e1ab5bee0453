package transport_test

import (
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/internal/testenv"
)

// TestSQSPubSub runs Watermill's universal pub/sub suite on the sqs
// transport as the service builds it: namespaced, an SNS topic per topic
// and an SQS queue per group, HandlerConcurrency receivers per
// subscriber. The suite skips, by these features:
//   - TestNoAck and TestPublishSubscribeInOrder: no order is kept
//     (standard queues, and HandlerConcurrency messages in flight);
//   - TestNewSubscriberReceivesOldMessages: a queue gets only the
//     messages published after it was subscribed to its topic;
//   - TestReconnect: it restarts the server (RestartServiceCommand), which
//     the other tests share, and the emulator keeps nothing across one.
//
// ExactlyOnceDelivery is false: SQS delivers at least once, and a
// visibility that ends brings a message again; the handlers are idempotent.
func TestSQSPubSub(t *testing.T) {
	runPubSubSuite(t, sqsConfig(t), true, newSuiteSubscriber)
}

// A name SNS or SQS would refuse is refused up front, and so is a
// configuration without a region or with half a key.
func TestSQS_Names(t *testing.T) {
	tr := newTransportOf(t, sqsConfig(t))
	_, err := tr.Subscriber("Bad handler", "events.Named")
	assert.ErrorContains(t, err, "Bad handler")
	_, err = transport.NewTransport(transport.Config{Kind: transport.KindSQS})
	assert.ErrorContains(t, err, "AWS_REGION")
	_, err = transport.NewTransport(transport.Config{Kind: transport.KindSQS, AWSRegion: testenv.AWSRegion,
		AWSAccessKeyID: "id"})
	assert.ErrorContains(t, err, "AWS_SECRET_ACCESS_KEY")
}

// SQS unreachable, a 5xx and throttling are outages; a refusal of the
// request itself is not.
func TestClassify_SQS(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + listener.Addr().String()
	require.NoError(t, listener.Close())
	_, err = transport.NewTransport(transport.Config{Kind: transport.KindSQS, AWSRegion: testenv.AWSRegion,
		AWSEndpointURL: closed, AWSAccessKeyID: testenv.AWSTestKey, AWSSecretAccessKey: testenv.AWSTestKey})
	require.Error(t, err)
	assert.Equal(t, app.FailureOutage, transport.Classify(err), "no server: %v", err)

	operation := func(err error) error {
		return &smithy.OperationError{ServiceID: "SQS", OperationName: "SendMessage", Err: err}
	}
	status := func(code int) error {
		return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code}},
			Err: errors.New("answered")}
	}
	for name, tc := range map[string]struct {
		err  error
		want app.Failure
	}{
		"503":               {operation(status(http.StatusServiceUnavailable)), app.FailureOutage},
		"throttled":         {operation(&smithy.GenericAPIError{Code: "ThrottlingException"}), app.FailureOutage},
		"request throttled": {operation(&smithy.GenericAPIError{Code: "RequestThrottled"}), app.FailureOutage},
		"access denied":     {operation(&smithy.GenericAPIError{Code: "AccessDenied"}), app.FailurePermanent},
		"too big":           {operation(&smithy.GenericAPIError{Code: "InvalidParameterValue"}), app.FailurePermanent},
	} {
		assert.Equal(t, tc.want, transport.Classify(tc.err), name)
	}
}

// A nacked message comes back after a backoff of a second, not after its
// visibility timeout.
func TestSQS_NackedMessageComesBack(t *testing.T) {
	tr := newTransportOf(t, sqsConfig(t))
	topic := testenv.Name("events")
	messages := subscribe(t, subscriber(t, tr, "H", topic), topic)
	require.NoError(t, tr.Publisher.Publish(topic, newTestMessage("again")))
	first := receive(t, messages, "the message")
	nacked := time.Now()
	first.Nack()
	again := receive(t, messages, "the message again")
	again.Ack()
	assert.Equal(t, first.UUID, again.UUID)
	assert.Less(t, time.Since(nacked), beforeVisibility, "back within the backoff, not the 30 s visibility")
	select {
	case m := <-messages:
		t.Errorf("delivered a third time: %s", m.Payload)
	case <-time.After(3 * time.Second): // past the emulator's tick and a second backoff
	}
}

// beforeVisibility bounds a message shown again at once: well short of the
// queues' 30 s visibility, which a message left to time out would wait,
// and long enough for a loaded machine (a CI run took 11 s under 10 s's
// bound).
const beforeVisibility = 20 * time.Second

// A replica that stops holding a message shows it again at once, for
// another replica.
func TestSQS_ClosedSubscriberHandsItsMessageOn(t *testing.T) {
	tr := newTransportOf(t, sqsConfig(t))
	topic := testenv.Name("events")
	first := subscriber(t, tr, "H", topic)
	require.NoError(t, tr.Publisher.Publish(topic, newTestMessage("handed on")))
	held := receive(t, subscribe(t, first, topic), "the message")
	require.NoError(t, first.Close())
	closed := time.Now()
	got := receive(t, subscribe(t, subscriber(t, tr, "H", topic), topic), "the message on the other replica")
	got.Ack()
	assert.Equal(t, held.UUID, got.UUID)
	assert.Less(t, time.Since(closed), beforeVisibility, "not after the 30 s visibility")
}

// A message its handler's queue received too often is in the handler's
// dead-letter queue, which the poison list reads; requeued, it goes back
// to that handler alone.
func TestSQS_DeadLetteredMessageIsListedAndRequeued(t *testing.T) {
	cfg := transport.WithSQSMaxReceives(sqsConfig(t), 1)
	tr := newTransportOf(t, cfg)
	queue, err := transport.NewPoisonQueue(cfg)
	require.NoError(t, err)
	topic := testenv.Name("events")
	messages := subscribe(t, subscriber(t, tr, "Failing", topic), topic)
	other := subscribe(t, subscriber(t, tr, "Other", topic), topic)
	msg := newTestMessage("dead")
	require.NoError(t, tr.Publisher.Publish(topic, msg))
	receive(t, other, "the message by the other handler").Ack()

	ctx := testenv.Context(t)
	var listed []transport.PoisonedMessage
	require.Eventually(t, func() bool {
		select {
		case m := <-messages:
			m.Nack()
		default:
		}
		listed, err = queue.List(ctx)
		require.NoError(t, err)
		return len(listed) == 1
	}, transportWait, 100*time.Millisecond, "dead-lettered after its receives")
	assert.Equal(t, transport.PoisonedMessage{
		ID: "Failing:" + msg.UUID, MessageUUID: msg.UUID, Topic: topic, Handler: "Failing",
		Reason: "received 1 times without an ack: SQS moved it to the dead-letter queue", Bytes: len("dead"),
	}, listed[0])

	requeued, err := queue.Requeue(ctx, listed[0].ID)
	require.NoError(t, err)
	assert.Equal(t, listed[0], requeued)
	back := receive(t, messages, "the requeued message")
	back.Ack()
	assert.Equal(t, msg.UUID, back.UUID)
	assert.Equal(t, "Failing", back.Metadata.Get(transport.ForHandlerKey))
	listed, err = queue.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, listed)
	select {
	case m := <-other:
		t.Errorf("the other handler got the requeued message: %s", m.Payload)
	case <-time.After(time.Second):
	}
	_, err = queue.Requeue(ctx, "Failing:"+msg.UUID)
	assert.ErrorIs(t, err, transport.ErrPoisonedMessageNotFound)
}
