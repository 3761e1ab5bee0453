package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/internal/testenv"
)

// jsonLog is the service's logger at level into a buffer.
func jsonLog(level slog.Level) (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return NewLogger(&buf, level), &buf
}

// What Watermill logs through the dependency logger: INFO becomes DEBUG, and
// an ERROR that says a context was canceled too, but only during a stop.
func TestDependencyLogs(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
	logger, buf := jsonLog(slog.LevelInfo)
	logger.Info("timed", "duration", 12345678*time.Nanosecond, "count", 3, "at", "x")
	got := testenv.JSONRecords(t, buf.String())
	require.Len(t, got, 1)
	assert.InDelta(t, 12.345, got[0]["duration_ms"], 1e-9)
	assert.NotContains(t, got[0], "duration")
	assert.InDelta(t, 3.0, got[0]["count"], 0, "other numbers are left alone")
}
