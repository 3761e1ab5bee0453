package testenv

import (
	"encoding/json"
	"strings"
	"testing"
)

// JSONRecords decodes the lines of a JSON log, failing the test on a line
// that is not a JSON object.
func JSONRecords(t testing.TB, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}
