package messages

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/internal/testenv"
)

// jsonLog is a JSON logger at level into a buffer.
func jsonLog(level slog.Level) (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: level})), &buf
}

// A handler that fails logs "message failed" at ERROR; one that the stop
// cancelled logs at INFO that it was interrupted: its message comes again.
func TestLogMessages(t *testing.T) {
	var stopping atomic.Bool
	logger, buf := jsonLog(slog.LevelInfo)
	var handlerErr error
	handler := logMessages(logger, stopping.Load)(func(*message.Message) ([]*message.Message, error) {
		return nil, handlerErr
	})
	run := func(err error, stop bool) map[string]any {
		buf.Reset()
		handlerErr = err
		stopping.Store(stop)
		_, _ = handler(message.NewMessage("m-1", nil))
		got := testenv.JSONRecords(t, buf.String())
		require.Len(t, got, 1)
		assert.Equal(t, "m-1", got[0]["message_uuid"])
		assert.Contains(t, got[0], "duration")
		return got[0]
	}
	assert.Equal(t, "message handled", run(nil, false)["msg"])
	for _, tt := range []struct {
		err      error
		stop     bool
		msg, lvl string
	}{
		{errors.New("smtp down"), false, "message failed", "ERROR"},
		{errors.New("smtp down"), true, "message failed", "ERROR"},
		{fmt.Errorf("send: %w", context.Canceled), false, "message failed", "ERROR"}, // not by the stop
		{fmt.Errorf("send: %w", context.Canceled), true, "message interrupted by the stop", "INFO"},
	} {
		r := run(tt.err, tt.stop)
		assert.Equal(t, tt.msg, r["msg"], "%v, stopping %v", tt.err, tt.stop)
		assert.Equal(t, tt.lvl, r["level"], "%v, stopping %v", tt.err, tt.stop)
		assert.Equal(t, tt.err.Error(), r["error"])
	}
}
