package secrets_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/internal/testenv"
)

// newNamedMasterKey is a random master key under id, and its base64.
func newNamedMasterKey(t testing.TB, id string) (*secrets.MasterKey, string) {
	t.Helper()
	_, encoded := newMasterKey(t)
	raw, err := base64.StdEncoding.DecodeString(encoded)
	require.NoError(t, err)
	key, err := secrets.NewNamedMasterKey(id, raw)
	require.NoError(t, err)
	return key, encoded
}

// assertNoKey fails if text holds any of the keys, whole or in part.
func assertNoKey(t *testing.T, text string, encodedKeys ...string) {
	t.Helper()
	for _, encoded := range encodedKeys {
		raw, err := base64.StdEncoding.DecodeString(encoded)
		require.NoError(t, err)
		for _, form := range []string{encoded[:12], encoded[len(encoded)-13 : len(encoded)-1],
			base64.RawURLEncoding.EncodeToString(raw)[:12], hexOf(raw)[:12]} {
			assert.NotContains(t, text, form, "never a key")
		}
	}
}

// MASTER_KEYS lists id:base64 entries, the current key first; blanks
// around them do not count, and the key may be in either alphabet.
func TestParseMasterKeys(t *testing.T) {
	b, encodedB := newNamedMasterKey(t, "2025-06.b")
	a, encodedA := newNamedMasterKey(t, "A_1")
	rawA, _ := base64.StdEncoding.DecodeString(encodedA)
	keys, err := secrets.ParseMasterKeys(" 2025-06.b:" + encodedB + " ,\nA_1 : " + base64.RawURLEncoding.EncodeToString(rawA))
	require.NoError(t, err)
	assert.Equal(t, []string{"2025-06.b", "A_1"}, keys.IDs())
	assert.Equal(t, "2025-06.b", keys.Current().ID())

	wrapped, err := keys.Wrap("verify-email", []byte("secret of 32 bytes, or about so"))
	require.NoError(t, err)
	assert.Equal(t, "2025-06.b", wrapped.MasterKeyID, "the first key wraps")
	opened, err := b.Unwrap(wrapped)
	require.NoError(t, err, "the same key as the one parsed")
	assert.Equal(t, "secret of 32 bytes, or about so", string(opened))
	older, err := a.Wrap("verify-email", []byte("older"))
	require.NoError(t, err)
	opened, err = keys.Unwrap(older)
	require.NoError(t, err, "an older key unwraps what it wrapped")
	assert.Equal(t, "older", string(opened))

	one, err := secrets.ParseMasterKeys("only:" + encodedA)
	require.NoError(t, err)
	assert.Equal(t, []string{"only"}, one.IDs())
}

// A bad list is refused entry by entry, each by its place (and its id once
// valid), never quoting a key.
func TestParseMasterKeys_RefusesBadLists(t *testing.T) {
	_, a := newMasterKey(t)
	_, b := newMasterKey(t)
	rawA, _ := base64.StdEncoding.DecodeString(a)
	for _, tt := range []struct {
		name, list, want string
	}{
		{"no id", a, "entry 1: want id:base64"},
		{"an empty entry", "a:" + a + ",,b:" + b, "entry 2: want id:base64"},
		{"an empty id", ":" + a, "entry 1: want an id of 1 to 64"},
		{"an id with a blank", "key a:" + a, "entry 1: want an id of 1 to 64"},
		{"an id with a slash", "b:" + b + ",a/1:" + a, "entry 2: want an id of 1 to 64"},
		{"an id too long", strings.Repeat("x", 65) + ":" + a, "entry 1: want an id of 1 to 64"},
		{"not base64", "a:" + a + ",b:" + strings.ReplaceAll(b, "A", "*") + "!", "entry 2 (b): want the base64 of exactly 32 bytes"},
		{"31 bytes", "a:" + base64.StdEncoding.EncodeToString(rawA[:31]), "entry 1 (a): want the base64 of exactly 32 bytes"},
		{"33 bytes", "a:" + base64.StdEncoding.EncodeToString(append(bytes.Clone(rawA), 1)), "entry 1 (a): want the base64"},
		{"an id twice", "a:" + a + ",a:" + b, "the master key id a is given twice"},
		{"a key twice", "a:" + a + ",b:" + a, "master keys a and b are the same key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := secrets.ParseMasterKeys(tt.list)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assertNoKey(t, err.Error(), a, b)
		})
	}
	_, err := secrets.ParseMasterKeys("a b:" + a + ",c:" + b + "x")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "entry 1: want an id", "every problem at once")
	assert.Contains(t, err.Error(), "entry 2 (c): want the base64")
}

// A key listed under a name still opens what it wrapped as MASTER_KEY,
// under its fingerprint; no other key does, whatever its name.
func TestMasterKeys_OpenWhatTheKeyWrappedUnderItsFingerprint(t *testing.T) {
	single, encoded := newMasterKey(t)
	wrapped, err := single.Wrap("verify-email", []byte("kept"))
	require.NoError(t, err)
	raw, _ := base64.StdEncoding.DecodeString(encoded)
	renamed, err := secrets.NewNamedMasterKey("old", raw)
	require.NoError(t, err)
	current, _ := newNamedMasterKey(t, "new")
	opened, err := testenv.MasterKeyRing(t, current, renamed).Unwrap(wrapped)
	require.NoError(t, err)
	assert.Equal(t, "kept", string(opened))

	impostor, _ := newNamedMasterKey(t, single.ID()) // another key under the fingerprint's name
	_, err = testenv.MasterKeyRing(t, current, impostor).Unwrap(wrapped)
	require.ErrorIs(t, err, secrets.ErrWrongMasterKey)
	assert.NotErrorIs(t, err, secrets.ErrUnknownMasterKey, "its id names it, but it does not open it")

	_, err = secrets.NewMasterKeys(current, renamed, impostor)
	assert.ErrorContains(t, err, "the master key id "+single.ID()+" is another key's fingerprint")
}

// A secret of a key the ring does not hold is ErrUnknownMasterKey, an
// ErrWrongMasterKey too, naming the ids alone.
func TestMasterKeys_UnknownKey(t *testing.T) {
	a, encodedA := newNamedMasterKey(t, "a")
	b, encodedB := newNamedMasterKey(t, "b")
	wrapped, err := a.Wrap("user:42", []byte("kept"))
	require.NoError(t, err)
	_, err = testenv.MasterKeyRing(t, b).Unwrap(wrapped)
	require.ErrorIs(t, err, secrets.ErrUnknownMasterKey)
	require.ErrorIs(t, err, secrets.ErrWrongMasterKey)
	assert.Equal(t, `unknown master key: the "user:42" key is wrapped under master key a, which is none of b`, err.Error())
	assertNoKey(t, err.Error(), encodedA, encodedB)
}

// The ring prints as its ids, in fmt and slog alike.
func TestMasterKeys_PrintNoKey(t *testing.T) {
	b, encodedB := newNamedMasterKey(t, "b")
	a, encodedA := newNamedMasterKey(t, "a")
	keys := testenv.MasterKeyRing(t, b, a)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("start", "keys", keys)
	assert.Contains(t, logged.String(), `"keys":"b,a"`)
	for _, printed := range []string{
		fmt.Sprintf("%v %+v %#v %s", keys, keys, keys, keys), logged.String(),
		fmt.Sprintf("%+v %#v", struct{ Keys *secrets.MasterKeys }{keys}, struct{ Keys *secrets.MasterKeys }{keys}),
	} {
		assert.Contains(t, printed, "b")
		assertNoKey(t, printed, encodedA, encodedB)
	}
	assert.Equal(t, "master keys b, a (current: b)", keys.String())
}
