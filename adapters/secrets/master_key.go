package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// MasterKeyBytes is the length of a master key: an AES-256 key.
const MasterKeyBytes = 32

// MasterKey wraps the keys the service keeps in its database (ServerKeys),
// so that a copy of the database alone holds none of them. It keeps the
// cipher, not the key's bytes, and prints as its id alone: fmt, slog and
// errors never show the key.
type MasterKey struct {
	// id names the key beside every secret it wraps: the operator's name
	// for it (MASTER_KEYS), or its fingerprint (MASTER_KEY, master.key).
	id          string
	fingerprint string
	aead        cipher.AEAD
}

// ErrMasterKeyFormat is a master key that is not the base64 of exactly
// MasterKeyBytes bytes. It never quotes the key.
var ErrMasterKeyFormat = fmt.Errorf("want the base64 of exactly %d bytes (such as the output of openssl rand -base64 32)",
	MasterKeyBytes)

// ErrMasterKeyID is a master key id that is not 1 to 64 of A-Z a-z 0-9 . _ -.
var ErrMasterKeyID = fmt.Errorf("want an id of 1 to %d letters, digits, '.', '_' or '-'", maxMasterKeyID)

// maxMasterKeyID bounds an id: the master_key_id columns hold 64.
const maxMasterKeyID = 64

// NewMasterKey is the master key of these 32 bytes, its id its
// fingerprint.
func NewMasterKey(raw []byte) (*MasterKey, error) {
	return newMasterKey(masterKeyID(raw), raw)
}

// NewNamedMasterKey is the master key of these 32 bytes under an id of
// the operator's choosing, as MASTER_KEYS names them.
func NewNamedMasterKey(id string, raw []byte) (*MasterKey, error) {
	if !validMasterKeyID(id) {
		return nil, ErrMasterKeyID
	}
	return newMasterKey(id, raw)
}

func validMasterKeyID(id string) bool {
	if id == "" || len(id) > maxMasterKeyID {
		return false
	}
	return strings.IndexFunc(id, func(c rune) bool {
		return (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '.' && c != '_' && c != '-'
	}) < 0
}

func newMasterKey(id string, raw []byte) (*MasterKey, error) {
	if len(raw) != MasterKeyBytes {
		return nil, ErrMasterKeyFormat
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return &MasterKey{id: id, fingerprint: masterKeyID(raw), aead: aead}, nil
}

// ParseMasterKey reads a master key written in base64, standard or URL
// alphabet, padded or not, around blanks.
func ParseMasterKey(encoded string) (*MasterKey, error) {
	raw, err := decodeMasterKey(encoded)
	if err != nil {
		return nil, err
	}
	return NewMasterKey(raw)
}

// decodeMasterKey reads the bytes of a master key written in base64, as
// ParseMasterKey takes it.
func decodeMasterKey(encoded string) ([]byte, error) {
	encoded = strings.TrimSpace(encoded)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err := enc.Strict().DecodeString(encoded); err == nil {
			if len(raw) != MasterKeyBytes {
				return nil, ErrMasterKeyFormat
			}
			return raw, nil
		}
	}
	return nil, ErrMasterKeyFormat
}

// masterKeyIDLabel separates the ids of master keys from any other use of
// SHA-256 over the key.
const masterKeyIDLabel = "onboard master key id\x00"

// masterKeyID is a key's fingerprint: the first 8 bytes, in hex, of
// SHA-256 over a label and the key. It names the key that wrapped a stored
// secret, and tells nothing of the key.
func masterKeyID(raw []byte) string {
	sum := sha256.Sum256(append([]byte(masterKeyIDLabel), raw...))
	return hex.EncodeToString(sum[:8])
}

// ID names the key beside every secret it wraps: the operator's name for
// it, or its fingerprint.
func (k *MasterKey) ID() string { return k.id }

// answersTo tells whether id names this key: its id, or its fingerprint.
// A secret wrapped when the key was MASTER_KEY is named by the key's
// fingerprint, and still opens once MASTER_KEYS lists the key under a
// name. The name is bound to the secret (wrapAAD), so a key opens nothing
// another key wrapped, whatever the row names.
func (k *MasterKey) answersTo(id string) bool { return id == k.id || id == k.fingerprint }

// String names the key by its id.
func (k *MasterKey) String() string { return "master key " + k.id }

// GoString is String: %#v shows no key either.
func (k *MasterKey) GoString() string { return k.String() }

// LogValue is the key's id.
func (k *MasterKey) LogValue() slog.Value { return slog.StringValue(k.id) }

// WrappedSecret is a secret sealed under a master key: what the database
// keeps of it.
type WrappedSecret struct {
	Name string
	// MasterKeyID names the master key that wrapped it.
	MasterKeyID string
	Nonce       []byte
	// Ciphertext is the secret sealed by AES-256-GCM, its tag appended.
	Ciphertext []byte
}

// ErrWrongMasterKey is a wrapped secret this master key does not open:
// another key wrapped it, or it was altered. Its messages name the keys
// by their ids alone.
var ErrWrongMasterKey = errors.New("wrong master key")

// Wrap seals the secret of this name under the key, with a random nonce.
// The name and the key's id are bound to it (GCM's additional data): a
// wrapped secret copied to another name, or labelled with another key's
// id, does not open.
func (k *MasterKey) Wrap(name string, secret []byte) (WrappedSecret, error) {
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return WrappedSecret{}, fmt.Errorf("wrap the %s secret: %w", name, err)
	}
	return WrappedSecret{
		Name:        name,
		MasterKeyID: k.id,
		Nonce:       nonce,
		Ciphertext:  k.aead.Seal(nil, nonce, secret, wrapAAD(name, k.id)),
	}, nil
}

// Unwrap opens a secret this key wrapped. Another key's secret, or an
// altered one, is ErrWrongMasterKey, naming both keys' ids.
func (k *MasterKey) Unwrap(w WrappedSecret) ([]byte, error) {
	if !k.answersTo(w.MasterKeyID) {
		return nil, fmt.Errorf("%w: the %q key is wrapped under master key %s, this one is %s", ErrWrongMasterKey, w.Name,
			w.MasterKeyID, k.id)
	}
	if len(w.Nonce) != k.aead.NonceSize() {
		return nil, fmt.Errorf("%w: the %q key's nonce is %d bytes", ErrWrongMasterKey, w.Name, len(w.Nonce))
	}
	secret, err := k.aead.Open(nil, w.Nonce, w.Ciphertext, wrapAAD(w.Name, w.MasterKeyID))
	if err != nil {
		return nil, fmt.Errorf("%w: master key %s does not open the %q key, though it is named as its master key",
			ErrWrongMasterKey, k.id, w.Name)
	}
	return secret, nil
}

// wrapAAD is the additional data of a wrapped secret: a label, then its
// name and its master key's id, each behind its length.
func wrapAAD(name, masterKeyID string) []byte {
	return LabelledAAD("onboard wrapped secret\x00", name, masterKeyID)
}

// MasterKeyFile is the name of the master key file the embedded database
// keeps beside it.
const MasterKeyFile = "master.key"

// LoadOrCreateMasterKeyFile reads the master key in the file at path (its
// base64 on one line), or, if there is none, makes one at random and
// writes it there, readable by its owner alone (0600); created tells
// which. The file appears whole or not at all, and of two processes racing
// to make it, both end with the one that was written first.
func LoadOrCreateMasterKeyFile(path string) (key *MasterKey, created bool, err error) {
	if key, err := readMasterKeyFile(path); !errors.Is(err, os.ErrNotExist) {
		return key, false, err
	}
	raw := make([]byte, MasterKeyBytes)
	if _, err := rand.Read(raw); err != nil {
		return nil, false, fmt.Errorf("make a master key: %w", err)
	}
	key, err = NewMasterKey(raw)
	if err != nil {
		return nil, false, err
	}
	if err := writeNewFile(path, []byte(base64.StdEncoding.EncodeToString(raw)+"\n")); errors.Is(err, os.ErrExist) {
		key, err = readMasterKeyFile(path) // another process made it first
		return key, false, err
	} else if err != nil {
		return nil, false, fmt.Errorf("write the master key file %s: %w", path, err)
	}
	return key, true, nil
}

func readMasterKeyFile(path string) (*MasterKey, error) {
	data, err := os.ReadFile(path) //nolint:gosec // the path is the database's folder, from the configuration
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("read the master key file %s: %w", path, err)
	}
	key, err := ParseMasterKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("the master key file %s: %w", path, err)
	}
	return key, nil
}

// writeNewFile writes data to a new file at path, mode 0600: to a
// temporary file first, then linked to path, which fails with os.ErrExist
// if path exists. Where the file system has no hard links, the file is
// created exclusively and written in place.
func writeNewFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	// CreateTemp makes it 0600; Chmod says so in case the umask differs.
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	err = os.Link(tmp.Name(), path)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrExist):
		return os.ErrExist
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // see readMasterKeyFile
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
