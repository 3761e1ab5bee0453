package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/internal/e2e"
)

// badInput: malformed and invalid registrations, bad ids, unknown users and
// routes each get their status and error code.
func (j *journey) badInput(t *testing.T) {
	j.badRegistrations(t)
	j.badPaths(t)
}

func (j *journey) badRegistrations(t *testing.T) {
	valid := func(overrides map[string]any) string {
		fields := map[string]any{"name": "Bad Input", "email": "bad.input." + j.run + "@example.com", "password": "pw-" + j.run + "-bad-input"}
		for k, v := range overrides {
			if v == nil {
				delete(fields, k)
			} else {
				fields[k] = v
			}
		}
		b, err := json.Marshal(fields)
		require.NoError(t, err)
		return string(b)
	}
	big := `{"name":"` + strings.Repeat("a", 2<<20) + `","email":"big@example.com","password":"pw-big-body"}`
	tests := []struct {
		name        string
		contentType string
		body        string
		chunked     bool
		wantStatus  int
		wantCode    string
		wantFields  map[string]string
	}{
		{name: "malformed JSON", body: `{"name": "Ada",`, wantStatus: 400, wantCode: "malformed-json"},
		{name: "not JSON", body: `name=Ada`, wantStatus: 400, wantCode: "malformed-json"},
		{name: "empty body", body: ``, wantStatus: 400, wantCode: "malformed-json"},
		{name: "trailing data", body: valid(nil) + `{}`, wantStatus: 400, wantCode: "malformed-json"},
		{name: "array", body: `[]`, wantStatus: 400, wantCode: "malformed-json"},
		{name: "all fields missing", body: `{}`, wantStatus: 422, wantCode: "validation-failed",
			wantFields: map[string]string{"name": "required", "email": "required", "password": "required"}},
		{name: "email and password missing", body: `{"name":"Ada"}`, wantStatus: 422, wantCode: "validation-failed",
			wantFields: map[string]string{"email": "required", "password": "required"}},
		{name: "null name", body: valid(map[string]any{"name": json.RawMessage(`null`)}), wantStatus: 422,
			wantCode: "validation-failed", wantFields: map[string]string{"name": "required"}},
		{name: "invalid email", body: valid(map[string]any{"email": "not-an-email"}), wantStatus: 422,
			wantCode: "validation-failed", wantFields: map[string]string{"email": "invalid-format"}},
		{name: "73-byte password", body: valid(map[string]any{"password": strings.Repeat("p", 73)}), wantStatus: 422,
			wantCode: "validation-failed", wantFields: map[string]string{"password": "too-long"}},
		{name: "7-byte password", body: valid(map[string]any{"password": "1234567"}), wantStatus: 422,
			wantCode: "validation-failed", wantFields: map[string]string{"password": "too-short"}},
		{name: "2 MiB body", body: big, wantStatus: 413, wantCode: "body-too-large"},
		{name: "2 MiB body, chunked", body: big, chunked: true, wantStatus: 413, wantCode: "body-too-large"},
		{name: "not JSON content type", contentType: "text/plain", body: valid(nil), wantStatus: 415, wantCode: "unsupported-media-type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			contentType := tt.contentType
			if contentType == "" {
				contentType = "application/json"
			}
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = struct{ io.Reader }{body} // hides the length
			}
			r, err := j.api.Post("/users", contentType, body, nil)
			require.NoError(t, err)
			assert.Equal(t, tt.wantStatus, r.Status, e2e.Tail(r.String(), 5))
			code, fields := r.Error()
			assert.Equal(t, tt.wantCode, code)
			if tt.wantFields != nil {
				assert.Equal(t, tt.wantFields, fields)
			}
		})
	}
}

func (j *journey) badPaths(t *testing.T) {
	unknown := uuid.NewString()
	for _, tt := range []struct {
		method, path string
		wantStatus   int
		wantCode     string
	}{
		{http.MethodGet, "/users/not-a-uuid", 400, "invalid-id"},
		{http.MethodGet, "/users/not-a-uuid/points", 400, "invalid-id"},
		{http.MethodGet, "/users/" + unknown, 401, "unauthenticated"},
		{http.MethodGet, "/users/" + unknown + "/points", 401, "unauthenticated"},
		{http.MethodDelete, "/users", 405, "method-not-allowed"},
		{http.MethodGet, "/no-such-route", 404, "not-found"},
	} {
		r, err := j.api.Request(tt.method, tt.path, "", nil, nil)
		require.NoError(t, err)
		assert.Equal(t, tt.wantStatus, r.Status, r.String())
		code, _ := r.Error()
		assert.Equal(t, tt.wantCode, code, r.String())
	}
}
