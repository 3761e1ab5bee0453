package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordingTB records how a test ended instead of ending it.
type recordingTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Skipf(format string, args ...any) { r.skipped = fmt.Sprintf(format, args...) }

func (r *recordingTB) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestBrowserPath(t *testing.T) {
	dir := t.TempDir()
	browser := filepath.Join(dir, "chromium")
	require.NoError(t, os.WriteFile(browser, []byte("#!/bin/sh\n"), 0o755))
	plain := filepath.Join(dir, "plain")
	require.NoError(t, os.WriteFile(plain, nil, 0o644))
	missing := filepath.Join(dir, "missing")
	for _, tt := range []struct {
		name         string
		env          map[string]string
		want         string
		skip, failed string
	}{
		{name: "set", env: map[string]string{BrowserVar: browser}, want: browser},
		{name: "missing", env: map[string]string{BrowserVar: missing},
			skip: "no browser: " + missing + " does not exist: skipping this browser test " +
				"(install chromium, or set CHROMIUM to its path; REQUIRE_BROWSER=1 makes this a failure)"},
		{name: "missing, required", env: map[string]string{BrowserVar: missing, RequireBrowserVar: "1"},
			failed: "no browser: " + missing + " does not exist, and REQUIRE_BROWSER=1: " +
				"this browser test must run (install chromium, or set CHROMIUM to its path)"},
		{name: "not executable", env: map[string]string{BrowserVar: plain},
			skip: "no browser: " + plain + " is not an executable file: skipping this browser test " +
				"(install chromium, or set CHROMIUM to its path; REQUIRE_BROWSER=1 makes this a failure)"},
		{name: "a folder, required", env: map[string]string{BrowserVar: dir, RequireBrowserVar: "1"},
			failed: "no browser: " + dir + " is not an executable file, and REQUIRE_BROWSER=1: " +
				"this browser test must run (install chromium, or set CHROMIUM to its path)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tb := &recordingTB{TB: t}
			got := browserPath(tb, func(name string) string { return tt.env[name] })
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.skip, tb.skipped, "skip message")
			assert.Equal(t, tt.failed, tb.failed, "failure")
		})
	}
}
