package transport_test

import (
	"context"
	"testing"
	"time"
)

// testTimeout bounds each test's calls.
const testTimeout = 30 * time.Second

func testTimeoutCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}
