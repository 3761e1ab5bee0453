package testenv

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

// recordingTB records how a test ended instead of ending it.
type recordingTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Skipf(format string, args ...any) { r.skipped = fmt.Sprintf(format, args...) }

func (r *recordingTB) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestServiceURL(t *testing.T) {
	const url = "postgres://db.test/"
	for _, tt := range []struct {
		name         string
		env          map[string]string
		short        bool
		want         string
		skip, failed string
	}{
		{name: "set", env: map[string]string{"TEST_X_URL": url}, want: url},
		{name: "unset", skip: "TEST_X_URL is not set: skipping this integration test (set it, or REQUIRE_SERVICES=1 to make this a failure)"},
		{name: "unset, required", env: map[string]string{"REQUIRE_SERVICES": "1"},
			failed: "TEST_X_URL is not set and REQUIRE_SERVICES=1: this integration test must run"},
		{name: "short, set", env: map[string]string{"TEST_X_URL": url}, short: true,
			skip: "integration test (needs TEST_X_URL): skipped under -short"},
		{name: "short, unset, required", env: map[string]string{"REQUIRE_SERVICES": "1"}, short: true,
			skip: "integration test (needs TEST_X_URL): skipped under -short"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tb := &recordingTB{TB: t}
			got := serviceURL(tb, "TEST_X_URL", func(name string) string { return tt.env[name] }, tt.short)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.skip, tb.skipped, "skip message")
			assert.Equal(t, tt.failed, tb.failed, "failure")
		})
	}
}
