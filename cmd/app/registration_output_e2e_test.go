package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/internal/e2e"
)

func (j *journey) responses() []e2e.Response {
	var out []e2e.Response
	for _, c := range j.clients {
		out = append(out, c.Responses()...)
	}
	return out
}

func (j *journey) noResponseIs5xx(t *testing.T) {
	for _, r := range j.responses() {
		assert.Less(t, r.Status, 500, e2e.Tail(r.String(), 5))
	}
}

// noSecretLeaks: no password and no bcrypt hash anywhere but in
// credentials, and no master key anywhere: tables, outputs, emails,
// responses and the messages on RabbitMQ or NATS.
func (j *journey) noSecretLeaks(t *testing.T) {
	db, registered := j.d.DB, j.registered()
	hashes := db.Count(t, `SELECT count(*) FROM credentials WHERE password_hash LIKE '$2a$%'`)
	assert.Equal(t, len(registered), hashes, "one bcrypt hash per user in credentials")
	require.GreaterOrEqual(t, hashes, len(j.users))

	if j.tap != nil {
		j.assertOneMessagePerRegistration(t, registered)
	}
	for _, tap := range j.scanned {
		assert.GreaterOrEqual(t, len(tap.Messages()), len(registered), "the tap holds the namespace's messages")
	}
	secrets := j.d.Secrets(j.created...)
	scanned := e2e.AssertNoSecrets(t, db, secrets, j.d.Processes(), j.d.SMTP, append(j.scanned, j.tap)...)
	if j.d.PubSub == transport.KindRedis {
		entries := j.d.RedisEntries(t)
		assert.GreaterOrEqual(t, len(entries), len(registered), "the streams hold the messages to scan")
		e2e.AssertNoSecretsInRedis(t, entries, secrets)
	}
	assert.Contains(t, scanned, "events")
	assert.Contains(t, scanned, watermillsql.MessagesTable(db.DB, transport.OutboxTopic))
	var watermillRows int
	for _, table := range scanned {
		if strings.HasPrefix(table, "watermill_") &&
			!strings.HasPrefix(table, "watermill_offsets_") && !strings.HasPrefix(table, "watermill_groups_") {
			watermillRows += len(db.RowsAsText(t, `SELECT * FROM `+db.Quote(table)))
		}
	}
	assert.Positive(t, watermillRows, "the watermill tables hold messages to scan")

	for _, r := range j.responses() {
		assert.Empty(t, e2e.SecretsIn(fmt.Sprint(r.Header)+"\n"+string(r.Body), secrets), e2e.Tail(r.String(), 5))
	}
}

// assertOneMessagePerRegistration: the tap of the events exchange got one
// message per registration.
func (j *journey) assertOneMessagePerRegistration(t *testing.T, registered []e2e.User) {
	want := map[string]int{}
	for _, u := range registered {
		want[u.ID] = 1
	}
	published := func() map[string]int {
		got := map[string]int{}
		for _, m := range j.tap.Messages() {
			var e struct {
				UserID string `json:"user_id"`
			}
			_ = json.Unmarshal(m.Body, &e)
			got[e.UserID]++
		}
		return got
	}
	e2e.AssertProgress(t, j.d.DB, func() bool { return len(published()) >= len(want) }, e2e.EffectsTimeout)
	assert.Equal(t, want, published(), "one message per registration on %s", e2e.EventsExchange(j.d.Namespace))
	assert.GreaterOrEqual(t, len(j.tap.Messages()), len(j.users))
}

func (j *journey) logs(t *testing.T) {
	for _, p := range j.d.Processes() {
		for _, line := range p.Stdout.Lines() {
			var record map[string]any
			assert.NoError(t, json.Unmarshal([]byte(line), &record), "stdout line is not JSON: %s", line)
		}
		all := p.Stdout.String() + p.Stderr.String()
		assert.NotContains(t, all, "panic")
		assert.NotContains(t, all, "goroutine ")
		for _, record := range p.Stdout.JSONLines() {
			if record["level"] == "ERROR" {
				t.Logf("error logged: %v", record)
			}
		}
	}
}
