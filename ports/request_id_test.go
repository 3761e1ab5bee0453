package ports_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/internal/apitest"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/ports"
)

// lastRecord returns the last JSON log record.
func lastRecord(t *testing.T, logs *testenv.LockedBuffer) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	var record map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &record))
	return record
}

// Every request gets an id of the server's own, the correlation id of its
// logs and events; a client's X-Request-ID of a bounded, printable form is
// kept beside it, any other is ignored.
func TestRequestID_ServerMadeClientKeptBeside(t *testing.T) {
	logs := &testenv.LockedBuffer{}
	handler := withLogger(t, logs)

	tests := []struct {
		name, sent string
		kept       bool
	}{
		{"none", "", false},
		{"a UUID", "0b9cf2e4-54b7-4a53-9e3a-2f4b0f1d2c3e", true},
		{"letters, digits and . _ : -", "trace.A_b:c-9", true},
		{"64 characters", strings.Repeat("r", 64), true},
		{"65 characters", strings.Repeat("r", 65), false},
		{"a space", "two words", false},
		{"a slash", "a/b", false},
		{"a quote", `a"b`, false},
		{"HTML", "<script>", false},
		{"non-ASCII", "requête", false},
		{"a control character", "a\tb", false},
		{"a comma, as two headers join", "a,b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
			if tt.sent != "" {
				req.Header.Set("X-Request-ID", tt.sent)
			}
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)
			require.Equal(t, http.StatusOK, rec.Code)

			id := rec.Header().Get("X-Request-ID")
			_, err := uuid.Parse(id)
			require.NoError(t, err, "the server's own id is echoed: %q", id)
			assert.NotEqual(t, tt.sent, id)
			record := lastRecord(t, logs)
			assert.Equal(t, "http request", record["msg"])
			assert.Equal(t, id, record["correlation_id"], "the server's id correlates the logs")
			if tt.kept {
				assert.Equal(t, tt.sent, rec.Header().Get("X-Client-Request-ID"), "the client's id is echoed beside")
				assert.Equal(t, tt.sent, record["client_request_id"], "and logged beside")
			} else {
				assert.Empty(t, rec.Header().Values("X-Client-Request-ID"))
				assert.NotContains(t, record, "client_request_id")
			}
		})
	}

	t.Run("two headers", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		req.Header.Add("X-Request-ID", "first")
		req.Header.Add("X-Request-ID", "second")
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		assert.Empty(t, rec.Header().Values("X-Client-Request-ID"), "ambiguous: ignored")
	})
}

// withLogger is the test handler logging JSON records to logs, with the
// context's ids, as the service does; its exchanges are checked against
// the contract.
func withLogger(t *testing.T, logs *testenv.LockedBuffer) http.Handler {
	t.Helper()
	handler, err := ports.NewHandler(app.Application{}, ports.HTTPConfig{
		Ready:             func(context.Context) error { return nil },
		Logger:            slog.New(app.LogHandler{Handler: slog.NewJSONHandler(logs, nil)}),
		IdempotencySecret: bytes.Repeat([]byte{7}, 32),
	})
	require.NoError(t, err)
	return apitest.New(t).Handler(handler)
}
