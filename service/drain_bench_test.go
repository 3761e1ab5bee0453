package service

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testenv"
)

// backlogEvents is how many UserRegistered events wait when the handlers
// start, each of a registered user.
const backlogEvents = 10_000

// backlogOf is the backlog drained on pubsub: backlogEvents, but on the
// Pub/Sub and SQS emulators a tenth. goaws scans a queue's every message
// under one lock at each receive and each delete. pstest hands a subscription's every message to
// its stream at once, without the flow control Google's service applies
// (MaxOutstandingMessages), and rescans its messages at each delivery and
// each ack: the client then holds thousands and extends their deadlines,
// and a backlog of 10,000 measures that churn, for minutes per drain.
func backlogOf(pubsub string) int {
	if pubsub == transport.KindGoogleCloud || pubsub == transport.KindSQS {
		return backlogEvents / 10
	}
	return backlogEvents
}

// drainOrder drains the plain and the sealed backlogs in turns, so that a
// drift of the machine's load weighs on both alike.
var drainOrder = []backlogFields{
	plainFields, sealedFields, sealedFields, plainFields,
	plainFields, sealedFields, sealedFields, plainFields,
}

// BenchmarkBacklogDrain: with the handlers stopped, backlogOf(pubsub) events
// wait on the transport; the handlers start, and the benchmark reports the
// events/s until every email and every grant is done, beside the raw
// rates of the same transport (a plain publisher and subscriber, no
// handlers) measured in the same run, and the ratio of the two; on sql and
// amqp also beside the raw rates of Watermill's stock pub/sub of the same
// broker (stockRawThroughput), the peer a new user would pick; on each
// transport: sql and amqp, nats and redis (TEST_NATS_URL, TEST_REDIS_URL),
// googlecloud and sqs on the emulators (TEST_PUBSUB_EMULATOR_HOST,
// TEST_AWS_ENDPOINT_URL).
//
// The events are those of backlogEvents users registered once, through
// the user store, into a database that each drain copies. They drain in
// drainOrder, with their personal fields plain, as an older version wrote
// them (today's drain), or sealed under the users' keys, as the event
// store writes them, which the handlers open; the benchmark reports both
// rates, each over all its drains, and their ratio (the target:
// sealed/plain at least 0.90).
//
//	go test -run '^$' -bench BacklogDrain -benchtime 1x ./service/
func BenchmarkBacklogDrain(b *testing.B) {
	users := registerBacklog(b)
	for _, pubsub := range []string{transport.KindSQL, transport.KindAMQP, transport.KindNATS,
		transport.KindRedis, transport.KindGoogleCloud, transport.KindSQS} {
		b.Run(pubsub, func(b *testing.B) {
			events := backlogOf(pubsub)
			for b.Loop() {
				rawPublish, raw := rawThroughput(b, pubsub)
				stockPublish, stock, hasPeer := stockRawThroughput(b, pubsub)
				var plain, sealed drainTotals
				for _, fields := range drainOrder {
					d := drainBacklog(b, pubsub, users, fields)
					b.Logf("%s backlog drained in %s, CPU per event: service %s, PostgreSQL %s", fields,
						d.elapsed.Round(time.Millisecond), d.serviceCPU/time.Duration(events), d.postgresCPU/time.Duration(events))
					if fields == sealedFields {
						sealed.add(d, events)
					} else {
						plain.add(d, events)
					}
				}
				b.ReportMetric(rawPublish, "raw-publish-msgs/s")
				b.ReportMetric(raw, "raw-msgs/s")
				b.ReportMetric(plain.rate(), "drain-events/s")
				b.ReportMetric(sealed.rate(), "sealed-drain-events/s")
				b.ReportMetric(plain.rate()/raw, "drain/raw")
				if hasPeer {
					b.ReportMetric(stockPublish, "stock-raw-publish-msgs/s")
					b.ReportMetric(stock, "stock-raw-msgs/s")
					b.ReportMetric(plain.rate()/stock, "drain/stock-raw")
				}
				b.ReportMetric(sealed.rate()/plain.rate(), "sealed/plain")
				if plain.cpuKnown && sealed.cpuKnown {
					b.ReportMetric(plain.cpuPerEvent(), "cpu-µs/event")
					b.ReportMetric(sealed.cpuPerEvent(), "sealed-cpu-µs/event")
					b.ReportMetric(plain.cpuPerEvent()/sealed.cpuPerEvent(), "cpu-plain/sealed")
				}
				b.Logf("%s on PostgreSQL: backlogs of %d events drained at %.0f events/s plain, %.0f sealed (ratio %.2f); "+
					"raw transport: publish %.0f msgs/s, subscribe %.0f msgs/s; drain/raw %.2f", pubsub, events,
					plain.rate(), sealed.rate(), sealed.rate()/plain.rate(), rawPublish, raw, plain.rate()/raw)
			}
		})
	}
}

// drain is what one drain took: its time, and the CPU time of the service
// and of the PostgreSQL backends serving its database meanwhile, when
// this machine's /proc shows them (cpuKnown).
type drain struct {
	elapsed, serviceCPU, postgresCPU time.Duration
	cpuKnown                         bool
}

// drainTotals adds up the drains of one kind.
type drainTotals struct {
	drain
	events int
}

func (t *drainTotals) add(d drain, events int) {
	t.cpuKnown = d.cpuKnown && (t.events == 0 || t.cpuKnown)
	t.elapsed += d.elapsed
	t.serviceCPU += d.serviceCPU
	t.postgresCPU += d.postgresCPU
	t.events += events
}

func (t drainTotals) rate() float64 { return float64(t.events) / t.elapsed.Seconds() }

// cpuPerEvent is the CPU, in µs, the service and PostgreSQL spent per
// event: the drain rate of a machine whose cores they saturate goes as
// its inverse, whatever else runs beside them.
func (t drainTotals) cpuPerEvent() float64 {
	return float64((t.serviceCPU + t.postgresCPU).Microseconds()) / float64(t.events)
}

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
func benchService(ctx context.Context, b *testing.B, cfg Config, mailer *recordingMailer) *Service {
	b.Helper()
	svc, err := New(ctx, cfg, mailer, slog.New(slog.DiscardHandler))
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

// rawThroughput times the publishing of backlogOf(pubsub) small messages in
// batches of 500, then one subscriber (the service's, of HandlerConcurrency
// consumers where the transport has them) receiving and acking them all:
// the broker's Watermill rates as the service configures it, in msgs/s.
func rawThroughput(b *testing.B, pubsub string) (publish, subscribe float64) {
	b.Helper()
	setup := newBenchSetup(b, pubsub)
	tr := setup.tr
	topic := testenv.Name("raw")
	if pubsub == transport.KindAMQP {
		setup.deleteOnRabbitMQ(b, []string{setup.topic(topic)}, []string{setup.topic(topic) + "_raw"})
	}
	sub, err := tr.Subscriber("raw", topic)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = sub.Close() }()
	return timeRawMessages(b, tr.Publisher, sub, topic, backlogOf(pubsub))
}

// timeRawMessages times the publishing of n small messages to topic in
// batches of 500, then sub receiving and acking them all, in msgs/s.
func timeRawMessages(b *testing.B, pub message.Publisher, sub message.Subscriber, topic string, n int) (publish, subscribe float64) {
	b.Helper()
	msgs := make([]*message.Message, n)
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
			b.Fatal("raw messages did not all arrive")
		}
	}
	return publish, float64(len(msgs)) / time.Since(start).Seconds()
}

// drainBacklog builds the service (which registers its handlers' queues)
// on a copy of the users' database, publishes their UserRegistered events
// with their personal fields as fields says, then runs the service and
// times every effect.
func drainBacklog(b *testing.B, pubsub string, users *backlogUsers, fields backlogFields) drain {
	b.Helper()
	setup := newBenchSetupOn(b, pubsub, copyPostgresDatabase(b, users.dbURL))
	db, tr := setup.db, setup.tr
	mailer := &recordingMailer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := benchConfig(b, setup)
	cfg.MasterKeys = users.masterKeys
	svc := benchService(ctx, b, cfg, mailer)

	events := users.events[:backlogOf(pubsub)]
	msgs := make([]*message.Message, len(events))
	for i, e := range events {
		payload := e.sealed
		if fields == plainFields {
			payload = e.plain
		}
		msgs[i] = transport.NewEventMessage(ctx, e.id, "UserRegistered", e.schemaVersion, payload)
	}
	// As from the service's own outbox: the forwarder marks each message.
	origin, err := deploymentID(ctx, db.DB)
	if err != nil {
		b.Fatal(err)
	}
	publishInBatches(b, transport.StampOrigin(tr.Publisher, origin), transport.EventTopic("UserRegistered"), msgs)

	meter := startCPUMeter(b, db)
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	deadline := time.After(10 * time.Minute)
	for {
		meter.sample()
		grants := db.Count(b, `SELECT count(*) FROM points_entries`)
		if mailer.count() >= len(events) && grants >= len(events) {
			break
		}
		select {
		case err := <-done:
			b.Fatalf("the service stopped: %v", err)
		case <-deadline:
			b.Fatalf("drained %d emails and %d grants of %d", mailer.count(), grants, len(events))
		case <-time.After(50 * time.Millisecond):
		}
	}
	d := drain{elapsed: time.Since(start)}
	d.serviceCPU, d.postgresCPU, d.cpuKnown = meter.stop()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	mailer.mu.Lock()
	defer mailer.mu.Unlock()
	for _, mail := range mailer.mails {
		if !users.addresses[mail.To] {
			b.Fatalf("a welcome email went to %q, not to a registered address", mail.To)
		}
	}
	return d
}

// cpuMeter reads, in /proc, the CPU time of this process (the service, and
// the benchmark's polls beside it) and of the PostgreSQL backends serving
// one database but the benchmark's own connection; a backend that exits
// counts up to its last sample. On a machine whose /proc does not show
// them (another system, a server elsewhere), it knows nothing.
type cpuMeter struct {
	b        *testing.B
	db       *testenv.DB
	ownPID   int
	self     time.Duration
	backends map[int][2]time.Duration // CPU at the start (or zero) and at the last sight
	known    bool
	started  bool
}

func startCPUMeter(b *testing.B, db *testenv.DB) *cpuMeter {
	b.Helper()
	db.SetMaxOpenConns(1) // one backend of the benchmark's own
	m := &cpuMeter{b: b, db: db, backends: map[int][2]time.Duration{}}
	if err := db.QueryRow(`SELECT pg_backend_pid()`).Scan(&m.ownPID); err != nil {
		b.Fatal(err)
	}
	m.self, m.known = processCPU(os.Getpid())
	m.sample()
	m.started = true
	return m
}

// sample reads the CPU time of the database's backends.
func (m *cpuMeter) sample() {
	if !m.known {
		return
	}
	rows, err := m.db.Query(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> $1`, m.ownPID)
	if err != nil {
		m.b.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			m.b.Fatal(err)
		}
		cpu, ok := processCPU(pid)
		if !ok {
			continue // it exited, or runs elsewhere
		}
		seen, found := m.backends[pid]
		if !found && !m.started {
			seen[0] = cpu // serving already: counted from the start; one started since, from zero
		}
		seen[1] = cpu
		m.backends[pid] = seen
	}
	if err := rows.Err(); err != nil {
		m.b.Fatal(err)
	}
}

// stop samples a last time and returns the CPU time of this process and
// of the backends since the start.
func (m *cpuMeter) stop() (self, backends time.Duration, known bool) {
	m.sample()
	now, ok := processCPU(os.Getpid())
	if !m.known || !ok || len(m.backends) == 0 {
		return 0, 0, false
	}
	for _, seen := range m.backends {
		backends += seen[1] - seen[0]
	}
	return now - m.self, backends, true
}

// processCPU is the CPU time (user + system) of the process pid, from
// /proc; false where /proc does not show it.
func processCPU(pid int) (time.Duration, bool) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// pid (comm) state ppid …: comm may hold spaces, so split after ')'.
	text := string(raw)
	fields := strings.Fields(text[strings.LastIndexByte(text, ')')+1:])
	if len(fields) < 13 {
		return 0, false
	}
	user, _ := strconv.ParseInt(fields[11], 10, 64)
	system, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(user+system) * time.Second / 100, true // USER_HZ is 100 on Linux
}

// backlogFields is how a backlog's events hold their personal fields.
type backlogFields bool

const (
	plainFields  backlogFields = false // as an older version wrote them
	sealedFields backlogFields = true  // under the users' keys, as the event store writes them
)

func (f backlogFields) String() string {
	if f == sealedFields {
		return "sealed"
	}
	return "plain"
}

// sealedPrefix starts a personal field sealed under its user's key.
const sealedPrefix = "v1:"

// backlogUsers are backlogEvents users registered in a database of their
// own, which no connection holds open, so that each drain may copy it,
// and the UserRegistered events the event store wrote for them.
type backlogUsers struct {
	dbURL      string
	masterKeys *adapters.MasterKeys
	events     []backlogEvent
	addresses  map[string]bool
}

// backlogEvent is a stored UserRegistered: its payload as the event store
// wrote it, and the same with the personal fields in the clear.
type backlogEvent struct {
	id            string
	schemaVersion int
	sealed, plain []byte
}

// registerBacklog registers backlogEvents users, a few at a time, through
// the user store of a service built on a database of their own (not run),
// with a precomputed hash, and reads their events; their outbox rows are
// deleted, so that the forwarder of a drain does not publish them too.
func registerBacklog(b *testing.B) *backlogUsers {
	b.Helper()
	ctx := context.Background()
	users := &backlogUsers{dbURL: testenv.PostgresDatabase(b), addresses: make(map[string]bool, backlogEvents)}
	users.masterKeys = testMasterKeys(b, users.dbURL)
	cfg := Config{PubSub: transport.KindGoChannel, DatabaseURL: users.dbURL, HTTPAddr: "127.0.0.1:0",
		BcryptCost: 10, MailFrom: DefaultMailFrom, MasterKeys: users.masterKeys}
	svc := benchService(ctx, b, cfg, &recordingMailer{}) // the schema, the server keys, the outbox
	svc.closeResources()
	db, err := sql.Open("pgx", users.dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = db.Close() }() // before a drain copies the database
	store, err := OpenUserStore(ctx, cfg, db)
	if err != nil {
		b.Fatal(err)
	}

	const name = "Backlog User"
	hash := []byte("$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy")
	emails := make(map[string]string, backlogEvents) // by user id
	var registered sync.Mutex
	next := make(chan int)
	errs := make(chan error, 1)
	var workers sync.WaitGroup
	for range 8 {
		workers.Go(func() {
			for i := range next {
				id, email := uuid.Must(uuid.NewV7()).String(), fmt.Sprintf("backlog%d@example.com", i)
				user, err := domain.NewUser(id, name, email, "correct horse battery staple", "", time.Now())
				if err == nil {
					err = store.Register(ctx, user, hash)
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				registered.Lock()
				emails[id] = email
				registered.Unlock()
			}
		})
	}
	for i := range backlogEvents {
		next <- i
	}
	close(next)
	workers.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	for _, email := range emails {
		users.addresses[email] = true
	}
	if _, err := db.ExecContext(ctx, "DELETE FROM "+pq(watermillsql.MessagesTable(db, transport.OutboxTopic))); err != nil {
		b.Fatal(err)
	}

	rows, err := db.QueryContext(ctx, `SELECT event_id, schema_version, payload FROM events WHERE event_type = 'UserRegistered'`)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var (
			e      backlogEvent
			opened domain.UserRegistered
		)
		if err := rows.Scan(&e.id, &e.schemaVersion, &e.sealed); err != nil {
			b.Fatal(err)
		}
		if err := json.Unmarshal(e.sealed, &opened); err != nil {
			b.Fatal(err)
		}
		if !strings.HasPrefix(opened.Name, sealedPrefix) || !strings.HasPrefix(opened.Email, sealedPrefix) {
			b.Fatalf("the event store wrote the event of user %s with a plain personal field", opened.UserID)
		}
		opened.Name, opened.Email = name, emails[opened.UserID]
		if e.plain, err = json.Marshal(opened); err != nil {
			b.Fatal(err)
		}
		users.events = append(users.events, e)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	if len(users.events) != backlogEvents {
		b.Fatalf("%d UserRegistered events stored, want %d", len(users.events), backlogEvents)
	}
	return users
}

// pq quotes a PostgreSQL identifier.
func pq(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// copyPostgresDatabase creates a copy of the database at dbURL, which no
// connection may hold open, on the TEST_POSTGRES_URL server, drops it when
// the benchmark ends, and returns its URL.
func copyPostgresDatabase(b *testing.B, dbURL string) string {
	b.Helper()
	admin, err := sql.Open("pgx", testenv.URL(b, testenv.PostgresURLVar))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = admin.Close() }()
	source, err := url.Parse(dbURL)
	if err != nil {
		b.Fatal(err)
	}
	name := "onboard_test_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" TEMPLATE "+pq(strings.TrimPrefix(source.Path, "/"))); err != nil {
		b.Fatalf("copy the backlog's database: %v", err)
	}
	b.Cleanup(func() {
		admin, err := sql.Open("pgx", testenv.URL(b, testenv.PostgresURLVar))
		if err == nil {
			_, err = admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			_ = admin.Close()
		}
		if err != nil {
			b.Errorf("drop database %s: %v", name, err)
		}
	})
	copied := *source
	copied.Path = "/" + name
	return copied.String()
}
