package testenv_test

import (
	"database/sql"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/internal/testenv"
)

// handles returns a handle per dialect; none of them connects.
func handles(t *testing.T) map[string]*testenv.DB {
	t.Helper()
	out := map[string]*testenv.DB{}
	for dialect, open := range map[string]struct{ driver, dsn string }{
		"postgres": {"pgx", "postgres://user@127.0.0.1:1/db"},
		"mysql":    {"mysql", "user@tcp(127.0.0.1:1)/db"},
		"sqlite":   {"sqlite", "file::memory:"},
	} {
		db, err := sql.Open(open.driver, open.dsn)
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		out[dialect] = testenv.NewDB(db)
		assert.Equal(t, dialect, out[dialect].Dialect)
	}
	return out
}

func TestDB_Rebind(t *testing.T) {
	const query = `SELECT a FROM t WHERE b = ? AND c = ?`
	dbs := handles(t)
	for _, tt := range []struct{ backend, want string }{
		{"postgres", `SELECT a FROM t WHERE b = $1 AND c = $2`},
		{"mysql", query},
		{"sqlite", query},
	} {
		assert.Equal(t, tt.want, dbs[tt.backend].Rebind(query), tt.backend)
	}
}

func TestDB_Quote(t *testing.T) {
	dbs := handles(t)
	for _, tt := range []struct{ backend, want string }{
		{"postgres", `"watermill_events.UserRegistered"`},
		{"mysql", "`watermill_events.UserRegistered`"},
		{"sqlite", `"watermill_events.UserRegistered"`},
	} {
		assert.Equal(t, tt.want, dbs[tt.backend].Quote("watermill_events.UserRegistered"), tt.backend)
	}
	assert.Equal(t, `"a""b"`, dbs["postgres"].Quote(`a"b`))
	assert.Equal(t, "`a``b`", dbs["mysql"].Quote("a`b"))
}
