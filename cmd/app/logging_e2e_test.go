package main

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testenv"
)

// TestE2E_Logs: at start the service logs one INFO line, "onboard is
// serving" with its address, database, transport, namespace and mailer,
// a WARN when emails are not sent (to the development mailbox on SQLite,
// to the log on PostgreSQL; on SQLite's first start, an INFO
// line about the master key file made first), and on PostgreSQL without
// METRICS_ADDR a WARN that /metrics is not served (its API's listener
// answers 404 there); a line per request and per handled message,
// durations in milliseconds; and no ERROR on a clean stop. SQLite always
// runs; PostgreSQL, whose subscribers' queries the stop cancels, when its
// variable is set.
func TestE2E_Logs(t *testing.T) {
	t.Parallel()
	const metricsWarning = "WARN GET /metrics is not served on the API's listener outside the embedded SQLite database: " +
		"set METRICS_ADDR (such as :9090) to serve it on a listener of its own"
	const (
		mailboxWarning = "WARN emails are written as files to the development mailbox, not sent: set SMTP_URL to send them"
		logWarning     = "WARN emails are written to the log, not sent: set SMTP_URL to send them"
	)
	for _, tt := range []struct {
		backend testenv.Backend
		mailer  string
		warns   []string
		metrics int // GET /metrics on the API's listener
	}{
		{testenv.Backend{Name: "sqlite", URL: testenv.SQLiteDatabase}, "mailbox", []string{mailboxWarning}, http.StatusOK},
		{testenv.Backend{Name: "postgres", URL: testenv.PostgresDatabase}, "log", []string{logWarning, metricsWarning},
			http.StatusNotFound},
	} {
		backend := tt.backend
		t.Run(backend.Name, func(t *testing.T) {
			t.Parallel()
			d := e2e.Deploy(t, e2e.Config{PubSub: "sql", Database: backend.URL})
			proc, api := d.Serve(t)
			metrics, err := api.Get("/metrics")
			require.NoError(t, err)
			assert.Equal(t, tt.metrics, metrics.Status, "GET /metrics on the API's listener")
			api.MustRegister(t, e2e.User{Name: "Ada Lovelace", Email: "ada.logs@example.com", Password: "correct horse battery"})
			require.Eventually(t, func() bool { return handledLines(proc) == 2 }, e2e.EffectsTimeout, e2e.Poll,
				"a %q line per handler", "message handled")
			proc.Stop(t)

			lines := proc.Stdout.JSONLines()
			require.Len(t, lines, len(proc.Stdout.Lines()), "every line is JSON")
			var start []string
			for _, line := range lines {
				start = append(start, fmt.Sprint(line["level"], " ", line["msg"]))
				if line["msg"] == "onboard is serving" {
					assert.Equal(t, backend.Name, line["database"])
					assert.Equal(t, "sql", line["transport"])
					assert.Equal(t, d.Namespace, line["namespace"])
					assert.Equal(t, tt.mailer, line["mailer"])
					assert.NotEmpty(t, line["addr"])
					break
				}
			}
			want := append(slices.Clone(tt.warns), "INFO onboard is serving")
			if backend.Name == "sqlite" {
				// The first start on a new file says it makes the database
				// there, and, without MASTER_KEY, makes the key file beside it
				// and says where.
				database, made := lines[0], lines[1]
				want = append([]string{fmt.Sprint("INFO ", database["msg"]), fmt.Sprint("INFO ", made["msg"])}, want...)
				assert.Contains(t, database["msg"], "a new, empty database is made there")
				assert.Contains(t, database["path"], "onboard.db")
				assert.Contains(t, made["msg"], "MASTER_KEY is not set: made a master key file")
				assert.Contains(t, made["path"], "master.key")
				assert.Equal(t, d.MasterKeys(t).Current().ID(), made["master_key_id"])
			}
			assert.Equal(t, want, start)
			timed := 0
			for _, line := range lines {
				assert.NotEqual(t, "ERROR", line["level"], "%v", line)
				assert.NotContains(t, line, "duration", "%v", line)
				if line["msg"] == "http request" || line["msg"] == "message handled" {
					assert.IsType(t, 0.0, line["duration_ms"], "%v", line)
					timed++
				}
			}
			assert.Equal(t, 4, timed, "a line per request (/metrics, the registration) and one per handler")
		})
	}
}

// handledLines counts a process's "message handled" lines.
func handledLines(p *e2e.Process) int {
	n := 0
	for _, count := range p.Handled() {
		n += count
	}
	return n
}
