// Package testenv gives integration tests the services they need. A test
// asks for a service by the environment variable holding its URL: when the
// variable is unset the test is skipped with a message naming it, unless
// REQUIRE_SERVICES=1, under which it fails. Under -short (the fast tier,
// `make test-unit`) every such test is skipped, whatever the environment:
// the fast tier needs no service.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// Variables naming the services' URLs.
const (
	PostgresURLVar = "TEST_POSTGRES_URL" // a PostgreSQL server URL whose user may create databases
	AMQPURLVar     = "TEST_AMQP_URL"     // a RabbitMQ URL
	NATSURLVar     = "TEST_NATS_URL"     // a NATS server with JetStream
	RedisURLVar    = "TEST_REDIS_URL"    // a Redis server (its database 0 is shared by the tests)
	// PubSubEmulatorVar is the host:port of a Pub/Sub emulator
	// (cmd/pubsub-emulator); the tests' project is GoogleCloudProject.
	PubSubEmulatorVar = "TEST_PUBSUB_EMULATOR_HOST"
	// SQSEndpointVar is the URL of an SQS and SNS emulator
	// (cmd/sqs-emulator), in the region AWSRegion, with AWSTestKey's
	// credentials.
	SQSEndpointVar = "TEST_AWS_ENDPOINT_URL"
)

// GoogleCloudProject is the project the tests use on the Pub/Sub emulator;
// each test's namespace keeps its topics apart.
const GoogleCloudProject = "onboard-test"

// AWSRegion is the region of the tests' SQS emulator, and AWSTestKey the
// access key id and secret the tests sign with: an emulator checks none.
const (
	AWSRegion  = "us-east-1"
	AWSTestKey = "test"
)

// URL returns the service URL in the variable, or skips the test (fails it
// under REQUIRE_SERVICES=1) when the variable is unset. Under -short it
// skips the test in any case.
func URL(t testing.TB, variable string) string {
	t.Helper()
	return serviceURL(t, variable, os.Getenv, testing.Short())
}

func serviceURL(t testing.TB, variable string, getenv func(string) string, short bool) string {
	t.Helper()
	if short {
		t.Skipf("integration test (needs %s): skipped under -short", variable)
		return ""
	}
	if value := getenv(variable); value != "" {
		return value
	}
	if getenv("REQUIRE_SERVICES") == "1" {
		t.Fatalf("%s is not set and REQUIRE_SERVICES=1: this integration test must run", variable)
		return ""
	}
	// The summary of `make test` and .ci/run read "<VARIABLE> is not set: skipping".
	t.Skipf("%s is not set: skipping this integration test (set it, or REQUIRE_SERVICES=1 to make this a failure)", variable)
	return ""
}

// SkipIfShort skips a test that is too slow for the fast tier, such as one
// that builds and runs the service's binary.
func SkipIfShort(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("%s: skipped under -short", what)
	}
}

// PostgresDatabase creates an empty database on the TEST_POSTGRES_URL server
// for this test alone, drops it when the test ends, and returns its URL.
func PostgresDatabase(t testing.TB) string {
	t.Helper()
	serverURL := URL(t, PostgresURLVar)
	admin, err := sql.Open("pgx", serverURL)
	if err != nil {
		t.Fatalf("open %s: %v", PostgresURLVar, err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	name := "onboard_test_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database on %s: %v", PostgresURLVar, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatalf("%s is not a URL", PostgresURLVar)
	}
	u.Path = "/" + name
	return u.String()
}

// OpenPostgres returns a connection to a fresh test database and its URL.
func OpenPostgres(t testing.TB) (*sql.DB, string) {
	t.Helper()
	dbURL := PostgresDatabase(t)
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, dbURL
}

// Name returns a name unique to this run, for topics, queues and exchanges.
func Name(prefix string) string {
	return fmt.Sprintf("%s_%s", prefix, strings.ReplaceAll(uuid.NewString(), "-", "")[:12])
}

// MySQLURLVar names a MySQL or MariaDB server URL whose user may create databases.
const MySQLURLVar = "TEST_MYSQL_URL"

// MySQLDatabase creates an empty database on the TEST_MYSQL_URL server for
// this test alone, drops it when the test ends, and returns its mysql:// URL.
func MySQLDatabase(t testing.TB) string {
	t.Helper()
	serverURL := URL(t, MySQLURLVar)
	u, err := url.Parse(serverURL)
	if err != nil || u.Scheme != "mysql" {
		t.Fatalf("%s: want mysql://user:pass@host:port/", MySQLURLVar)
	}
	password, _ := u.User.Password()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = u.User.Username(), password, "tcp", u.Host
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatalf("open %s: %v", MySQLURLVar, err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	name := Name("onboard_test")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database on %s: %v", MySQLURLVar, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// SQLiteDatabase returns the URL of a SQLite file in the test's temporary folder.
func SQLiteDatabase(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "onboard.db")
}

// Backend is a database a suite runs against: its name and a URL to an
// empty database for this test.
type Backend struct {
	Name string
	URL  func(t testing.TB) string
}

// Backends lists every database onboard supports: SQLite always, PostgreSQL
// and MySQL/MariaDB through their variables (skipped, or failed under
// REQUIRE_SERVICES=1, when unset).
func Backends() []Backend {
	return []Backend{
		{Name: "sqlite", URL: SQLiteDatabase},
		{Name: "postgres", URL: PostgresDatabase},
		{Name: "mysql", URL: MySQLDatabase},
	}
}

// NewMasterKey returns a MASTER_KEY of its own: the base64 of 32 random
// bytes.
func NewMasterKey() string {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw) // never fails
	return base64.StdEncoding.EncodeToString(raw)
}

// NeedsMasterKey reports whether a service on the database at dbURL needs
// MASTER_KEY: on every database but SQLite, where the service otherwise
// makes a key file beside the database file.
func NeedsMasterKey(dbURL string) bool { return !strings.HasPrefix(dbURL, "sqlite:") }
