package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/internal/testenv"
)

// jsonLog is a JSON logger at level into a buffer, as main makes it.
func jsonLog(level slog.Level) (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: level, ReplaceAttr: durationsInMilliseconds})), &buf
}

// What Watermill logs through the dependency logger: INFO becomes DEBUG, and
// an ERROR that says a context was canceled too, but only during a stop.
func TestDependencyLogs(t *testing.T) {
	canceled := fmt.Errorf("could not begin tx for querying: %w", context.Canceled)
	logAll := func(level slog.Level, stopping bool) []map[string]any {
		logger, buf := jsonLog(level)
		deps := slog.New(dependencyLogs{Handler: logger.Handler(), stopping: func() bool { return stopping }})
		wlogger := watermill.NewSlogLogger(deps).With(watermill.LogFields{"topic": "t"})
		wlogger.Trace("trace", nil)
		wlogger.Debug("debug", nil)
		wlogger.Info("info", watermill.LogFields{"wait_time": time.Second})
		deps.With("topic", "t").Warn("warn")
		wlogger.Error("canceled", canceled, nil)
		wlogger.Error("broken", errors.New("broken"), nil)
		return testenv.JSONRecords(t, buf.String())
	}
	levels := func(records []map[string]any) map[string]string {
		out := map[string]string{}
		for _, r := range records {
			out[r["msg"].(string)] = r["level"].(string)
			assert.Equal(t, "t", r["topic"], "attributes given With are kept")
		}
		return out
	}

	assert.Equal(t, map[string]string{"warn": "WARN", "canceled": "ERROR", "broken": "ERROR"},
		levels(logAll(slog.LevelInfo, false)), "INFO: Watermill's news is not shown")
	assert.Equal(t, map[string]string{"warn": "WARN", "broken": "ERROR"},
		levels(logAll(slog.LevelInfo, true)), "stopping: a canceled context is no error")
	debug := logAll(slog.LevelDebug, true)
	assert.Equal(t, map[string]string{"debug": "DEBUG", "info": "DEBUG", "warn": "WARN", "canceled": "DEBUG", "broken": "ERROR"},
		levels(debug), "DEBUG: everything but Watermill's trace")
	assert.Contains(t, debug[1], "wait_time_ms")
	assert.InDelta(t, 1000.0, debug[1]["wait_time_ms"], 0)
}

func TestDurationsInMilliseconds(t *testing.T) {
	logger, buf := jsonLog(slog.LevelInfo)
	logger.Info("timed", "duration", 12345678*time.Nanosecond, "count", 3, "at", "x")
	got := testenv.JSONRecords(t, buf.String())
	require.Len(t, got, 1)
	assert.InDelta(t, 12.345, got[0]["duration_ms"], 1e-9)
	assert.NotContains(t, got[0], "duration")
	assert.InDelta(t, 3.0, got[0]["count"], 0, "other numbers are left alone")
}

// TestE2E_Logs: at start the service logs one INFO line, "onboard is
// serving" with its address, database, transport, namespace and mailer,
// and a WARN when emails only go to the log; a line per request and per
// handled message, durations in milliseconds; and no ERROR on a clean stop.
// SQLite always runs; PostgreSQL, whose subscribers' queries the stop
// cancels, when its variable is set.
func TestE2E_Logs(t *testing.T) {
	for _, backend := range []testenv.Backend{
		{Name: "sqlite", URL: testenv.SQLiteDatabase},
		{Name: "postgres", URL: testenv.PostgresDatabase},
	} {
		t.Run(backend.Name, func(t *testing.T) {
			proc := runBinary(t, map[string]string{"DATABASE_URL": backend.URL(t), "PUBSUB": "sql"})
			api := newE2EAPI(proc.waitServing(t))
			r, err := api.register(e2eUser{Name: "Ada Lovelace", Email: "ada.logs@example.com", Password: "correct horse battery"}, nil)
			require.NoError(t, err)
			require.Equal(t, http.StatusCreated, r.Status, r.String())
			require.Eventually(t, func() bool { return handledLines(proc) == 2 }, e2eEffectsTimeout, e2ePoll,
				"a %q line per handler", "message handled")
			proc.stop(t)

			lines := proc.stdout.JSONLines()
			require.Len(t, lines, len(proc.stdout.Lines()), "every line is JSON")
			var start []string
			for _, line := range lines {
				start = append(start, fmt.Sprint(line["level"], " ", line["msg"]))
				if line["msg"] == "onboard is serving" {
					assert.Equal(t, backend.Name, line["database"])
					assert.Equal(t, "sql", line["transport"])
					assert.Equal(t, e2eNamespace, line["namespace"])
					assert.Equal(t, "log", line["mailer"])
					assert.NotEmpty(t, line["addr"])
					break
				}
			}
			assert.Equal(t, []string{"WARN emails are written to the log, not sent: set SMTP_URL to send them",
				"INFO onboard is serving"}, start)
			timed := 0
			for _, line := range lines {
				assert.NotEqual(t, "ERROR", line["level"], "%v", line)
				assert.NotContains(t, line, "duration", "%v", line)
				if line["msg"] == "http request" || line["msg"] == "message handled" {
					assert.IsType(t, 0.0, line["duration_ms"], "%v", line)
					timed++
				}
			}
			assert.Equal(t, 3, timed, "a line for the request and one per handler")
		})
	}
}

// handledLines counts a process's "message handled" lines.
func handledLines(p *e2eProcess) int {
	n := 0
	for _, record := range p.stdout.JSONLines() {
		if record["msg"] == "message handled" {
			n++
		}
	}
	return n
}
