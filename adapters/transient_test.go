package adapters_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
)

func TestTransient_DatabaseErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := migratedDB(t, backend)
		_, err := db.ExecContext(testTimeoutCtx(t), "SELEC 1")
		require.Error(t, err)
		assert.False(t, adapters.Transient(err), "a syntax error fails every time: %v", err)

		_, err = db.ExecContext(testTimeoutCtx(t), "INSERT INTO no_such_table VALUES (1)")
		require.Error(t, err)
		assert.False(t, adapters.Transient(err), "a missing table fails every time: %v", err)

		if backend.Name == "sqlite" {
			return // no server to lose
		}
		err = queryOnKilledConnection(t, db)
		require.Error(t, err)
		assert.True(t, adapters.Transient(err), "a connection the server dropped is worth a retry: %v", err)
	})
}

// queryOnKilledConnection has the server end one of db's connections, as a
// restart would, and queries on it.
func queryOnKilledConnection(t *testing.T, db *testenv.DB) error {
	t.Helper()
	ctx := testTimeoutCtx(t)
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	var id int64
	idQuery, kill := "SELECT pg_backend_pid()", "SELECT pg_terminate_backend($1, 5000)" // waits until it is gone
	if db.Dialect == "mysql" {
		idQuery, kill = "SELECT CONNECTION_ID()", "KILL CONNECTION ?"
	}
	require.NoError(t, conn.QueryRowContext(ctx, idQuery).Scan(&id))
	_, err = db.ExecContext(ctx, kill, id)
	require.NoError(t, err)
	_, err = conn.ExecContext(ctx, "SELECT 1")
	return err
}

func TestTransient_UnreachableDatabase(t *testing.T) {
	for _, url := range []string{
		"postgres://postgres@127.0.0.1:1/x?connect_timeout=2",
		"mysql://root@127.0.0.1:1/x",
	} {
		_, err := adapters.OpenDatabase(testTimeoutCtx(t), url, quietLogger())
		require.Error(t, err, url)
		assert.True(t, adapters.Transient(err), "%s: a server that does not answer may come back: %v", url, err)
	}
}

func TestTransient_OtherErrors(t *testing.T) {
	_, dialErr := net.Dial("tcp", "127.0.0.1:1")
	require.Error(t, dialErr)
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("boom"), false},
		{"domain rejection", domain.ErrEmailTaken, false},
		{"canceled", fmt.Errorf("handle: %w", context.Canceled), true},
		{"deadline", fmt.Errorf("handle: %w", context.DeadlineExceeded), true},
		{"connection refused", fmt.Errorf("send: %w", dialErr), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, adapters.Transient(tt.err), "%v", tt.err)
		})
	}
}
