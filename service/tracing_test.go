package service

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/crypto/bcrypt"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testsmtp"
)

// tracedService is the service on a transport and a database of the test's
// own, sending its emails to a real SMTP server, until the test ends.
type tracedService struct {
	t      *testing.T
	svc    *Service
	smtp   *testsmtp.Server
	logs   *testenv.LockedBuffer
	cancel context.CancelFunc
	runErr chan error
}

// tracedConfig is the configuration of a tracedService on pubsub and the
// database at dbURL (brokerURL: RabbitMQ for amqp, NATS for nats; on
// redis, the server of TEST_REDIS_URL; on googlecloud, the emulator of
// TEST_PUBSUB_EMULATOR_HOST; on sqs, that of TEST_AWS_ENDPOINT_URL).
func tracedConfig(t *testing.T, pubsub, dbURL, brokerURL string, smtp *testsmtp.Server) Config {
	t.Helper()
	namespace := "tr-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:8]
	amqpURL, natsURL := unreachableAMQP, ""
	switch pubsub {
	case transport.KindAMQP:
		amqpURL = brokerURL
		t.Cleanup(func() { e2e.DeleteNamespace(t, amqpURL, namespace) })
	case transport.KindNATS:
		natsURL = brokerURL
		t.Cleanup(func() { e2e.DeleteNATSNamespace(t, natsURL, namespace) })
	}
	var redisURL, emulator, sqsEndpoint string
	switch pubsub {
	case transport.KindRedis:
		redisURL = testenv.URL(t, testenv.RedisURLVar)
		t.Cleanup(func() { testenv.DeleteRedisNamespace(t, redisURL, namespace) })
	case transport.KindGoogleCloud:
		emulator = testenv.URL(t, testenv.PubSubEmulatorVar)
	case transport.KindSQS:
		sqsEndpoint = testenv.URL(t, testenv.SQSEndpointVar)
	}
	return Config{
		PubSub: pubsub, Namespace: namespace, DatabaseURL: dbURL, AMQPURL: amqpURL, NATSURL: natsURL,
		RedisURL: redisURL, GoogleCloudProject: testenv.GoogleCloudProject, PubSubEmulatorHost: emulator,
		AWSRegion: testenv.AWSRegion, AWSEndpointURL: sqsEndpoint, AWSAccessKeyID: testenv.AWSTestKey,
		AWSSecretAccessKey: testenv.AWSTestKey,
		SMTPURL:            smtp.URL(), MailFrom: "no-reply@onboard.local", HTTPAddr: "127.0.0.1:0",
		BcryptCost: bcrypt.MinCost, SignupPoints: 100, MasterKeys: testMasterKeys(t, dbURL),
	}
}

// startTracedService runs the service of cfg with the service's JSON log.
func startTracedService(t *testing.T, cfg Config, smtp *testsmtp.Server) *tracedService {
	t.Helper()
	s := &tracedService{t: t, smtp: smtp, logs: &testenv.LockedBuffer{}, runErr: make(chan error, 1)}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("service log:\n%s", s.logs.String())
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	svc, err := New(ctx, cfg, nil, NewLogger(s.logs, slog.LevelInfo))
	require.NoError(t, err)
	s.svc = svc
	go func() { s.runErr <- svc.Run(ctx) }()
	t.Cleanup(s.stop)
	select {
	case <-svc.handlers.Running():
	case err := <-s.runErr:
		s.runErr <- err
		t.Fatalf("the service stopped at start: %v", err)
	case <-time.After(serviceWait):
		t.Fatal("the handlers router did not start")
	}
	return s
}

// stop stops the service and waits for Run to return; later calls do nothing.
func (s *tracedService) stop() {
	s.cancel()
	select {
	case err, ok := <-s.runErr:
		if ok {
			assert.NoError(s.t, err, "Run returns nil after a stop")
			close(s.runErr)
		}
	case <-time.After(serviceWait):
		s.t.Error("the service did not stop")
	}
}

// register POSTs a user, with the header (a traceparent) if any, and
// returns its id once the service has sent its welcome email.
func (s *tracedService) register(email string, header http.Header) string {
	s.t.Helper()
	id := s.post(email, header)
	require.Eventually(s.t, func() bool { return len(s.smtp.MessagesTo(email)) == 1 }, serviceWait, 20*time.Millisecond,
		"the welcome email reaches the SMTP server")
	return id
}

// post registers a user and returns its id once answered 201.
func (s *tracedService) post(email string, header http.Header) string {
	s.t.Helper()
	body := `{"name":"Ada Lovelace","email":"` + email + `","password":"correct horse battery staple"}`
	req, err := http.NewRequest(http.MethodPost, "http://"+s.svc.Addr()+"/users", strings.NewReader(body))
	require.NoError(s.t, err)
	req.Header = header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: serviceWait}).Do(req)
	require.NoError(s.t, err)
	defer func() { _ = resp.Body.Close() }()
	answer, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	require.Equal(s.t, http.StatusCreated, resp.StatusCode, "%s", answer)
	var user userBody
	require.NoError(s.t, json.Unmarshal(answer, &user))
	return user.ID
}

// recordSpans is a tracer provider that keeps every ended span.
func recordSpans(t *testing.T) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	recorder := tracetest.NewSpanRecorder()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	return provider, recorder
}

// registrationSpans are the spans of one registration on pubsub, from the
// request to the two effects, each a child of the one before it (a
// handler's, of the publish to the transport): name → its parent's name.
// On sql the transaction publishes into the transport's queue itself; on
// the others into the outbox, which the forwarder moves.
func registrationSpans(pubsub string) map[string]string {
	spans := map[string]string{
		"POST /users":                             "",
		"UserStore.Register":                      "POST /users",
		"outbox publish events.UserRegistered":    "UserStore.Register",
		"forward events.UserRegistered":           "outbox publish events.UserRegistered",
		"handle SendWelcomeEmailOnUserRegistered": "forward events.UserRegistered",
		"SMTPMailer.Send":                         "handle SendWelcomeEmailOnUserRegistered",
		"handle SeedSignupPointsOnUserRegistered": "forward events.UserRegistered",
		"PointsLedger.Grant":                      "handle SeedSignupPointsOnUserRegistered",
	}
	if pubsub == transport.KindSQL {
		delete(spans, "outbox publish events.UserRegistered")
		delete(spans, "forward events.UserRegistered")
		spans["publish events.UserRegistered"] = "UserStore.Register"
		spans["handle SendWelcomeEmailOnUserRegistered"] = "publish events.UserRegistered"
		spans["handle SeedSignupPointsOnUserRegistered"] = "publish events.UserRegistered"
	}
	return spans
}

// publishSpan is the span of the registration's publish to the transport.
func publishSpan(pubsub string) string {
	if pubsub == transport.KindSQL {
		return "publish events.UserRegistered"
	}
	return "forward events.UserRegistered"
}

// spansByName waits until every span of a registration on pubsub has
// ended and returns them by name, each name once.
func spansByName(t *testing.T, recorder *tracetest.SpanRecorder, pubsub string) map[string]sdktrace.ReadOnlySpan {
	t.Helper()
	registrationSpans := registrationSpans(pubsub)
	collect := func() map[string][]sdktrace.ReadOnlySpan {
		byName := map[string][]sdktrace.ReadOnlySpan{}
		for _, span := range recorder.Ended() {
			if _, ok := registrationSpans[span.Name()]; ok {
				byName[span.Name()] = append(byName[span.Name()], span)
			}
		}
		return byName
	}
	require.Eventually(t, func() bool { return len(collect()) == len(registrationSpans) }, serviceWait,
		20*time.Millisecond, "every span of the registration ends")
	one := map[string]sdktrace.ReadOnlySpan{}
	for name, spans := range collect() {
		require.Len(t, spans, 1, "one span %q", name)
		one[name] = spans[0]
	}
	return one
}

// One registration is one trace on every transport: the request, the
// transaction, the publish to the transport (through the outbox and the
// forwarder but on sql), each handler's attempt and the effect it makes,
// children one of another.
func TestService_RegistrationIsOneTrace(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, pubsub string
		database     func(testing.TB) string
	}{
		{"gochannel on SQLite", transport.KindGoChannel, testenv.SQLiteDatabase},
		{"sql on SQLite", transport.KindSQL, testenv.SQLiteDatabase},
		{"sql on PostgreSQL", transport.KindSQL, testenv.PostgresDatabase},
		{"sql on MySQL", transport.KindSQL, testenv.MySQLDatabase},
		{"amqp on PostgreSQL", transport.KindAMQP, testenv.PostgresDatabase},
		{"nats on PostgreSQL", transport.KindNATS, testenv.PostgresDatabase},
		{"redis on PostgreSQL", transport.KindRedis, testenv.PostgresDatabase},
		{"googlecloud on PostgreSQL", transport.KindGoogleCloud, testenv.PostgresDatabase},
		{"sqs on PostgreSQL", transport.KindSQS, testenv.PostgresDatabase},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var brokerURL string
			switch tt.pubsub {
			case transport.KindAMQP:
				brokerURL = testenv.URL(t, testenv.AMQPURLVar)
			case transport.KindNATS:
				brokerURL = testenv.URL(t, testenv.NATSURLVar)
			}
			smtp := testsmtp.Start(t)
			cfg := tracedConfig(t, tt.pubsub, tt.database(t), brokerURL, smtp)
			provider, recorder := recordSpans(t)
			cfg.TracerProvider = provider
			s := startTracedService(t, cfg, smtp)

			email := "ada." + uuid.NewString()[:8] + "@example.com"
			id := s.register(email, nil)
			spans := spansByName(t, recorder, tt.pubsub)
			traceID := spans["POST /users"].SpanContext().TraceID()
			for name, parent := range registrationSpans(tt.pubsub) {
				span := spans[name]
				assert.Equal(t, traceID, span.SpanContext().TraceID(), "%s is in the request's trace", name)
				if parent == "" {
					assert.False(t, span.Parent().IsValid(), "%s is the trace's root", name)
				} else {
					assert.Equal(t, spans[parent].SpanContext().SpanID(), span.Parent().SpanID(),
						"%s is a child of %s", name, parent)
				}
				assert.NotEqual(t, codes.Error, span.Status().Code, "%s: %s", name, span.Status().Description)
			}
			assert.Equal(t, trace.SpanKindServer, spans["POST /users"].SpanKind())
			assert.Equal(t, trace.SpanKindProducer, spans[publishSpan(tt.pubsub)].SpanKind())
			assert.Equal(t, trace.SpanKindConsumer, spans["handle SeedSignupPointsOnUserRegistered"].SpanKind())
			assertNoPersonalData(t, recorder.Ended(), email, "Ada Lovelace", "correct horse battery staple")
			assertLogsCarryTrace(t, s.logs.String(), traceID.String(), id)
		})
	}
}

// An email refused for its recipient alone goes to the retry queue and
// stays in its registration's trace: each message taken back makes a
// "retry publish" span, whose child is the next attempt.
func TestService_RetriedEmailStaysInItsTrace(t *testing.T) {
	t.Parallel()
	smtp := testsmtp.Start(t)
	cfg := tracedConfig(t, transport.KindSQL, testenv.SQLiteDatabase(t), "", smtp)
	cfg.RetryFirstDelay = 100 * time.Millisecond
	provider, recorder := recordSpans(t)
	cfg.TracerProvider = provider
	s := startTracedService(t, cfg, smtp)

	email := "grey." + uuid.NewString()[:8] + "@example.com"
	smtp.Greylist(email)
	s.post(email, nil)
	require.Eventually(t, func() bool { return smtp.Greylistings() > 0 }, serviceWait, 20*time.Millisecond, "refused once")
	smtp.Ungreylist(email)
	require.Eventually(t, func() bool { return smtp.CountTo(email) == 1 }, serviceWait, 20*time.Millisecond,
		"sent from the retry queue")

	const handle, retry = "handle SendWelcomeEmailOnUserRegistered", "retry publish events.UserRegistered"
	byName := map[string][]sdktrace.ReadOnlySpan{}
	require.Eventually(t, func() bool {
		clear(byName)
		for _, span := range recorder.Ended() {
			byName[span.Name()] = append(byName[span.Name()], span)
		}
		last := len(byName[handle]) - 1
		return last > 0 && byName[handle][last].Status().Code != codes.Error
	}, serviceWait, 20*time.Millisecond, "the attempt that sent the email has ended")
	require.NotEmpty(t, byName[retry])
	require.Len(t, byName["POST /users"], 1)
	traceID := byName["POST /users"][0].SpanContext().TraceID()
	ids := map[trace.SpanID]string{}
	for name, spans := range byName {
		for _, span := range spans {
			assert.Equal(t, traceID, span.SpanContext().TraceID(), "%s is in the registration's trace", name)
			ids[span.SpanContext().SpanID()] = name
		}
	}
	assert.Equal(t, publishSpan(cfg.PubSub), ids[byName[retry][0].Parent().SpanID()], "the first retry's parent")
	sent := byName[handle][len(byName[handle])-1]
	assert.Equal(t, retry, ids[sent.Parent().SpanID()], "the attempt that sent it is a retry's child")
}

// assertNoPersonalData checks that no span name or attribute holds the
// user's address, name or password, nor the client's address.
func assertNoPersonalData(t *testing.T, spans []sdktrace.ReadOnlySpan, private ...string) {
	t.Helper()
	for _, span := range spans {
		for _, attr := range span.Attributes() {
			assert.NotContains(t, []string{"client.address", "network.peer.address", "user_agent.original"},
				string(attr.Key), "span %s", span.Name())
			for _, p := range private {
				assert.NotContains(t, attr.Value.String(), p, "span %s, attribute %s", span.Name(), attr.Key)
			}
		}
		for _, p := range private {
			assert.NotContains(t, span.Name(), p)
			assert.NotContains(t, span.Status().Description, p)
		}
	}
}

// assertLogsCarryTrace checks that the request's log line and its handlers'
// lines carry the trace id beside their correlation id.
func assertLogsCarryTrace(t *testing.T, logs, traceID, userID string) {
	t.Helper()
	want := map[string]bool{"http request": false}
	for _, r := range testenv.JSONRecords(t, logs) {
		msg, _ := r["msg"].(string)
		if msg == "message handled" && (r["handler"] == "SendWelcomeEmailOnUserRegistered" ||
			r["handler"] == "SeedSignupPointsOnUserRegistered") {
			msg += " by " + r["handler"].(string)
		}
		if msg == "http request" && r["path"] != "/users" {
			continue
		}
		if _, ok := want[msg]; ok || strings.HasPrefix(msg, "message handled by ") {
			want[msg] = true
			assert.Equal(t, traceID, r["trace_id"], "%s: %v", msg, r)
			assert.NotEmpty(t, r["correlation_id"], "%s: %v", msg, r)
		}
	}
	assert.Equal(t, map[string]bool{"http request": true, "message handled by SendWelcomeEmailOnUserRegistered": true,
		"message handled by SeedSignupPointsOnUserRegistered": true}, want, "the log lines of user %s", userID)
}

// clientTraceHeaders are a client's trace context: a traceparent, a
// tracestate of 7.8 KB (30 members, within the W3C limits) and baggage.
func clientTraceHeaders() (http.Header, string) {
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	members := make([]string, 30)
	for i := range members {
		members[i] = fmt.Sprintf("k%02d=%s", i, strings.Repeat("v", 255))
	}
	return http.Header{
		"Traceparent": {"00-" + traceID + "-00f067aa0ba902b7-01"},
		"Tracestate":  {strings.Join(members, ",")},
		"Baggage":     {"user.id=ada,tenant=evil"},
	}, traceID
}

// publishedMessage is a message as a topic's table holds it.
type publishedMessage struct {
	topic    string
	payload  string
	metadata map[string]string
}

// published returns the messages the outbox and the UserRegistered topic
// hold (on SQLite, they keep what was consumed). On sql, the registration's
// message went straight to its topic, and the outbox holds nothing.
func published(t *testing.T, s *tracedService) []publishedMessage {
	t.Helper()
	var out []publishedMessage
	for _, topic := range []string{transport.OutboxTopic,
		transport.NamespacedTopic(s.svc.transport.Namespace(), transport.EventTopic("UserRegistered"))} {
		out = append(out, topicMessages(t, s, topic)...)
	}
	require.Len(t, out, 1, "the registration's message on its topic, none in the outbox")
	assert.Equal(t, transport.NamespacedTopic(s.svc.transport.Namespace(), transport.EventTopic("UserRegistered")), out[0].topic)
	return out
}

// topicMessages returns the messages of a topic's table.
func topicMessages(t *testing.T, s *tracedService, topic string) []publishedMessage {
	t.Helper()
	rows, err := s.svc.db.QueryContext(testenv.Context(t),
		`SELECT payload, metadata FROM "`+watermillsql.MessagesTable(s.svc.db, topic)+`"`)
	require.NoError(t, err)
	defer func() { _ = rows.Close() }()
	var out []publishedMessage
	for rows.Next() {
		var payload []byte
		var metadata string
		require.NoError(t, rows.Scan(&payload, &metadata))
		m := publishedMessage{topic: topic, payload: string(payload), metadata: map[string]string{}}
		require.NoError(t, json.Unmarshal([]byte(metadata), &m.metadata))
		out = append(out, m)
	}
	require.NoError(t, rows.Err())
	return out
}

// assertNoClientTraceContext checks that no message holds anything of the
// client's trace context (clientTraceHeaders), in its metadata or payload.
func assertNoClientTraceContext(t *testing.T, messages []publishedMessage, clientTraceID string) {
	t.Helper()
	for _, m := range messages {
		assert.NotContains(t, m.metadata, "tracestate", m.topic)
		assert.NotContains(t, m.metadata, "baggage", m.topic)
		for _, text := range append(slices.Collect(maps.Values(m.metadata)), m.payload) {
			for _, client := range []string{clientTraceID, "tracestate", "vvvvvvvv", "baggage", "tenant=evil"} {
				assert.NotContains(t, text, client, m.topic)
			}
		}
	}
}

// A client's trace context is not trusted by default: the registration is
// a trace of the server's own, its request span linked to the client's;
// the log lines carry the server's trace id, and the messages its
// traceparent, with neither the client's tracestate nor its baggage.
func TestService_ClientTraceContextIsNotTrusted(t *testing.T) {
	t.Parallel()
	smtp := testsmtp.Start(t)
	cfg := tracedConfig(t, transport.KindSQL, testenv.SQLiteDatabase(t), "", smtp)
	provider, recorder := recordSpans(t)
	cfg.TracerProvider = provider
	s := startTracedService(t, cfg, smtp)

	header, clientTraceID := clientTraceHeaders()
	id := s.register("ada."+uuid.NewString()[:8]+"@example.com", header)
	spans := spansByName(t, recorder, cfg.PubSub)
	request := spans["POST /users"]
	traceID := request.SpanContext().TraceID()
	assert.NotEqual(t, clientTraceID, traceID.String(), "a trace of the server's own")
	assert.False(t, request.Parent().IsValid(), "the request's span is the root")
	require.Len(t, request.Links(), 1)
	assert.Equal(t, clientTraceID, request.Links()[0].SpanContext.TraceID().String(), "linked to the client's span")
	assert.Equal(t, "00f067aa0ba902b7", request.Links()[0].SpanContext.SpanID().String())
	for name, span := range spans {
		assert.Equal(t, traceID, span.SpanContext().TraceID(), "%s is in the server's trace", name)
		assert.Zero(t, span.SpanContext().TraceState().Len(), "%s carries no tracestate", name)
	}
	assertLogsCarryTrace(t, s.logs.String(), traceID.String(), id)
	assert.NotContains(t, s.logs.String(), clientTraceID)
	messages := published(t, s)
	assertNoClientTraceContext(t, messages, clientTraceID)
	assert.Contains(t, messages[0].metadata["traceparent"], traceID.String(), "the event carries the server's trace")
}

// Without spans and without trust, nothing of a client's trace context is
// taken up: no log line carries its trace, and no message its traceparent,
// tracestate or baggage.
func TestService_WithoutExportIgnoresAnUntrustedClientsTrace(t *testing.T) {
	t.Parallel()
	smtp := testsmtp.Start(t)
	s := startTracedService(t, tracedConfig(t, transport.KindSQL, testenv.SQLiteDatabase(t), "", smtp), smtp)

	header, clientTraceID := clientTraceHeaders()
	s.register("ada."+uuid.NewString()[:8]+"@example.com", header)
	require.Eventually(t, func() bool { return strings.Count(s.logs.String(), `"msg":"message handled"`) >= 2 },
		serviceWait, 20*time.Millisecond, "both handlers are done")
	assert.NotContains(t, s.logs.String(), clientTraceID)
	assert.NotContains(t, s.logs.String(), `"trace_id"`)
	messages := published(t, s)
	assertNoClientTraceContext(t, messages, clientTraceID)
	for _, m := range messages {
		assert.NotContains(t, m.metadata, "traceparent", m.topic)
		assert.NotContains(t, m.payload, "traceparent", m.topic)
	}
}
