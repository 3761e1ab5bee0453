package e2e

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/apitest"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testsmtp"
)

// Config chooses the services of a deployment.
type Config struct {
	// PubSub is the transport: gochannel (the default), or another of transport.Kinds.
	PubSub string
	// Database makes the deployment's database and returns its URL, such
	// as testenv.PostgresDatabase; nil: a SQLite file.
	Database func(testing.TB) string
	// SMTP starts an SMTP sink for the emails; without it they go to the log.
	SMTP bool
	// Namespace is PUBSUB_NAMESPACE; empty: a new one, this deployment's alone.
	Namespace string
	// DefaultNamespace leaves PUBSUB_NAMESPACE unset: the database's own.
	DefaultNamespace bool
	// Vars are more variables of the service.
	Vars map[string]string
	// RedisURL is a Redis of the test's own, on redis; empty: TEST_REDIS_URL's.
	RedisURL string
	// NATSURL is a NATS server of the test's own, on nats; empty:
	// TEST_NATS_URL's.
	NATSURL string
}

// Deployment is one deployment of the service in a test: its own database,
// namespace and SMTP sink, on a RabbitMQ, NATS or Redis it may share, and
// the processes of the binary started on them. On amqp its queues and
// exchanges are deleted when the test ends, on nats its streams, on redis
// its keys.
type Deployment struct {
	PubSub string
	// Namespace is PUBSUB_NAMESPACE; "" under Config.DefaultNamespace.
	Namespace   string
	DatabaseURL string
	// DB is the test's own connection to the database.
	DB *testenv.DB
	// AMQPURL is RabbitMQ's URL, or UnreachableAMQP but on amqp.
	AMQPURL string
	// NATSURL is the NATS server's, or UnreachableNATS but on nats.
	NATSURL string
	// RedisURL is Redis's URL, or UnreachableRedis but on redis.
	RedisURL string
	// PubSubEmulatorHost is the Pub/Sub emulator's address on googlecloud,
	// SQSEndpoint the SQS emulator's on sqs.
	PubSubEmulatorHost string
	SQSEndpoint        string
	// SMTP is the sink of the emails, nil unless Config.SMTP.
	SMTP *testsmtp.Server
	// Vars is the service's environment over Environ's defaults: a test may
	// change it before the next Start. On a database server it holds a
	// MASTER_KEY of the deployment's own, shared by its processes.
	Vars map[string]string

	mu    sync.Mutex
	procs []*Process
	// sessions are shared by the clients of every process: a user
	// registered on one replica is read on another with its session.
	sessions *Sessions
}

// Deploy prepares a deployment; Start runs its processes.
func Deploy(t testing.TB, cfg Config) *Deployment {
	t.Helper()
	d := &Deployment{PubSub: cfg.PubSub, AMQPURL: UnreachableAMQP, NATSURL: UnreachableNATS, RedisURL: UnreachableRedis}
	if d.PubSub == "" {
		d.PubSub = transport.KindGoChannel
	}
	makeDB := cfg.Database
	if makeDB == nil {
		makeDB = testenv.SQLiteDatabase
	}
	d.DatabaseURL = makeDB(t)
	d.DB = testenv.OpenDB(t, d.DatabaseURL)
	if !cfg.DefaultNamespace {
		d.Namespace = cfg.Namespace
		if d.Namespace == "" {
			d.Namespace = NewNamespace()
		}
	}
	if d.PubSub == transport.KindAMQP {
		d.AMQPURL = testenv.URL(t, testenv.AMQPURLVar)
	}
	if d.PubSub == transport.KindNATS {
		d.NATSURL = cfg.NATSURL
		if d.NATSURL == "" {
			d.NATSURL = testenv.URL(t, testenv.NATSURLVar)
		}
	}
	if d.PubSub == transport.KindRedis {
		d.RedisURL = cfg.RedisURL
		if d.RedisURL == "" {
			d.RedisURL = testenv.URL(t, testenv.RedisURLVar)
		}
	}
	if d.PubSub == transport.KindAMQP || d.PubSub == transport.KindNATS || d.PubSub == transport.KindRedis {
		// The brokers the tests share lose the namespace's resources.
		t.Cleanup(func() {
			if d.ServingNamespace() != "" {
				TeardownNamespace(t, d.Transport())
			}
		})
	}
	d.Vars = map[string]string{
		"PUBSUB":           d.PubSub,
		"PUBSUB_NAMESPACE": d.Namespace,
		"DATABASE_URL":     d.DatabaseURL,
		"AMQP_URL":         d.AMQPURL,
		"NATS_URL":         d.NATSURL,
		"REDIS_URL":        d.RedisURL,
	}
	if d.PubSub == transport.KindGoogleCloud {
		// The emulator keeps what it is given in memory: each deployment's
		// namespace keeps its topics apart.
		d.PubSubEmulatorHost = testenv.URL(t, testenv.PubSubEmulatorVar)
		d.Vars["PUBSUB_EMULATOR_HOST"] = d.PubSubEmulatorHost
		d.Vars["GOOGLE_CLOUD_PROJECT"] = testenv.GoogleCloudProject
	}
	if d.PubSub == transport.KindSQS {
		// So is the SQS emulator, which checks no key.
		d.SQSEndpoint = testenv.URL(t, testenv.SQSEndpointVar)
		d.Vars["AWS_ENDPOINT_URL"] = d.SQSEndpoint
		d.Vars["AWS_REGION"] = testenv.AWSRegion
		d.Vars["AWS_ACCESS_KEY_ID"], d.Vars["AWS_SECRET_ACCESS_KEY"] = testenv.AWSTestKey, testenv.AWSTestKey
	}
	if testenv.NeedsMasterKey(d.DatabaseURL) {
		// Every process of the deployment wraps its keys under the same.
		d.Vars["MASTER_KEY"] = testenv.NewMasterKey()
	}
	if cfg.SMTP {
		d.SMTP = testsmtp.Start(t)
		d.Vars["SMTP_URL"] = d.SMTP.URL()
	}
	maps.Copy(d.Vars, cfg.Vars)
	return d
}

// Transport is the configuration of the deployment's transport, for a test
// that publishes or reads beside the service.
func (d *Deployment) Transport() transport.Config {
	return transport.Config{
		Kind: d.PubSub, DB: d.DB.DB, AMQPURL: d.AMQPURL, NATSURL: d.NATSURL, RedisURL: d.RedisURL,
		GoogleCloudProject: testenv.GoogleCloudProject, PubSubEmulatorHost: d.PubSubEmulatorHost,
		AWSRegion: testenv.AWSRegion, AWSEndpointURL: d.SQSEndpoint,
		AWSAccessKeyID: testenv.AWSTestKey, AWSSecretAccessKey: testenv.AWSTestKey,
		Namespace: d.ServingNamespace(),
	}
}

// Start runs a process of the deployment.
func (d *Deployment) Start(t testing.TB) *Process {
	t.Helper()
	p := Start(t, d.Vars)
	d.mu.Lock()
	d.procs = append(d.procs, p)
	d.mu.Unlock()
	return p
}

// Serve runs a process of the deployment and waits until it serves. Its
// client checks every exchange against the API's contract: a breach fails
// t.
func (d *Deployment) Serve(t testing.TB) (*Process, *Client) {
	t.Helper()
	p := d.Start(t)
	c := NewClient(p.WaitServing(t))
	d.mu.Lock()
	if d.sessions == nil {
		d.sessions = newSessions()
	}
	c.sessions = d.sessions
	d.mu.Unlock()
	c.checkContract(apitest.New(t))
	return p, c
}

// Processes returns the processes started so far.
func (d *Deployment) Processes() []*Process {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*Process(nil), d.procs...)
}

// ServingNamespace is the namespace the deployment uses: Namespace, or the
// one its first process logged at start; "" if none did.
func (d *Deployment) ServingNamespace() string {
	if d.Namespace != "" {
		return d.Namespace
	}
	for _, p := range d.Processes() {
		if ns, _ := p.StartLine()["namespace"].(string); ns != "" {
			return ns
		}
	}
	return ""
}

// Secrets are what a scan must find nowhere (AssertNoSecrets): the
// bcrypt prefixes, the users' passwords, and the deployment's master keys
// (MASTER_KEY, and each key of MASTER_KEYS).
func (d *Deployment) Secrets(users ...User) []string {
	secrets := Secrets(users...)
	if key := d.Vars["MASTER_KEY"]; key != "" {
		secrets = append(secrets, key)
	}
	if keys := d.Vars["MASTER_KEYS"]; keys != "" {
		for entry := range strings.SplitSeq(keys, ",") {
			_, key, _ := strings.Cut(entry, ":")
			secrets = append(secrets, strings.TrimSpace(key))
		}
	}
	return secrets
}

// MasterKeys are the master keys of the deployment: its MASTER_KEYS or
// MASTER_KEY, or on SQLite without them the key file its first process
// made beside the database.
func (d *Deployment) MasterKeys(t testing.TB) *secrets.MasterKeys {
	t.Helper()
	if list := d.Vars["MASTER_KEYS"]; list != "" {
		keys, err := secrets.ParseMasterKeys(list)
		require.NoError(t, err)
		return keys
	}
	encoded := d.Vars["MASTER_KEY"]
	if encoded == "" {
		path, ok := strings.CutPrefix(d.Vars["DATABASE_URL"], "sqlite:")
		require.True(t, ok, "MASTER_KEY is set but on SQLite")
		data, err := os.ReadFile(filepath.Join(filepath.Dir(path), secrets.MasterKeyFile))
		require.NoError(t, err, "the master key file")
		encoded = string(data)
	}
	key, err := secrets.ParseMasterKey(encoded)
	require.NoError(t, err)
	return secrets.OneMasterKey(key)
}

// Operator runs `app ARGS…` (poison list, retries list, ...) on the
// deployment and returns its output, failing the test on a non-zero exit.
func (d *Deployment) Operator(t testing.TB, args ...string) string {
	t.Helper()
	out, err := d.TryOperator(t, args...)
	require.NoError(t, err, "app %s: %s", strings.Join(args, " "), out)
	return out
}

// TryOperator runs `app ARGS…` on the deployment and returns its output
// (standard output and error) and how it exited, for a command that must
// fail.
func (d *Deployment) TryOperator(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(Binary(t), args...)
	cmd.Env = Environ(d.Vars)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TapEvents taps the UserRegistered exchange of the deployment's namespace
// on RabbitMQ, or its subject on NATS.
func (d *Deployment) TapEvents(t testing.TB) *Tap {
	t.Helper()
	switch d.PubSub {
	case transport.KindNATS:
		return TapNATS(t, d.NATSURL, d.Namespace, EventsExchange(d.Namespace))
	case transport.KindGoogleCloud, transport.KindSQS:
		return TapTransport(t, d.Transport(), TapGroup, transport.EventTopic("UserRegistered"))
	}
	return TapExchange(t, d.AMQPURL, EventsExchange(d.Namespace))
}

// TapEveryExchange taps every event's exchange and the poison exchange of
// the deployment's namespace on RabbitMQ, or its streams on NATS: a copy
// of every message the service publishes.
func (d *Deployment) TapEveryExchange(t testing.TB) []*Tap {
	t.Helper()
	if d.PubSub == transport.KindNATS {
		return []*Tap{TapNATS(t, d.NATSURL, d.Namespace, "")}
	}
	if d.PubSub == transport.KindGoogleCloud || d.PubSub == transport.KindSQS {
		topics := []string{transport.PoisonTopic}
		for _, name := range domain.Events.Names() {
			topics = append(topics, transport.EventTopic(name))
		}
		return []*Tap{TapTransport(t, d.Transport(), TapGroup+"-all", topics...)}
	}
	taps := []*Tap{TapExchange(t, d.AMQPURL, PoisonQueue(d.Namespace))}
	for _, name := range domain.Events.Names() {
		taps = append(taps, TapExchange(t, d.AMQPURL, transport.NamespacedTopic(d.Namespace, transport.EventTopic(name))))
	}
	return taps
}

// TapSQLTopics keeps a copy of every message of the SQL topics the
// deployment writes, for the secrets scan (TapSQLTopics).
func (d *Deployment) TapSQLTopics(t testing.TB) {
	t.Helper()
	TapSQLTopics(t, d.DB, d.Namespace)
}
