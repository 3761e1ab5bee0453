package e2e

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testsmtp"
)

// Secret scanning. A forwarder envelope carries its message's payload in
// base64 and bytea columns print as hex, so the scan also looks inside
// base64 and hex runs, recursively.
var (
	// BcryptPrefixes start every bcrypt hash: secrets wherever they appear.
	BcryptPrefixes = []string{"$2a$", "$2b$", "$2y$"}
	base64Run      = regexp.MustCompile(`[A-Za-z0-9+/_-]{12,}={0,2}`)
	hexRun         = regexp.MustCompile(`(?:\\x)?((?:[0-9a-fA-F]{2}){8,})`)
)

// Secrets are the bcrypt prefixes and the passwords of users.
func Secrets(users ...User) []string {
	secrets := append([]string(nil), BcryptPrefixes...)
	for _, u := range users {
		secrets = append(secrets, u.Password)
	}
	return secrets
}

// SecretsIn returns which of secrets text holds, plainly or encoded.
func SecretsIn(text string, secrets []string) []string {
	found := map[string]bool{}
	var scan func(s string, depth int)
	scan = func(s string, depth int) {
		for _, secret := range secrets {
			if strings.Contains(s, secret) {
				found[secret] = true
			}
		}
		if depth == 3 {
			return
		}
		for _, m := range hexRun.FindAllStringSubmatch(s, -1) {
			if b, err := hex.DecodeString(m[1]); err == nil {
				scan(string(b), depth+1)
			}
		}
		for _, run := range base64Run.FindAllString(s, -1) {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
				if b, err := enc.DecodeString(run); err == nil {
					scan(string(b), depth+1)
					break
				}
			}
		}
	}
	scan(text, 0)
	out := make([]string, 0, len(found))
	for secret := range found {
		out = append(out, secret)
	}
	sort.Strings(out)
	return out
}

// AssertNoSecrets checks that no table but credentials, no output of the
// processes, no email and no message the taps caught holds one of secrets.
// It first proves that the scan finds the bcrypt hashes in credentials. It
// returns the tables it scanned.
func AssertNoSecrets(t testing.TB, db *testenv.DB, secrets []string, procs []*Process,
	smtpServer *testsmtp.Server, taps ...*Tap) (scanned []string) {
	t.Helper()
	credentials := db.RowsAsText(t, `SELECT * FROM `+db.Quote("credentials"))
	require.NotEmpty(t, credentials)
	assert.Contains(t, SecretsIn(strings.Join(credentials, "\n"), secrets), "$2a$", "the scan finds the hashes in credentials")

	for _, table := range PublicTables(t, db) {
		if table == "credentials" {
			continue
		}
		scanned = append(scanned, table)
		for _, row := range db.RowsAsText(t, `SELECT * FROM `+db.Quote(table)) {
			assert.Empty(t, SecretsIn(row, secrets), "table %s row %s", table, Tail(row, 3))
		}
	}
	t.Logf("scanned tables: %s", strings.Join(scanned, ", "))
	for i, p := range procs {
		assert.Empty(t, SecretsIn(p.Stdout.String(), secrets), "stdout of process %d", i+1)
		assert.Empty(t, SecretsIn(p.Stderr.String(), secrets), "stderr of process %d", i+1)
	}
	for _, m := range smtpServer.Messages() {
		assert.Empty(t, SecretsIn(string(m.Data), secrets), "email to %v", m.To)
	}
	for _, tap := range taps {
		for _, m := range tap.Messages() {
			assert.Empty(t, SecretsIn(fmt.Sprint(m.Headers)+"\n"+string(m.Body), secrets), "tapped message %s", m.Body)
		}
	}
	return scanned
}

// PublicTables lists the tables of the service's database (the public
// schema on PostgreSQL), without SQLite's own.
func PublicTables(t testing.TB, db *testenv.DB) []string {
	t.Helper()
	query := `SELECT table_name FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`
	switch db.Dialect {
	case "mysql":
		query = `SELECT table_name FROM information_schema.tables
		WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY table_name`
	case "sqlite":
		query = `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite!_%' ESCAPE '!' ORDER BY name`
	}
	rows, err := db.Query(query)
	require.NoError(t, err)
	defer func() { _ = rows.Close() }()
	var tables []string
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		tables = append(tables, name)
	}
	require.NoError(t, rows.Err())
	return tables
}

// TapGroup is a consumer group that nobody reads: on the SQL transport it
// keeps a copy of every message for the secrets scan.
const TapGroup = "e2e_tap"

// TapSQLTopics registers TapGroup on the SQL topics the service writes: the
// outbox, and every event's and the poison topic of the namespace.
func TapSQLTopics(t testing.TB, db *testenv.DB, namespace string) {
	t.Helper()
	topics := []string{transport.OutboxTopic, PoisonQueue(namespace)}
	for _, name := range domain.Events.Names() {
		topics = append(topics, transport.NamespacedTopic(namespace, transport.EventTopic(name)))
	}
	for _, topic := range topics {
		tap, err := watermillsql.NewSQLSubscriber(db.DB, TapGroup, watermill.NopLogger{})
		require.NoError(t, err)
		require.NoError(t, tap.SubscribeInitialize(topic), topic)
		require.NoError(t, tap.Close())
	}
}
