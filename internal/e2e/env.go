package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"
)

const (
	// StartTimeout bounds the wait for "onboard is serving".
	StartTimeout = 30 * time.Second
	// StopTimeout bounds a graceful stop after SIGTERM, or a death after SIGKILL.
	StopTimeout = 30 * time.Second
	// FailTimeout bounds a start that must fail.
	FailTimeout = 15 * time.Second
	// EffectsTimeout bounds the wait for a registration's email and points.
	EffectsTimeout = 5 * time.Second
	// Poll is how often a condition is checked.
	Poll = 50 * time.Millisecond
	// CommandPoll is how often a condition that runs the binary (an
	// operator command, some 100 ms of CPU) is checked.
	CommandPoll = 250 * time.Millisecond

	// MailFrom is MAIL_FROM of the service under test.
	MailFrom = "welcome@onboard.test"
	// SignupPoints is SIGNUP_POINTS of the service under test.
	SignupPoints = 100
	// UnreachableAMQP is AMQP_URL of the transports that must not use RabbitMQ.
	UnreachableAMQP = "amqp://guest:guest@127.0.0.1:1/"
	// UnreachableNATS is NATS_URL of the transports that must not use NATS.
	UnreachableNATS = "nats://127.0.0.1:1"
	// UnreachableRedis is REDIS_URL of the transports that must not use Redis.
	UnreachableRedis = "redis://127.0.0.1:1/0"
	// FastBcryptCost is BCRYPT_COST of the service under test: bcrypt's
	// minimum, which the test binary accepts (tag e2e_fast_hash), so that
	// hashing does not take most of the machine. A test whose requests must
	// wait for their hash sets ReleaseBcryptCost.
	FastBcryptCost = "4"
	// ReleaseBcryptCost is the lowest cost a release build accepts.
	ReleaseBcryptCost = "10"
)

// Environ is the service's environment: every variable it reads is set, to
// vars or to the harness's defaults, so nothing leaks in from the
// environment of the test.
func Environ(vars map[string]string) []string {
	all := map[string]string{
		"PUBSUB":           "gochannel",
		"PUBSUB_NAMESPACE": "", // the database's default
		"DATABASE_URL":     "",
		"AMQP_URL":         UnreachableAMQP,
		"NATS_URL":         UnreachableNATS,
		"REDIS_URL":        UnreachableRedis,
		// Empty: not googlecloud's.
		"GOOGLE_CLOUD_PROJECT": "",
		"PUBSUB_EMULATOR_HOST": "",
		// Nor sqs's.
		"AWS_REGION":            "",
		"AWS_ENDPOINT_URL":      "",
		"AWS_ACCESS_KEY_ID":     "",
		"AWS_SECRET_ACCESS_KEY": "",
		"SMTP_URL":              "",
		"MAIL_FROM":             MailFrom,
		"HTTP_ADDR":             "127.0.0.1:0",
		"BCRYPT_COST":           FastBcryptCost,
		"SIGNUP_POINTS":         fmt.Sprint(SignupPoints),
		// Up to 200 registrations at once wait for their turn to hash: the
		// bounded queue has tests of its own.
		"HASH_QUEUE_MAX": "1000",
		// Every test registers from 127.0.0.1: only the tests of the limit
		// turn it on.
		"RATE_LIMIT_PASSWORDS": "off",
		"TRUSTED_PROXIES":      "",
		"LOG_LEVEL":            "info",
		// Empty: the service's defaults.
		"EMAIL_RETRY_MAX_AGE":     "",
		"EMAIL_RETRY_FIRST_DELAY": "",
		"VERIFY_URL":              "",
		"VERIFY_TTL":              "",
		"RESET_URL":               "",
		"SESSION_TTL":             "",
		"SESSION_IDLE_TIMEOUT":    "",
		"ADMIN_TOKEN":             "",
		// Every test sends its emails from 127.0.0.1: only the tests of
		// the budget turn it on.
		"EMAIL_BUDGET": "off",
		"MASTER_KEY":   "", // on SQLite: the key file beside the database
		"METRICS_ADDR": "", // on the API's listener on SQLite alone
	}
	for k, v := range vars {
		all[k] = v
	}
	env := os.Environ()
	for k, v := range all {
		env = append(env, k+"="+v) // later entries win
	}
	return env
}

// NewNamespace returns a PUBSUB_NAMESPACE no other test uses: "e2e-" and 8
// random hex digits.
func NewNamespace() string { return "e2e-" + randomHex(4) }

// RunID returns 8 random hex digits, to make a test's email addresses and
// passwords its own.
func RunID() string { return randomHex(4) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}
