package service

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testfake"
)

// testMasterKeys are a master key of the test's own on a database
// server, and nil on SQLite, where the service makes its key file.
func testMasterKeys(t testing.TB, dbURL string) *secrets.MasterKeys {
	t.Helper()
	if !testenv.NeedsMasterKey(dbURL) {
		return nil
	}
	key, err := secrets.ParseMasterKey(testenv.NewMasterKey())
	require.NoError(t, err)
	return secrets.OneMasterKey(key)
}

// newStoppedService builds the service of cfg on gochannel, logging to
// logs, and closes it at once: what the start did is all a test reads.
func newStoppedService(t *testing.T, cfg Config, logs *testenv.LockedBuffer) (*Service, error) {
	t.Helper()
	cfg.PubSub, cfg.HTTPAddr, cfg.BcryptCost, cfg.MailFrom = "gochannel", "127.0.0.1:0", bcrypt.MinCost, DefaultMailFrom
	svc, err := New(context.Background(), cfg, &testfake.Mailer{}, NewLogger(logs, slog.LevelInfo))
	if err == nil {
		svc.closeResources()
	}
	return svc, err
}

// Without MASTER_KEY, the embedded database's service makes master.key
// beside the database file, 0600, says so once in a line without the key,
// and reads it at every later start. Another master key then stops the
// start, naming neither key.
func TestService_MakesAMasterKeyFileBesideTheSQLiteDatabase(t *testing.T) {
	t.Parallel()
	dbURL := testenv.SQLiteDatabase(t)
	dbPath, _ := strings.CutPrefix(dbURL, "sqlite:")
	keyPath := filepath.Join(filepath.Dir(dbPath), secrets.MasterKeyFile)
	ctx := testenv.Context(t)

	logs := &testenv.LockedBuffer{}
	first, err := newStoppedService(t, Config{DatabaseURL: dbURL}, logs)
	require.NoError(t, err)
	info, err := os.Stat(keyPath)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	data, err := os.ReadFile(keyPath)
	require.NoError(t, err)
	encoded := strings.TrimSpace(string(data))
	key, err := secrets.ParseMasterKey(encoded)
	require.NoError(t, err)
	lines := testenv.JSONRecords(t, logs.String())
	var made []map[string]any
	for _, line := range lines {
		if strings.Contains(line["msg"].(string), "master key") {
			made = append(made, line)
		}
	}
	require.Len(t, made, 1, "one line says the key was made")
	assert.Equal(t, keyPath, made[0]["path"])
	assert.Equal(t, key.ID(), made[0]["master_key_id"])
	assert.NotContains(t, logs.String(), encoded[:16], "never the key")
	verifyKey, err := first.keys.Secret(ctx, secrets.VerificationKeySecret)
	require.NoError(t, err)

	logs = &testenv.LockedBuffer{}
	second, err := newStoppedService(t, Config{DatabaseURL: dbURL}, logs)
	require.NoError(t, err)
	assert.NotContains(t, logs.String(), "master key", "read, not made again")
	again, err := second.keys.Secret(ctx, secrets.VerificationKeySecret)
	require.NoError(t, err)
	assert.Equal(t, verifyKey, again, "the same keys after a restart")
	after, err := os.ReadFile(keyPath)
	require.NoError(t, err)
	assert.Equal(t, data, after)

	explicit, err := newStoppedService(t, Config{DatabaseURL: dbURL, MasterKeys: secrets.OneMasterKey(key)}, &testenv.LockedBuffer{})
	require.NoError(t, err, "MASTER_KEY set to the file's key opens the same keys")
	fromEnv, err := explicit.keys.Secret(ctx, secrets.VerificationKeySecret)
	require.NoError(t, err)
	assert.Equal(t, verifyKey, fromEnv)

	other, err := secrets.ParseMasterKey(testenv.NewMasterKey())
	require.NoError(t, err)
	_, err = newStoppedService(t, Config{DatabaseURL: dbURL, MasterKeys: secrets.OneMasterKey(other)}, &testenv.LockedBuffer{})
	require.ErrorIs(t, err, secrets.ErrWrongMasterKey)
	assert.Contains(t, err.Error(), "Config.MasterKeys does not open the keys stored in the database")
	assert.Contains(t, err.Error(), key.ID())
	assert.Contains(t, err.Error(), other.ID())
	assert.NotContains(t, err.Error(), encoded[:16])
	assert.NotContains(t, err.Error(), "\n")
}

// On a database server the service refuses to start without MASTER_KEY,
// before it connects.
func TestService_RefusesADatabaseServerWithoutMasterKey(t *testing.T) {
	t.Parallel()
	for _, dbURL := range []string{"postgres://postgres@127.0.0.1:1/never-reached", "mysql://root@127.0.0.1:1/never"} {
		start := time.Now()
		_, err := newStoppedService(t, Config{DatabaseURL: dbURL}, &testenv.LockedBuffer{})
		require.ErrorIs(t, err, errMasterKeyRequired, dbURL)
		assert.Less(t, time.Since(start), time.Second, "refused before any connection")
		assert.True(t, strings.HasPrefix(err.Error(), "MASTER_KEY is not set"))
	}
}

// TestService_ABackupForgedTokenIsUseless: whoever holds a copy of the
// database but not MASTER_KEY cannot make a verification link. The test
// reads every row of the tables of server values and keys as such an
// attacker would, tries every value (raw, decoded from hex or base64, and
// every 32-byte run of each) as the key that signs verification tokens,
// and the service refuses each token; the link the service itself sent,
// and a token signed with the key it unwraps, verify.
func TestService_ABackupForgedTokenIsUseless(t *testing.T) {
	t.Parallel()
	for _, backend := range testenv.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			dbURL := backend.URL(t)
			s := startServiceOn(t, testenv.OpenDB(t, dbURL), dbURL)
			status, _, body := s.post(jsonBody(okName, `"ada@example.com"`, okPassword), "")
			require.Equal(t, http.StatusCreated, status, "%s", body)
			ada := decodeUser(t, body)
			link := s.linkOf("ada@example.com", "Welcome to onboard")
			verifyPath := "/users/" + ada.ID + "/email-verification"
			expires := time.Now().Add(time.Hour)
			subject := domain.TokenSubject{UserID: ada.ID, EmailKey: "ada@example.com", EmailNumber: domain.FirstEmailNumber}

			var candidates [][]byte
			for _, table := range []string{"server_secrets", "server_keys"} {
				for _, value := range columnValues(t, s.db, table) {
					candidates = append(candidates, keyCandidates(value)...)
				}
			}
			tried := 0
			for _, candidate := range candidates {
				if len(candidate) < domain.MinVerificationKeyBytes {
					continue
				}
				token := domain.VerificationKey(candidate).Token(subject, expires)
				resp, body := s.call(http.MethodPost, verifyPath, `{"token":"`+token+`"}`, nil)
				require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, "a token forged from the backup: %s", body)
				assert.Equal(t, "invalid-token", errorCode(t, body))
				tried++
			}
			t.Logf("%d keys tried from %d candidates", tried, len(candidates))
			assert.GreaterOrEqual(t, tried, 4, "the namespace and deployment values, and both wrapped keys")

			key, err := s.svc.keys.Secret(testenv.Context(t), secrets.VerificationKeySecret)
			require.NoError(t, err)
			token := domain.VerificationKey(key).Token(subject, expires)
			resp, body := s.call(http.MethodPost, verifyPath, `{"token":"`+token+`"}`, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, "the way the tokens were forged signs one with the key: %s", body)
			resp, body = s.call(http.MethodPost, verifyPath, `{"token":"`+link.Query().Get("token")+`"}`, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, "the service's own link verifies: %s", body)
		})
	}
}

// columnValues reads every column of every row of table, as bytes.
func columnValues(t *testing.T, db *testenv.DB, table string) [][]byte {
	t.Helper()
	rows, err := db.Query(`SELECT * FROM ` + db.Quote(table))
	require.NoError(t, err)
	defer func() { _ = rows.Close() }()
	columns, err := rows.Columns()
	require.NoError(t, err)
	var values [][]byte
	for rows.Next() {
		raw := make([]any, len(columns))
		dest := make([]any, len(columns))
		for i := range raw {
			dest[i] = &raw[i]
		}
		require.NoError(t, rows.Scan(dest...))
		for _, v := range raw {
			switch v := v.(type) {
			case []byte:
				values = append(values, v)
			case string:
				values = append(values, []byte(v))
			}
		}
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, values, "%s holds rows", table)
	return values
}

// keyCandidates are the keys a value could hold: itself, decoded from hex
// or base64, and every run of 32 bytes of each.
func keyCandidates(value []byte) [][]byte {
	forms := [][]byte{value}
	if b, err := hex.DecodeString(strings.TrimPrefix(string(value), `\x`)); err == nil {
		forms = append(forms, b)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(string(value)); err == nil {
			forms = append(forms, b)
		}
	}
	var out [][]byte
	for _, form := range forms {
		out = append(out, form)
		for i := 1; i+32 <= len(form); i++ {
			out = append(out, form[i:i+32])
		}
	}
	return out
}

// MASTER_KEYS lists the keys by id, the current one first; MASTER_KEY is
// the one key, under its fingerprint. Every bad value is refused without
// quoting a key.
func TestLoadConfig_MasterKeys(t *testing.T) {
	t.Parallel()
	a, b := testenv.NewMasterKey(), testenv.NewMasterKey()
	cfg, err := LoadConfig(env(map[string]string{"MASTER_KEYS": "2026-b:" + b + ", 2025.a:" + a}))
	require.NoError(t, err)
	assert.Equal(t, []string{"2026-b", "2025.a"}, cfg.MasterKeys.IDs())

	single, err := secrets.ParseMasterKey(a)
	require.NoError(t, err)
	cfg, err = LoadConfig(env(map[string]string{"MASTER_KEY": a}))
	require.NoError(t, err)
	assert.Equal(t, []string{single.ID()}, cfg.MasterKeys.IDs(), "MASTER_KEY's id is its fingerprint, as before")

	cfg, err = LoadConfig(env(nil))
	require.NoError(t, err)
	assert.Nil(t, cfg.MasterKeys)

	for _, tt := range []struct {
		name string
		vars map[string]string
		want string
	}{
		{"both set", map[string]string{"MASTER_KEY": a, "MASTER_KEYS": "b:" + b}, "MASTER_KEY and MASTER_KEYS are both set"},
		{"an id twice", map[string]string{"MASTER_KEYS": "k:" + b + ",k:" + a}, "MASTER_KEYS: the master key id k is given twice"},
		{"a bad id", map[string]string{"MASTER_KEYS": "b:" + b + ",key one:" + a}, "MASTER_KEYS: entry 2: want an id of 1 to 64"},
		{"no id", map[string]string{"MASTER_KEYS": b}, "MASTER_KEYS: entry 1: want id:base64"},
		{"bad base64", map[string]string{"MASTER_KEYS": "b:" + b + ",a:" + a[:40] + "#==="},
			"MASTER_KEYS: entry 2 (a): want the base64 of exactly 32 bytes"},
		{"a short key", map[string]string{"MASTER_KEYS": "b:" + b[:20]}, "MASTER_KEYS: entry 1 (b): want the base64"},
		{"a bad MASTER_KEY", map[string]string{"MASTER_KEY": a[:40]}, "MASTER_KEY: want the base64"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(env(tt.vars))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			for _, key := range []string{a, b} {
				assert.NotContains(t, err.Error(), key[:12], "never a key")
				assert.NotContains(t, err.Error(), key[20:32], "never a key")
			}
		})
	}
}

// A database whose keys are wrapped under a master key MASTER_KEYS lacks
// stops the start, naming the key by its id and saying how to rotate;
// listed after the current key, the old key opens them.
func TestService_StartRefusesKeysUnderAMasterKeyItLacks(t *testing.T) {
	t.Parallel()
	for _, backend := range testenv.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			dbURL := backend.URL(t)
			oldKey, newKey := testenv.NewMasterKey(), testenv.NewMasterKey()
			config := func(masterKeys string) Config {
				t.Helper()
				cfg, err := LoadConfig(env(map[string]string{"DATABASE_URL": dbURL, "MASTER_KEYS": masterKeys}))
				require.NoError(t, err)
				return cfg
			}
			_, err := newStoppedService(t, config("old:"+oldKey), &testenv.LockedBuffer{})
			require.NoError(t, err)
			store := testenv.NewUserStoreUnder(t, testenv.OpenDB(t, dbURL).DB, slog.New(slog.DiscardHandler),
				config("old:"+oldKey).MasterKeys)
			user, err := domain.NewUser(uuid.NewString(), "Ada Lovelace", "ada@example.com", "correct horse battery",
				"", time.Now())
			require.NoError(t, err)
			require.NoError(t, store.Register(testenv.Context(t), user, []byte("a hash"), nil))

			_, err = newStoppedService(t, config("new:"+newKey), &testenv.LockedBuffer{})
			require.ErrorIs(t, err, secrets.ErrUnknownMasterKey)
			assert.Regexp(t, `^MASTER_KEYS does not open the keys stored in the database \(unknown master key: the `+
				`database holds keys wrapped under master key old \(\d+ server keys, 1 users' keys\), not among the `+
				`master keys given \(new\)\): .*list the old key in MASTER_KEYS after the new one, .*run onboard keys rotate`,
				err.Error())
			assert.NotContains(t, err.Error(), "\n")
			for _, key := range []string{oldKey, newKey} {
				assert.NotContains(t, err.Error(), key[:12], "never a key")
			}

			_, err = newStoppedService(t, config("new:"+newKey+",old:"+oldKey), &testenv.LockedBuffer{})
			require.NoError(t, err, "the old key listed after the new one opens the keys")
		})
	}
}
