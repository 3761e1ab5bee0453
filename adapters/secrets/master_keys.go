package secrets

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// MasterKeys are the master keys of a deployment: the current one wraps
// every new secret; the older ones only unwrap the secrets they wrapped,
// until `onboard keys rotate` wraps those under the current one. A stored
// secret names its key by id (master_key_id). They print as their ids.
type MasterKeys struct {
	keys []*MasterKey // keys[0] is the current one
}

// ErrUnknownMasterKey is a wrapped secret whose master key is none of
// those given: an ErrWrongMasterKey too. Its messages name keys by their
// ids alone.
var ErrUnknownMasterKey error = unknownMasterKey{}

type unknownMasterKey struct{}

func (unknownMasterKey) Error() string        { return "unknown master key" }
func (unknownMasterKey) Is(target error) bool { return target == ErrWrongMasterKey }

// NewMasterKeys returns the ring of the current key and the older ones.
// No two keys may share an id, nor be the same key.
func NewMasterKeys(current *MasterKey, older ...*MasterKey) (*MasterKeys, error) {
	keys := append([]*MasterKey{current}, older...)
	for i, k := range keys {
		if k == nil {
			return nil, errors.New("master keys: a key is missing")
		}
		for _, earlier := range keys[:i] {
			switch {
			case k.fingerprint == earlier.fingerprint:
				return nil, fmt.Errorf("master keys %s and %s are the same key", earlier.id, k.id)
			case k.id == earlier.id:
				return nil, fmt.Errorf("the master key id %s is given twice", k.id)
			case earlier.answersTo(k.id) || k.answersTo(earlier.id):
				return nil, fmt.Errorf("the master key id %s is another key's fingerprint", k.id)
			}
		}
	}
	return &MasterKeys{keys: keys}, nil
}

// OneMasterKey is the ring of this key alone (MASTER_KEY, master.key).
func OneMasterKey(key *MasterKey) *MasterKeys { return &MasterKeys{keys: []*MasterKey{key}} }

// ParseMasterKeys reads MASTER_KEYS: comma-separated id:base64 entries,
// the current key first. Its errors name an entry by its place, and by
// its id once that is valid; never by its key.
func ParseMasterKeys(list string) (*MasterKeys, error) {
	var keys []*MasterKey
	var errs []error
	for i, entry := range strings.Split(list, ",") {
		id, encoded, ok := strings.Cut(entry, ":")
		id = strings.TrimSpace(id)
		if !ok {
			errs = append(errs, fmt.Errorf("entry %d: want id:base64", i+1))
			continue
		}
		if !validMasterKeyID(id) {
			errs = append(errs, fmt.Errorf("entry %d: %w", i+1, ErrMasterKeyID))
			continue
		}
		raw, err := decodeMasterKey(encoded)
		if err != nil {
			errs = append(errs, fmt.Errorf("entry %d (%s): %w", i+1, id, err))
			continue
		}
		key, err := NewNamedMasterKey(id, raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("entry %d (%s): %w", i+1, id, err))
			continue
		}
		keys = append(keys, key)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return NewMasterKeys(keys[0], keys[1:]...)
}

// Current is the key that wraps every new secret.
func (r *MasterKeys) Current() *MasterKey { return r.keys[0] }

// IDs are the keys' ids, the current one first.
func (r *MasterKeys) IDs() []string {
	ids := make([]string, len(r.keys))
	for i, k := range r.keys {
		ids[i] = k.id
	}
	return ids
}

// find is the key id names, or nil.
func (r *MasterKeys) find(id string) *MasterKey {
	for _, k := range r.keys {
		if k.answersTo(id) {
			return k
		}
	}
	return nil
}

// Wrap seals the secret of this name under the current key.
func (r *MasterKeys) Wrap(name string, secret []byte) (WrappedSecret, error) {
	return r.Current().Wrap(name, secret)
}

// Unwrap opens a secret under the key its master key id names:
// ErrUnknownMasterKey if none does, ErrWrongMasterKey if that key does
// not open it.
func (r *MasterKeys) Unwrap(w WrappedSecret) ([]byte, error) {
	key := r.find(w.MasterKeyID)
	if key == nil {
		return nil, fmt.Errorf("%w: the %q key is wrapped under master key %s, which is none of %s", ErrUnknownMasterKey,
			w.Name, w.MasterKeyID, strings.Join(r.IDs(), ", "))
	}
	return key.Unwrap(w)
}

// String names the keys by their ids, the current one first.
func (r *MasterKeys) String() string {
	return "master keys " + strings.Join(r.IDs(), ", ") + " (current: " + r.Current().id + ")"
}

// GoString is String: %#v shows no key either.
func (r *MasterKeys) GoString() string { return r.String() }

// LogValue is the keys' ids, the current one first.
func (r *MasterKeys) LogValue() slog.Value { return slog.StringValue(strings.Join(r.IDs(), ",")) }
