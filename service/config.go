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
	// beyond, 503 overloaded at once. Zero: adapters.DefaultHashQueueMax.
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
	MasterKeys *adapters.MasterKeys
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
	DefaultRetryMaxAge = 24 * time.Hour
	DefaultRetryDelay  = time.Minute
	DefaultVerifyURL   = "http://localhost:8080/verify-email"
	DefaultVerifyTTL   = 48 * time.Hour
	DefaultResetURL    = "http://localhost:8080/reset-password"
)

// Variable is an environment variable of the configuration.
type Variable struct{ Name, Meaning, Default string }

// Variables are the environment variables LoadConfig reads, with their
// defaults: the help's list and the README's configuration table.
var Variables = []Variable{
	{"PUBSUB", "the transport: " + strings.Join(transport.Kinds, ", "), DefaultPubSub},
	{"DATABASE_URL", "postgres://..., mysql://... (MariaDB 10.11+, MySQL 8) or sqlite:PATH", DefaultDatabaseURL},
	{"AMQP_URL", "RabbitMQ, when PUBSUB=amqp", DefaultAMQPURL},
	{"AMQP_QUEUE_TYPE", "classic, or quorum: RabbitMQ's replicated queues (recommended; a queue's type cannot change)",
		transport.AMQPQueueClassic},
	{"AMQP_DELIVERY_LIMIT", "deliveries of a message by a handler's quorum queue before it goes to the poison queue",
		strconv.Itoa(transport.DefaultAMQPDeliveryLimit)},
	{"NATS_URL", "NATS with JetStream, when PUBSUB=nats: nats://[user:pass@]host:port", DefaultNATSURL},
	{"REDIS_URL", "Redis (Streams), when PUBSUB=redis: redis://[[user]:password@]host:port[/db], or rediss:// for TLS",
		transport.DefaultRedisURL},
	{"GOOGLE_CLOUD_PROJECT", "Google Cloud project, when PUBSUB=googlecloud", "empty"},
	{"PUBSUB_EMULATOR_HOST", "host:port of a Pub/Sub emulator (cmd/pubsub-emulator), when PUBSUB=googlecloud; " +
		"empty: Google's service, with the environment's credentials", "empty"},
	{"AWS_REGION", "AWS region of SNS and SQS, when PUBSUB=sqs", "empty"},
	{"AWS_ENDPOINT_URL", "endpoint of SNS and SQS when not AWS's, such as an emulator's (cmd/sqs-emulator), when PUBSUB=sqs",
		"empty"},
	{"AWS_ACCESS_KEY_ID", "access key id, with AWS_SECRET_ACCESS_KEY, when PUBSUB=sqs; empty: the AWS SDK's other sources " +
		"(a profile, the role of the instance or task)", "empty"},
	{"AWS_SECRET_ACCESS_KEY", "the access key's secret, when PUBSUB=sqs", "empty"},
	{"SMTP_URL", "smtp://[user:pass@]host:port or smtps://...; empty: emails go to the development mailbox " +
		"(mail/ beside an SQLite database) or, on PostgreSQL and MySQL, to the log", "empty"},
	{"MAIL_FROM", "sender address", DefaultMailFrom},
	{"HTTP_ADDR", "listen address", DefaultHTTPAddr},
	{"BCRYPT_COST", "bcrypt work factor, 10..14", "10"},
	{"SIGNUP_POINTS", "points granted on registration", "100"},
	{"RATE_LIMIT_PASSWORDS", "requests that hash or compare a password (registration, sign-in, email change, reset), " +
		"per client address: N/s, N/m or N/h, optionally ,burst=B; or off", "30/m,burst=10"},
	{"TRUSTED_PROXIES", "IP addresses and CIDR prefixes of the proxies whose X-Forwarded-For is read", "empty"},
	{"HASH_QUEUE_MAX", "registrations that may wait for a turn to hash, 1..100000", "64"},
	{"PUBSUB_NAMESPACE", "prefix of every topic, table, exchange and queue: 1-16 of a-z 0-9 -", "the database's own"},
	{"EMAIL_RETRY_MAX_AGE", "how long a message refused for itself alone is retried", "24h"},
	{"EMAIL_RETRY_FIRST_DELAY", "wait before its first retry, then twice as long each time, at most 1h", "1m"},
	{"VERIFY_URL", "page a verification link opens, with ?user=<id>&token=<token>",
		"http://localhost:<HTTP_ADDR's port>/verify-email"},
	{"VERIFY_TTL", "how long a verification link verifies", "48h"},
	{"RESET_URL", "page a password reset link opens, with ?user=<id>&token=<token>; a link works for 1h, once",
		"http://localhost:<HTTP_ADDR's port>/reset-password"},
	{"SESSION_TTL", "lifetime of a session from sign-in (POST /sessions, or POST /users)", "24h"},
	{"SESSION_IDLE_TIMEOUT", "a session unused that long ends sooner", "1h"},
	{"EMAIL_BUDGET", "emails allowed per recipient address, account and client address: " +
		"recipient=N/h,account=N/h,client=N/h (any of them; N/m and N/s too), or off", DefaultEmailBudget},
	{"MASTER_KEY", "base64 of 32 random bytes (openssl rand -base64 32) wrapping the keys kept in the database, " +
		"the same for every replica; it or MASTER_KEYS is required unless DATABASE_URL is sqlite:",
		"on sqlite: master.key beside the database file"},
	{"MASTER_KEYS", "instead of MASTER_KEY, to rotate it: id:base64,id:base64,... (ids: 1-64 of A-Z a-z 0-9 . _ -); " +
		"the first wraps every new key, the others only unwrap, until onboard keys rotate re-wraps under the first", "empty"},
	{"ADMIN_TOKEN", "bearer token (32+ characters) of GET /users?email=; empty: that route is off", "empty"},
	{"LOG_LEVEL", "least level logged: debug, info, warn or error; libraries log at debug", "info"},
	{"METRICS_ADDR", "listen address of GET /metrics (Prometheus) apart from the API; empty: on HTTP_ADDR with SQLite, " +
		"nowhere with PostgreSQL or MySQL", "empty"},
	{"PPROF", "on: also serve Go's profiles (net/http/pprof) at /debug/pprof/ on METRICS_ADDR's listener, which it needs; " +
		"an operator's tool, as /metrics", "off"},
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTLP/HTTP collector (http:// or https://) that receives the spans at /v1/traces; " +
		"empty: no span is exported. Read by the OpenTelemetry SDK, with the other OTEL_EXPORTER_OTLP_* variables", "empty"},
	{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "the spans' full OTLP/HTTP URL, instead of the above (read by the OpenTelemetry SDK)", "empty"},
	{"OTEL_EXPORTER_OTLP_PROTOCOL", "OTLP's protocol: http/protobuf alone in this build (grpc or http/json stops the start)", "http/protobuf"},
	{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "the spans' OTLP protocol, instead of the above: http/protobuf alone", "http/protobuf"},
	{"OTEL_SERVICE_NAME", "service.name of the spans (read by the OpenTelemetry SDK)", DefaultServiceName},
	{"OTEL_RESOURCE_ATTRIBUTES", "key=value,... added to the spans' resource (read by the OpenTelemetry SDK)", "empty"},
	{"OTEL_TRACES_SAMPLER", "always_on, always_off, traceidratio, or parentbased_ and one of them (read by the OpenTelemetry SDK)",
		"parentbased_always_on"},
	{"OTEL_TRACES_SAMPLER_ARG", "share of the traces a traceidratio sampler keeps, 0..1 (read by the OpenTelemetry SDK)", "1"},
	{"OTEL_SDK_DISABLED", "true: no span is exported, whatever the variables above say", "false"},
	{"OTEL_TRUST_CLIENT_TRACEPARENT", "true: a client's traceparent and tracestate are its request's parent; " +
		"false: a request starts a trace of its own, linked to the client's", "false"},
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
		keys, err := adapters.ParseMasterKeys(ring)
		if err != nil {
			return fmt.Errorf("MASTER_KEYS: %w", err)
		}
		c.MasterKeys, c.masterKeysFrom = keys, "MASTER_KEYS"
	case single != "":
		key, err := adapters.ParseMasterKey(single)
		if err != nil {
			return fmt.Errorf("MASTER_KEY: %w", err)
		}
		c.MasterKeys, c.masterKeysFrom = adapters.OneMasterKey(key), "MASTER_KEY"
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
// environment would have set.
func (c *Config) setDefaults() {
	if c.VerifyURL == "" {
		c.VerifyURL = DefaultVerifyURL
	}
	if c.VerifyTTL == 0 {
		c.VerifyTTL = DefaultVerifyTTL
	}
	if c.ResetURL == "" {
		c.ResetURL = DefaultResetURL
	}
	if c.EmailBudget == (EmailBudget{}) {
		c.EmailBudget, _ = ParseEmailBudget(DefaultEmailBudget)
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = adapters.DefaultSessionTTL
	}
	if c.SessionIdleTimeout == 0 {
		c.SessionIdleTimeout = adapters.DefaultSessionIdleTimeout
	}
}

// LoadConfig reads the configuration through getenv and returns every
// problem at once. Error messages never quote a URL, which may hold a password.
func LoadConfig(getenv func(string) string) (Config, error) {
	get := func(name, fallback string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return fallback
	}
	var errs []error
	number := func(name string, fallback, lowest, highest int) int {
		raw := getenv(name)
		if raw == "" {
			return fallback
		}
		n, err := strconv.Atoi(raw)
		if err != nil || n < lowest || n > highest {
			errs = append(errs, fmt.Errorf("%s: want a whole number from %d to %d, got %q", name, lowest, highest, raw))
		}
		return n
	}
	duration := func(name string, fallback, lowest, highest time.Duration) time.Duration {
		raw := getenv(name)
		if raw == "" {
			return fallback
		}
		d, err := time.ParseDuration(raw)
		if err != nil || d < lowest || d > highest {
			errs = append(errs, fmt.Errorf("%s: want a duration from %s to %s (such as 90s, 30m, 24h), got %q", name, lowest, highest, raw))
		}
		return d
	}
	httpAddr := get("HTTP_ADDR", DefaultHTTPAddr)
	cfg := Config{
		PubSub:             get("PUBSUB", DefaultPubSub),
		DatabaseURL:        get("DATABASE_URL", DefaultDatabaseURL),
		AMQPURL:            get("AMQP_URL", DefaultAMQPURL),
		NATSURL:            get("NATS_URL", DefaultNATSURL),
		RedisURL:           get("REDIS_URL", transport.DefaultRedisURL),
		GoogleCloudProject: getenv("GOOGLE_CLOUD_PROJECT"),
		PubSubEmulatorHost: getenv("PUBSUB_EMULATOR_HOST"),
		AWSRegion:          getenv("AWS_REGION"),
		AWSEndpointURL:     getenv("AWS_ENDPOINT_URL"),
		AWSAccessKeyID:     getenv("AWS_ACCESS_KEY_ID"),
		AWSSecretAccessKey: getenv("AWS_SECRET_ACCESS_KEY"),
		AMQPQueueType:      get("AMQP_QUEUE_TYPE", transport.AMQPQueueClassic),
		AMQPDeliveryLimit:  number("AMQP_DELIVERY_LIMIT", transport.DefaultAMQPDeliveryLimit, 1, 1_000_000),
		SMTPURL:            getenv("SMTP_URL"),
		MailFrom:           get("MAIL_FROM", DefaultMailFrom),
		HTTPAddr:           httpAddr,
		BcryptCost:         number("BCRYPT_COST", 10, MinBcryptCost, 14),
		SignupPoints:       number("SIGNUP_POINTS", 100, 0, 1_000_000),
		HashQueueMax:       number("HASH_QUEUE_MAX", adapters.DefaultHashQueueMax, 1, 100_000),
		RetryMaxAge:        duration("EMAIL_RETRY_MAX_AGE", DefaultRetryMaxAge, time.Second, 30*24*time.Hour),
		RetryFirstDelay:    duration("EMAIL_RETRY_FIRST_DELAY", DefaultRetryDelay, 100*time.Millisecond, time.Hour),
		VerifyURL:          get("VERIFY_URL", ownPage(httpAddr, "/verify-email")),
		VerifyTTL:          duration("VERIFY_TTL", DefaultVerifyTTL, time.Minute, 30*24*time.Hour),
		ResetURL:           get("RESET_URL", ownPage(httpAddr, "/reset-password")),
		SessionTTL:         duration("SESSION_TTL", adapters.DefaultSessionTTL, time.Minute, 90*24*time.Hour),
		SessionIdleTimeout: duration("SESSION_IDLE_TIMEOUT", adapters.DefaultSessionIdleTimeout, time.Minute,
			90*24*time.Hour),
		AdminToken:  getenv("ADMIN_TOKEN"),
		MetricsAddr: getenv("METRICS_ADDR"),
	}
	switch pprof := get("PPROF", "off"); {
	case pprof == "on" && cfg.MetricsAddr != "":
		cfg.PProf = true
	case pprof == "on":
		errs = append(errs, errors.New("PPROF: on needs METRICS_ADDR, the listener the profiles are served on"))
	case pprof != "off":
		errs = append(errs, fmt.Errorf("PPROF: want on or off, got %q", pprof))
	}
	for name, link := range map[string]string{"VERIFY_URL": cfg.VerifyURL, "RESET_URL": cfg.ResetURL} {
		if u, err := url.Parse(link); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, fmt.Errorf("%s: want an http:// or https:// address without a query", name))
		}
	}
	if _, _, err := net.SplitHostPort(cfg.MetricsAddr); cfg.MetricsAddr != "" && err != nil {
		errs = append(errs, errors.New("METRICS_ADDR: want host:port or :port, such as :9090"))
	}
	if err := cfg.loadMasterKeys(getenv); err != nil {
		errs = append(errs, err)
	}
	if cfg.AdminToken != "" && len(cfg.AdminToken) < 32 {
		errs = append(errs, errors.New("ADMIN_TOKEN: want at least 32 characters"))
	}
	if cfg.Namespace = getenv("PUBSUB_NAMESPACE"); cfg.Namespace != "" {
		if err := transport.ValidateNamespace(cfg.Namespace); err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	if cfg.PasswordLimit, err = ports.ParseRateLimit(get("RATE_LIMIT_PASSWORDS", ports.DefaultPasswordLimit)); err != nil {
		errs = append(errs, fmt.Errorf("RATE_LIMIT_PASSWORDS: %w", err))
	}
	if cfg.EmailBudget, err = ParseEmailBudget(get("EMAIL_BUDGET", DefaultEmailBudget)); err != nil {
		errs = append(errs, fmt.Errorf("EMAIL_BUDGET: %w", err))
	}
	if cfg.TrustedProxies, err = ports.ParseTrustedProxies(getenv("TRUSTED_PROXIES")); err != nil {
		errs = append(errs, fmt.Errorf("TRUSTED_PROXIES: %w", err))
	}
	if cfg.ExportTraces, err = loadTracing(getenv); err != nil {
		errs = append(errs, err)
	}
	if raw := strings.TrimSpace(getenv("OTEL_TRUST_CLIENT_TRACEPARENT")); raw != "" {
		if cfg.TrustClientTraceparent, err = strconv.ParseBool(raw); err != nil {
			errs = append(errs, fmt.Errorf("OTEL_TRUST_CLIENT_TRACEPARENT: want true or false, got %q", raw))
		}
	}
	if raw := get("LOG_LEVEL", "info"); cfg.LogLevel.UnmarshalText([]byte(raw)) != nil {
		errs = append(errs, fmt.Errorf("LOG_LEVEL: want debug, info, warn or error, got %q", raw))
	}
	if !slices.Contains(transport.Kinds, cfg.PubSub) {
		errs = append(errs, fmt.Errorf("PUBSUB: want %s, got %q", strings.Join(transport.Kinds, ", "), cfg.PubSub))
	}
	if cfg.PubSub == transport.KindGoogleCloud && cfg.GoogleCloudProject == "" {
		errs = append(errs, errors.New("GOOGLE_CLOUD_PROJECT: PUBSUB=googlecloud needs the project"))
	}
	if cfg.PubSub == transport.KindSQS && cfg.AWSRegion == "" {
		errs = append(errs, errors.New("AWS_REGION: PUBSUB=sqs needs the region"))
	}
	if u, err := url.Parse(cfg.AWSEndpointURL); cfg.AWSEndpointURL != "" &&
		(err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		errs = append(errs, errors.New("AWS_ENDPOINT_URL: want an http:// or https:// address"))
	}
	if cfg.AMQPQueueType != transport.AMQPQueueClassic && cfg.AMQPQueueType != transport.AMQPQueueQuorum {
		errs = append(errs, fmt.Errorf("AMQP_QUEUE_TYPE: want classic or quorum, got %q", cfg.AMQPQueueType))
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
