package secrets_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/secrets"
)

// newMasterKey is a random master key and its base64.
func newMasterKey(t testing.TB) (*secrets.MasterKey, string) {
	t.Helper()
	raw := make([]byte, secrets.MasterKeyBytes)
	_, _ = rand.Read(raw)
	key, err := secrets.NewMasterKey(raw)
	require.NoError(t, err)
	return key, base64.StdEncoding.EncodeToString(raw)
}

func TestMasterKey_WrapsAndUnwraps(t *testing.T) {
	key, _ := newMasterKey(t)
	secret := bytes.Repeat([]byte{0x5a}, 32)
	wrapped, err := key.Wrap("verify-email", secret)
	require.NoError(t, err)
	assert.Equal(t, "verify-email", wrapped.Name)
	assert.Equal(t, key.ID(), wrapped.MasterKeyID)
	assert.Len(t, wrapped.Nonce, 12)
	assert.NotContains(t, string(wrapped.Ciphertext), string(secret[:8]), "sealed")

	opened, err := key.Unwrap(wrapped)
	require.NoError(t, err)
	assert.Equal(t, secret, opened)

	again, err := key.Wrap("verify-email", secret)
	require.NoError(t, err)
	assert.NotEqual(t, wrapped.Nonce, again.Nonce, "a random nonce each time")
	assert.NotEqual(t, wrapped.Ciphertext, again.Ciphertext)
}

// Another master key, another name, another key id or an altered byte:
// nothing opens.
func TestMasterKey_RefusesWhatItDidNotWrap(t *testing.T) {
	key, _ := newMasterKey(t)
	other, _ := newMasterKey(t)
	wrapped, err := key.Wrap("verify-email", bytes.Repeat([]byte{1}, 32))
	require.NoError(t, err)

	_, err = other.Unwrap(wrapped)
	require.ErrorIs(t, err, secrets.ErrWrongMasterKey)
	assert.Equal(t, fmt.Sprintf(`wrong master key: the "verify-email" key is wrapped under master key %s, this one is %s`,
		key.ID(), other.ID()), err.Error())

	relabelled := wrapped
	relabelled.MasterKeyID = other.ID()
	_, err = other.Unwrap(relabelled)
	assert.ErrorIs(t, err, secrets.ErrWrongMasterKey, "another key's id on the row")

	renamed := wrapped
	renamed.Name = "idempotency-key"
	_, err = key.Unwrap(renamed)
	assert.ErrorIs(t, err, secrets.ErrWrongMasterKey, "the row of another name")

	altered := wrapped
	altered.Ciphertext = bytes.Clone(wrapped.Ciphertext)
	altered.Ciphertext[3] ^= 1
	_, err = key.Unwrap(altered)
	assert.ErrorIs(t, err, secrets.ErrWrongMasterKey, "an altered ciphertext")

	short := wrapped
	short.Nonce = wrapped.Nonce[:4]
	_, err = key.Unwrap(short)
	assert.ErrorIs(t, err, secrets.ErrWrongMasterKey, "a cut nonce")
}

// MASTER_KEY is the base64 of exactly 32 bytes, in either alphabet, padded
// or not; an error never quotes it, and the key prints as its id alone.
func TestParseMasterKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfb, 0xff, 0x01}, 11)[:32]
	want, err := secrets.NewMasterKey(raw)
	require.NoError(t, err)
	assert.Regexp(t, `^[0-9a-f]{16}$`, want.ID())
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		key, err := secrets.ParseMasterKey(" " + enc.EncodeToString(raw) + "\n")
		require.NoError(t, err)
		assert.Equal(t, want.ID(), key.ID())
	}
	for _, bad := range []string{
		"", "not base64 at all!", base64.StdEncoding.EncodeToString(raw[:31]),
		base64.StdEncoding.EncodeToString(append(bytes.Clone(raw), 0)), hexOf(raw),
	} {
		_, err := secrets.ParseMasterKey(bad)
		require.ErrorIs(t, err, secrets.ErrMasterKeyFormat, "%q", bad)
		if bad != "" {
			assert.NotContains(t, err.Error(), bad)
		}
	}

	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("start", "key", want)
	for _, printed := range []string{
		fmt.Sprint(want), fmt.Sprintf("%v %+v %#v %s", want, want, want, want), logged.String(),
		fmt.Sprintf("%+v", struct{ Key *secrets.MasterKey }{want}),
	} {
		assert.Contains(t, printed, want.ID())
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
			assert.NotContains(t, printed, enc.EncodeToString(raw)[:12], "never the key")
		}
		assert.NotContains(t, printed, hexOf(raw)[:12])
	}
}

func hexOf(b []byte) string { return fmt.Sprintf("%x", b) }

// The key file is made once, 0600, and read afterwards; of racing
// processes each ends with the same key.
func TestLoadOrCreateMasterKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), secrets.MasterKeyFile)
	const racers = 8
	keys := make([]*secrets.MasterKey, racers)
	made := make([]bool, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			var err error
			keys[i], made[i], err = secrets.LoadOrCreateMasterKeyFile(path)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	created := 0
	for i := range racers {
		require.NotNil(t, keys[i])
		assert.Equal(t, keys[0].ID(), keys[i].ID(), "one key for all")
		if made[i] {
			created++
		}
	}
	assert.Equal(t, 1, created, "made once")

	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	fromFile, err := secrets.ParseMasterKey(string(data))
	require.NoError(t, err)
	assert.Equal(t, keys[0].ID(), fromFile.ID(), "the file holds the key's base64")
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left")

	again, createdAgain, err := secrets.LoadOrCreateMasterKeyFile(path)
	require.NoError(t, err)
	assert.False(t, createdAgain)
	assert.Equal(t, keys[0].ID(), again.ID(), "read afterwards")

	require.NoError(t, os.WriteFile(path, []byte("cut short"), 0o600))
	_, _, err = secrets.LoadOrCreateMasterKeyFile(path)
	require.ErrorIs(t, err, secrets.ErrMasterKeyFormat)
	assert.Contains(t, err.Error(), path)
	assert.False(t, strings.Contains(err.Error(), "cut short"))
}
