// Package sample is a test package for testsummary's own test: one test
// of each kind, run by `go test -json`. Its failures are on purpose.
package sample

import (
	"os"
	"testing"
)

func TestPasses(t *testing.T) { t.Log("a note") }

func TestFails(t *testing.T) { t.Error("broken on purpose") }

func TestParent(t *testing.T) {
	t.Run("passes", func(t *testing.T) {})
	t.Run("needs a service", func(t *testing.T) {
		if os.Getenv("TEST_SAMPLE_URL") == "" {
			t.Skip("TEST_SAMPLE_URL is not set: skipping this integration test")
		}
	})
	t.Run("fails", func(t *testing.T) { t.Fatal("broken on purpose") })
}

// TestSkippedSubtests passes, but only its subtests tell what ran.
func TestSkippedSubtests(t *testing.T) {
	for _, name := range []string{"a", "b"} {
		t.Run(name, func(t *testing.T) {
			if testing.Short() {
				t.Skip("end-to-end test: skipped under -short")
			}
			t.Skip("TEST_SAMPLE_URL is not set: skipping this integration test")
		})
	}
}
