package transport_test

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// testTimeout bounds each test's calls.
const testTimeout = 30 * time.Second

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func testTimeoutCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}
