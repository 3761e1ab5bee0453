package service

import (
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/adapters/hasher"
	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/ports"
)

// Config is the service's configuration, read from the environment.
type Config struct {
	PubSub string
	// Namespace prefixes the transport's topics, tables, exchanges and
	// queues; empty: the database's own (see transport.DefaultNamespace).
	Namespace   string
	DatabaseURL string
	AMQPURL     string
	NATSURL     string
	RedisURL    string
	// GoogleCloudProject is PUBSUB=googlecloud's project, and
	// PubSubEmulatorHost its emulator (host:port), if any.
	GoogleCloudProject string
	PubSubEmulatorHost string
	// AWSRegion, AWSEndpointURL and the static key AWSAccessKeyID and
	// AWSSecretAccessKey are PUBSUB=sqs's (see transport.Config).
	AWSRegion          string
	AWSEndpointURL     string
	AWSAccessKeyID     string
	AWSSecretAccessKey string
	// AMQPQueueType is classic or quorum (AMQP_QUEUE_TYPE); a handler's
	// quorum queue poisons a message delivered AMQPDeliveryLimit times.
	AMQPQueueType     string
	AMQPDeliveryLimit int
	SMTPURL           string
	MailFrom          string
	HTTPAddr          string
	BcryptCost        int
	SignupPoints      int
	// RetryMaxAge: a message refused for itself alone (an SMTP 4xx to one
	// recipient) is retried until this long after its first failure, then
	// poisoned; RetryFirstDelay is the wait before its first retry, doubled
	// for each next one up to an hour.
	RetryMaxAge     time.Duration
	RetryFirstDelay time.Duration
	// HashQueueMax is how many registrations may wait for a turn to hash;
	// beyond, 503 overloaded at once. Zero: hasher.DefaultQueueMax.
	HashQueueMax int
	// HashConcurrency is how many passwords are hashed at a time; zero:
	// GOMAXPROCS. Not read from the environment: main sets it.
	HashConcurrency int
	// PasswordLimit bounds POST /users per client; the zero value is off.
	PasswordLimit ports.RateLimit
	// TrustedProxies may name the client in X-Forwarded-For; empty: none.
	TrustedProxies []netip.Prefix
	// VerifyURL is the address of the page a verification link opens;
	// VerifyTTL how long a link verifies.
	VerifyURL string
	VerifyTTL time.Duration
	// ResetURL is the address of the page a password reset link opens.
	ResetURL string
	// SessionTTL is a session's lifetime from sign-in; SessionIdleTimeout
	// ends it sooner when unused that long.
	SessionTTL         time.Duration
	SessionIdleTimeout time.Duration
	// EmailBudget bounds the emails per recipient, account and client.
	EmailBudget EmailBudget
	// MasterKeys wrap the keys stored in the database: MASTER_KEYS, or
	// MASTER_KEY as the one key; nil: on a sqlite: database, the key file
	// beside it (made on the first start); on any other database the
	// service refuses to start.
	MasterKeys *secrets.MasterKeys
	// masterKeysFrom names the variable MasterKeys came from, in errors.
	masterKeysFrom string
	// AdminToken opens GET /users?email= to operators; empty: off.
	AdminToken string
	// LogLevel is the least level logged; what libraries log at INFO is DEBUG.
	LogLevel slog.Level
	// MetricsAddr serves GET /metrics on a listener of its own; empty: on
	// the API's (HTTPAddr) with the embedded SQLite database, nowhere on
	// PostgreSQL or MySQL.
	MetricsAddr string
	// PProf also serves Go's profiles (net/http/pprof) under /debug/pprof/
	// on MetricsAddr's listener, never on the API's.
	PProf bool
	// ExportTraces: spans go over OTLP/HTTP to the endpoint the OTEL_*
	// variables name (see telemetry.go). TracerProvider, when set, takes
	// the spans instead; not read from the environment: tests set it.
	ExportTraces   bool
	TracerProvider trace.TracerProvider
	// TrustClientTraceparent makes a client's traceparent (and tracestate)
	// the parent of its request's span; false: a request starts a trace of
	// its own, linked to the client's span when spans are made, and nothing
	// of the client's trace context reaches a log line or a message.
	TrustClientTraceparent bool
}

// Defaults of the environment variables.
const (
	DefaultPubSub      = transport.KindSQL
	DefaultDatabaseURL = "sqlite:data/onboard.db" // embedded: `make run` needs no service
	DefaultAMQPURL     = "amqp://guest:guest@127.0.0.1:5672/"
	DefaultNATSURL     = "nats://127.0.0.1:4222"
	DefaultMailFrom    = "no-reply@onboard.local"
	DefaultHTTPAddr    = ":8080"
)

// Variable is an environment variable of the configuration: the help's
// line and the README's row, and how LoadConfig reads it. Variables is
// the one place a variable's default and bounds are written.
type Variable struct {
	Name, Meaning string
	// Default is the value LoadConfig reads when the variable is unset, or
	// a description of what it does then ("empty", or words with spaces).
	Default string
	// read sets the variable's part of cfg from its value (the
	// environment's, else Default when that is a value); its error
	// follows the variable's name. Nil: read elsewhere (the OpenTelemetry
	// SDK's, or a pair read together: loadMasterKeys, loadTracing).
	read func(cfg *Config, value string) error
}

// described tells a Default that describes what happens from one that is
// the value read.
func (v Variable) described() bool { return v.Default == "empty" || strings.Contains(v.Default, " ") }

// Variables are the environment variables LoadConfig reads, in the order
// it reads them, with their defaults and bounds: the help's list and the
// README's configuration table.
var Variables = []Variable{
	{"PUBSUB", "the transport: " + strings.Join(transport.Kinds, ", "), DefaultPubSub,
		oneOf(transport.Kinds, strings.Join(transport.Kinds, ", "), func(c *Config) *string { return &c.PubSub })},
	{"DATABASE_URL", "postgres://..., mysql://... (MariaDB 10.11+, MySQL 8) or sqlite:PATH", DefaultDatabaseURL,
		text(func(c *Config) *string { return &c.DatabaseURL })},
	{"AMQP_URL", "RabbitMQ, when PUBSUB=amqp", DefaultAMQPURL, text(func(c *Config) *string { return &c.AMQPURL })},
	{"AMQP_QUEUE_TYPE", "classic, or quorum: RabbitMQ's replicated queues (recommended; a queue's type cannot change)",
		transport.AMQPQueueClassic, oneOf([]string{transport.AMQPQueueClassic, transport.AMQPQueueQuorum}, "classic or quorum",
			func(c *Config) *string { return &c.AMQPQueueType })},
	{"AMQP_DELIVERY_LIMIT", "deliveries of a message by a handler's quorum queue before it goes to the poison queue",
		strconv.Itoa(transport.DefaultAMQPDeliveryLimit), whole(1, 1_000_000, func(c *Config) *int { return &c.AMQPDeliveryLimit })},
	{"NATS_URL", "NATS with JetStream, when PUBSUB=nats: nats://[user:pass@]host:port", DefaultNATSURL,
		text(func(c *Config) *string { return &c.NATSURL })},
	{"REDIS_URL", "Redis (Streams), when PUBSUB=redis: redis://[[user]:password@]host:port[/db], or rediss:// for TLS",
		transport.DefaultRedisURL, text(func(c *Config) *string { return &c.RedisURL })},
	{"GOOGLE_CLOUD_PROJECT", "Google Cloud project, when PUBSUB=googlecloud", "empty",
		text(func(c *Config) *string { return &c.GoogleCloudProject })},
	{"PUBSUB_EMULATOR_HOST", "host:port of a Pub/Sub emulator (cmd/pubsub-emulator), when PUBSUB=googlecloud; " +
		"empty: Google's service, with the environment's credentials", "empty",
		text(func(c *Config) *string { return &c.PubSubEmulatorHost })},
	{"AWS_REGION", "AWS region of SNS and SQS, when PUBSUB=sqs", "empty", text(func(c *Config) *string { return &c.AWSRegion })},
	{"AWS_ENDPOINT_URL", "endpoint of SNS and SQS when not AWS's, such as an emulator's (cmd/sqs-emulator), when PUBSUB=sqs",
		"empty", func(c *Config, value string) error {
			if u, err := url.Parse(value); value != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
				return errors.New("want an http:// or https:// address")
			}
			c.AWSEndpointURL = value
			return nil
		}},
	{"AWS_ACCESS_KEY_ID", "access key id, with AWS_SECRET_ACCESS_KEY, when PUBSUB=sqs; empty: the AWS SDK's other sources " +
		"(a profile, the role of the instance or task)", "empty", text(func(c *Config) *string { return &c.AWSAccessKeyID })},
	{"AWS_SECRET_ACCESS_KEY", "the access key's secret, when PUBSUB=sqs", "empty",
		text(func(c *Config) *string { return &c.AWSSecretAccessKey })},
	{"SMTP_URL", "smtp://[user:pass@]host:port or smtps://...; empty: emails go to the development mailbox " +
		"(mail/ beside an SQLite database) or, on PostgreSQL and MySQL, to the log", "empty",
		text(func(c *Config) *string { return &c.SMTPURL })},
	{"MAIL_FROM", "sender address", DefaultMailFrom, text(func(c *Config) *string { return &c.MailFrom })},
	{"HTTP_ADDR", "listen address", DefaultHTTPAddr, text(func(c *Config) *string { return &c.HTTPAddr })},
	{"BCRYPT_COST", "bcrypt work factor, 10..14", "10", whole(MinBcryptCost, 14, func(c *Config) *int { return &c.BcryptCost })},
	{"SIGNUP_POINTS", "points granted on registration", "100", whole(0, 1_000_000, func(c *Config) *int { return &c.SignupPoints })},
	{"RATE_LIMIT_PASSWORDS", "requests that hash or compare a password (registration, sign-in, email change, reset), " +
		"per client address: N/s, N/m or N/h, optionally ,burst=B; or off", ports.DefaultPasswordLimit,
		func(c *Config, value string) (err error) {
			c.PasswordLimit, err = ports.ParseRateLimit(value)
			return err
		}},
	{"TRUSTED_PROXIES", "IP addresses and CIDR prefixes of the proxies whose X-Forwarded-For is read", "empty",
		func(c *Config, value string) (err error) {
			c.TrustedProxies, err = ports.ParseTrustedProxies(value)
			return err
		}},
	{"HASH_QUEUE_MAX", "registrations that may wait for a turn to hash, 1..100000", strconv.Itoa(hasher.DefaultQueueMax),
		whole(1, 100_000, func(c *Config) *int { return &c.HashQueueMax })},
	{"PUBSUB_NAMESPACE", "prefix of every topic, table, exchange and queue: 1-16 of a-z 0-9 -", "the database's own",
		func(c *Config, value string) error {
			if c.Namespace = value; value == "" {
				return nil
			}
			return transport.ValidateNamespace(value)
		}},
	{"EMAIL_RETRY_MAX_AGE", "how long a message refused for itself alone is retried", "24h",
		span(time.Second, 30*24*time.Hour, func(c *Config) *time.Duration { return &c.RetryMaxAge })},
	{"EMAIL_RETRY_FIRST_DELAY", "wait before its first retry, then twice as long each time, at most 1h", "1m",
		span(100*time.Millisecond, time.Hour, func(c *Config) *time.Duration { return &c.RetryFirstDelay })},
	{"VERIFY_URL", "page a verification link opens, with ?user=<id>&token=<token>",
		"http://localhost:<HTTP_ADDR's port>/verify-email", page("/verify-email", func(c *Config) *string { return &c.VerifyURL })},
	{"VERIFY_TTL", "how long a verification link verifies", "48h",
		span(time.Minute, 30*24*time.Hour, func(c *Config) *time.Duration { return &c.VerifyTTL })},
	{"RESET_URL", "page a password reset link opens, with ?user=<id>&token=<token>; a link works for 1h, once",
		"http://localhost:<HTTP_ADDR's port>/reset-password", page("/reset-password", func(c *Config) *string { return &c.ResetURL })},
	{"SESSION_TTL", "lifetime of a session from sign-in (POST /sessions, or POST /users)", "24h",
		span(time.Minute, 90*24*time.Hour, func(c *Config) *time.Duration { return &c.SessionTTL })},
	{"SESSION_IDLE_TIMEOUT", "a session unused that long ends sooner", "1h",
		span(time.Minute, 90*24*time.Hour, func(c *Config) *time.Duration { return &c.SessionIdleTimeout })},
	{"EMAIL_BUDGET", "emails allowed per recipient address, account and client address: " +
		"recipient=N/h,account=N/h,client=N/h (any of them; N/m and N/s too), or off", DefaultEmailBudget,
		func(c *Config, value string) (err error) { c.EmailBudget, err = ParseEmailBudget(value); return err }},
	{"MASTER_KEY", "base64 of 32 random bytes (openssl rand -base64 32) wrapping the keys kept in the database, " +
		"the same for every replica; it or MASTER_KEYS is required unless DATABASE_URL is sqlite:",
		"on sqlite: master.key beside the database file", nil},
	{"MASTER_KEYS", "instead of MASTER_KEY, to rotate it: id:base64,id:base64,... (ids: 1-64 of A-Z a-z 0-9 . _ -); " +
		"the first wraps every new key, the others only unwrap, until onboard keys rotate re-wraps under the first", "empty", nil},
	{"ADMIN_TOKEN", "bearer token (32+ characters) of GET /users?email=; empty: that route is off", "empty",
		func(c *Config, value string) error {
			if c.AdminToken = value; value != "" && len(value) < 32 {
				return errors.New("want at least 32 characters")
			}
			return nil
		}},
	{"LOG_LEVEL", "least level logged: debug, info, warn or error; libraries log at debug", "info",
		func(c *Config, value string) error {
			if c.LogLevel.UnmarshalText([]byte(value)) != nil {
				return fmt.Errorf("want debug, info, warn or error, got %q", value)
			}
			return nil
		}},
	{"METRICS_ADDR", "listen address of GET /metrics (Prometheus) apart from the API; empty: on HTTP_ADDR with SQLite, " +
		"nowhere with PostgreSQL or MySQL", "empty", func(c *Config, value string) error {
		c.MetricsAddr = value // kept even when invalid, so that PPROF's check does not add a second error
		if _, _, err := net.SplitHostPort(value); value != "" && err != nil {
			return errors.New("want host:port or :port, such as :9090")
		}
		return nil
	}},
	{"PPROF", "on: also serve Go's profiles (net/http/pprof) at /debug/pprof/ on METRICS_ADDR's listener, which it needs; " +
		"an operator's tool, as /metrics", "off", func(c *Config, value string) error {
		switch {
		case value == "on" && c.MetricsAddr != "":
			c.PProf = true
		case value == "on":
			return errors.New("on needs METRICS_ADDR, the listener the profiles are served on")
		case value != "off":
			return fmt.Errorf("want on or off, got %q", value)
		}
		return nil
	}},
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTLP/HTTP collector (http:// or https://) that receives the spans at /v1/traces; " +
		"empty: no span is exported. Read by the OpenTelemetry SDK, with the other OTEL_EXPORTER_OTLP_* variables", "empty", nil},
	{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "the spans' full OTLP/HTTP URL, instead of the above (read by the OpenTelemetry SDK)",
		"empty", nil},
	{"OTEL_EXPORTER_OTLP_PROTOCOL", "OTLP's protocol: http/protobuf alone in this build (grpc or http/json stops the start)",
		"http/protobuf", nil},
	{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "the spans' OTLP protocol, instead of the above: http/protobuf alone",
		"http/protobuf", nil},
	{"OTEL_SERVICE_NAME", "service.name of the spans (read by the OpenTelemetry SDK)", DefaultServiceName, nil},
	{"OTEL_RESOURCE_ATTRIBUTES", "key=value,... added to the spans' resource (read by the OpenTelemetry SDK)", "empty", nil},
	{"OTEL_TRACES_SAMPLER", "always_on, always_off, traceidratio, or parentbased_ and one of them (read by the OpenTelemetry SDK)",
		"parentbased_always_on", nil},
	{"OTEL_TRACES_SAMPLER_ARG", "share of the traces a traceidratio sampler keeps, 0..1 (read by the OpenTelemetry SDK)", "1", nil},
	{"OTEL_SDK_DISABLED", "true: no span is exported, whatever the variables above say", "false", nil},
	{"OTEL_TRUST_CLIENT_TRACEPARENT", "true: a client's traceparent and tracestate are its request's parent; " +
		"false: a request starts a trace of its own, linked to the client's", "false", func(c *Config, value string) (err error) {
		if value = strings.TrimSpace(value); value == "" {
			return nil // blank: the default
		}
		if c.TrustClientTraceparent, err = strconv.ParseBool(value); err != nil {
			return fmt.Errorf("want true or false, got %q", value)
		}
		return nil
	}},
}

// text reads a variable as it is.
func text(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, value string) error { *field(c) = value; return nil }
}

// oneOf reads one of values, want naming them in its error.
func oneOf(values []string, want string, field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, value string) error {
		if !slices.Contains(values, value) {
			return fmt.Errorf("want %s, got %q", want, value)
		}
		*field(c) = value
		return nil
	}
}

// whole reads a whole number from lowest to highest.
func whole(lowest, highest int, field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, value string) error {
		n, err := strconv.Atoi(value)
		if err != nil || n < lowest || n > highest {
			return fmt.Errorf("want a whole number from %d to %d, got %q", lowest, highest, value)
		}
		*field(c) = n
		return nil
	}
}

// span reads a duration from lowest to highest.
func span(lowest, highest time.Duration, field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, value string) error {
		d, err := time.ParseDuration(value)
		if err != nil || d < lowest || d > highest {
			return fmt.Errorf("want a duration from %s to %s (such as 90s, 30m, 24h), got %q", lowest, highest, value)
		}
		*field(c) = d
		return nil
	}
}

// page reads the address of a page a link opens; unset, the service's own
// page at path on HTTP_ADDR (read before it).
func page(path string, field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, value string) error {
		if value == "" {
			value = ownPage(c.HTTPAddr, path)
		}
		if u, err := url.Parse(value); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" {
			return errors.New("want an http:// or https:// address without a query")
		}
		*field(c) = value
		return nil
	}
}

// EmailBudget is the allowance of emails of each subject; Off: none is
// counted or refused.
type EmailBudget struct {
	Off                        bool
	Recipient, Account, Client adapters.EmailAllowance
}

// DefaultEmailBudget is EMAIL_BUDGET's default: 3 emails an hour to an
// address whatever causes them (a welcome email and two more), 6 about one
// account (an address change is two: the link and the notice), 20 that
// one client address causes.
const DefaultEmailBudget = "recipient=3/h,account=6/h,client=20/h"

// ParseEmailBudget reads "off" or comma-separated subject=N/period
// allowances; a subject left out keeps its default.
func ParseEmailBudget(s string) (EmailBudget, error) {
	budget := EmailBudget{Recipient: adapters.DefaultEmailRecipient, Account: adapters.DefaultEmailAccount,
		Client: adapters.DefaultEmailClient}
	if strings.TrimSpace(s) == "off" {
		return EmailBudget{Off: true}, nil
	}
	subjects := map[string]*adapters.EmailAllowance{"recipient": &budget.Recipient, "account": &budget.Account,
		"client": &budget.Client}
	var errs []error
	for _, part := range strings.Split(s, ",") {
		name, spec, ok := strings.Cut(strings.TrimSpace(part), "=")
		allowance, known := subjects[name]
		if !ok || !known {
			errs = append(errs, fmt.Errorf("want off or recipient=N/h,account=N/h,client=N/h, got %q", part))
			continue
		}
		limit, err := ports.ParseRateLimit(spec)
		if err != nil || limit.Off() || strings.Contains(spec, "burst") {
			errs = append(errs, fmt.Errorf("%s: want N/s, N/m or N/h, got %q", name, spec))
			continue
		}
		*allowance = adapters.EmailAllowance{Count: limit.Count, Per: limit.Per}
	}
	return budget, errors.Join(errs...)
}

// loadMasterKeys reads MASTER_KEYS or MASTER_KEY; its errors never quote
// a key.
func (c *Config) loadMasterKeys(getenv func(string) string) error {
	ring, single := getenv("MASTER_KEYS"), getenv("MASTER_KEY")
	switch {
	case ring != "" && single != "":
		return errors.New("MASTER_KEY and MASTER_KEYS are both set: set MASTER_KEYS alone, the current key first " +
			"(the key of MASTER_KEY keeps opening what it wrapped in MASTER_KEYS, under any id)")
	case ring != "":
		keys, err := secrets.ParseMasterKeys(ring)
		if err != nil {
			return fmt.Errorf("MASTER_KEYS: %w", err)
		}
		c.MasterKeys, c.masterKeysFrom = keys, "MASTER_KEYS"
	case single != "":
		key, err := secrets.ParseMasterKey(single)
		if err != nil {
			return fmt.Errorf("MASTER_KEY: %w", err)
		}
		c.MasterKeys, c.masterKeysFrom = secrets.OneMasterKey(key), "MASTER_KEY"
	}
	return nil
}

// ownPage is the address of the service's own page at path, as a browser
// on this host reaches it through HTTP_ADDR: its host, or localhost for
// every interface, and its port.
func ownPage(httpAddr, path string) string {
	host, port, err := net.SplitHostPort(httpAddr)
	if err != nil {
		return "http://localhost:8080" + path // HTTP_ADDR's own error says what is wrong
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + path
}

// setDefaults fills what a Config built in code leaves zero and the
// environment would have set, with Variables' defaults.
func (c *Config) setDefaults() {
	d, _ := LoadConfig(func(string) string { return "" }) // every default: an empty environment is valid
	if c.VerifyURL == "" {
		c.VerifyURL = d.VerifyURL
	}
	if c.VerifyTTL == 0 {
		c.VerifyTTL = d.VerifyTTL
	}
	if c.ResetURL == "" {
		c.ResetURL = d.ResetURL
	}
	if c.EmailBudget == (EmailBudget{}) {
		c.EmailBudget = d.EmailBudget
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = d.SessionTTL
	}
	if c.SessionIdleTimeout == 0 {
		c.SessionIdleTimeout = d.SessionIdleTimeout
	}
}

// LoadConfig reads the configuration through getenv, each variable as
// Variables says, and returns every problem at once. Error messages never
// quote a URL, which may hold a password.
func LoadConfig(getenv func(string) string) (Config, error) {
	var cfg Config
	var errs []error
	for _, v := range Variables {
		if v.read == nil {
			continue
		}
		value := getenv(v.Name)
		if value == "" && !v.described() {
			value = v.Default
		}
		if err := v.read(&cfg, value); err != nil && strings.HasPrefix(err.Error(), v.Name+": ") {
			errs = append(errs, err) // a parser's error that names the variable itself
		} else if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", v.Name, err))
		}
	}
	if err := cfg.loadMasterKeys(getenv); err != nil {
		errs = append(errs, err)
	}
	var err error
	if cfg.ExportTraces, err = loadTracing(getenv); err != nil {
		errs = append(errs, err)
	}
	if cfg.PubSub == transport.KindGoogleCloud && cfg.GoogleCloudProject == "" {
		errs = append(errs, errors.New("GOOGLE_CLOUD_PROJECT: PUBSUB=googlecloud needs the project"))
	}
	if cfg.PubSub == transport.KindSQS && cfg.AWSRegion == "" {
		errs = append(errs, errors.New("AWS_REGION: PUBSUB=sqs needs the region"))
	}
	return cfg, errors.Join(errs...)
}

// Transport is the configuration of the transport PUBSUB names, on db, in
// the deployment's namespace.
func (c Config) Transport(db *sql.DB, namespace string) transport.Config {
	return transport.Config{
		Kind: c.PubSub, DB: db, AMQPURL: c.AMQPURL, AMQPQueueType: c.AMQPQueueType,
		AMQPDeliveryLimit: c.AMQPDeliveryLimit, NATSURL: c.NATSURL, RedisURL: c.RedisURL,
		GoogleCloudProject: c.GoogleCloudProject, PubSubEmulatorHost: c.PubSubEmulatorHost, Namespace: namespace,
		AWSRegion: c.AWSRegion, AWSEndpointURL: c.AWSEndpointURL, AWSAccessKeyID: c.AWSAccessKeyID,
		AWSSecretAccessKey: c.AWSSecretAccessKey,
	}
}
