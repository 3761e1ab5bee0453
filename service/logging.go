package service

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/onboard/onboard/app"
)

// NewLogger is the service's log: JSON lines on out from level up, with the
// context's correlation id and trace id, durations in milliseconds.
func NewLogger(out io.Writer, level slog.Level) *slog.Logger {
	return slog.New(app.LogHandler{Handler: traceLogs{slog.NewJSONHandler(out, &slog.HandlerOptions{
		Level:       level,
		ReplaceAttr: durationsInMilliseconds,
	})}})
}

// durationsInMilliseconds logs every duration as a number of milliseconds,
// its name ending in _ms: "duration" becomes "duration_ms": 12.345.
func durationsInMilliseconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Float64(a.Key+"_ms", float64(a.Value.Duration().Microseconds())/1000)
	}
	return a
}

// dependencyLogs lowers to DEBUG what Watermill and the migrations log at
// INFO (subscribers starting and stopping, the schema they create, each
// migration applied), and the errors of a stop in progress that only say
// that a context was canceled: at INFO, the log tells what the service
// does, and an ERROR is worth reading.
type dependencyLogs struct {
	slog.Handler
	stopping func() bool
}

// lowered is the level a library's record of this level is logged at,
// before its attributes are known.
func lowered(level slog.Level) slog.Level {
	if level == slog.LevelInfo {
		return slog.LevelDebug
	}
	return level
}

// Enabled implements slog.Handler.
func (h dependencyLogs) Enabled(ctx context.Context, level slog.Level) bool {
	return h.Handler.Enabled(ctx, lowered(level))
}

// Handle implements slog.Handler.
func (h dependencyLogs) Handle(ctx context.Context, r slog.Record) error {
	r.Level = lowered(r.Level)
	if r.Level == slog.LevelError && h.stopping() {
		r.Attrs(func(a slog.Attr) bool {
			if err, ok := a.Value.Any().(error); ok && errors.Is(err, context.Canceled) {
				r.Level = slog.LevelDebug
				return false
			}
			return true
		})
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h dependencyLogs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return dependencyLogs{Handler: h.Handler.WithAttrs(attrs), stopping: h.stopping}
}

// WithGroup implements slog.Handler.
func (h dependencyLogs) WithGroup(name string) slog.Handler {
	return dependencyLogs{Handler: h.Handler.WithGroup(name), stopping: h.stopping}
}
