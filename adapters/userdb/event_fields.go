package userdb

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"slices"

	"github.com/onboard/onboard/adapters/eventstore"
	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/domain"
)

// erasedEvent names domain.UserErased: a stream that holds it has lost its
// key on purpose.
var erasedEvent = domain.UserErased{}.EventName()

// sealEvent returns a copy of e whose personal fields (domain.Registry's
// MapPersonal) are sealed under the user's key, each bound to the key's
// name, the event's id and the field's name (eventFieldAAD): a field
// copied into another event, field or user does not open.
func sealEvent(events domain.Registry, key cipher.AEAD, eventID string, e domain.Event) (domain.Event, error) {
	return events.MapPersonal(e, func(field, value string) (string, error) {
		if key == nil {
			return "", fmt.Errorf("%s of user %s: no key to encrypt its %s with", e.EventName(), e.StreamID(), field)
		}
		sealed, err := secrets.SealValue(key, eventFieldAAD(e.StreamID(), eventID, field), value)
		if err != nil {
			return "", fmt.Errorf("encrypt the %s of an event of user %s: %w", field, e.StreamID(), err)
		}
		return sealed, nil
	})
}

// streamKey is the key of one user's events, unwrapped at the first
// sealed field that needs it; erased tells that the stream holds
// UserErased, so that a missing key is no fault.
type streamKey struct {
	userID string
	erased bool
	unwrap func() (cipher.AEAD, error)
	key    cipher.AEAD
	err    error
	done   bool
}

func (k *streamKey) get() (cipher.AEAD, error) {
	if !k.done {
		k.key, k.err = k.unwrap()
		k.done = true
	}
	return k.key, k.err
}

// OpenEvent opens the sealed personal fields of e (a value, or a pointer
// opened in place); a field written in the clear, before keys, is kept.
// A field under a key that is gone reads empty in an erased stream, and
// is domain.ErrUserErased elsewhere; one that does not open is
// domain.ErrCorruptData, naming the user.
func openEvent(events domain.Registry, key *streamKey, eventID string, e domain.Event) (domain.Event, error) {
	return events.MapPersonal(e, func(field, value string) (string, error) {
		if !secrets.IsSealed(value) {
			return value, nil
		}
		aead, err := key.get()
		switch {
		case errors.Is(err, errNoUserKey) && key.erased:
			return "", nil
		case errors.Is(err, errNoUserKey):
			return "", fmt.Errorf("user %s: its key is gone: %w", key.userID, domain.ErrUserErased)
		case err != nil:
			return "", err
		}
		plain, ok := secrets.OpenValue(aead, eventFieldAAD(key.userID, eventID, field), value)
		if !ok {
			return "", secrets.Corrupt(key.userID, "the "+field+" of event "+eventID)
		}
		return plain, nil
	})
}

// userFields seal and open the personal fields of the users' events
// (eventstore.Fields) under each user's key.
type userFields struct {
	events domain.Registry
	keys   *userKeys
}

func (f userFields) Seal(key cipher.AEAD, eventID string, e domain.Event) (domain.Event, error) {
	return sealEvent(f.events, key, eventID, e)
}

// Openers reads the streams' wrapped keys in one query; each is unwrapped
// at the first sealed field that needs it.
func (f userFields) Openers(ctx context.Context, q eventstore.Querier, streams map[string][]string,
) (map[string]eventstore.Opener, error) {
	ids := make([]string, 0, len(streams))
	for id := range streams {
		ids = append(ids, id)
	}
	wrapped, err := f.keys.wrapped(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	openers := make(map[string]eventstore.Opener, len(streams))
	for id, types := range streams {
		key := &streamKey{userID: id, erased: slices.Contains(types, erasedEvent), unwrap: func() (cipher.AEAD, error) {
			w, ok := wrapped[id]
			if !ok {
				return nil, fmt.Errorf("user %s: %w", id, errNoUserKey)
			}
			return f.keys.open(id, w)
		}}
		openers[id] = func(eventID string, e domain.Event) (domain.Event, error) {
			return openEvent(f.events, key, eventID, e)
		}
	}
	return openers, nil
}

// eventFieldAAD is the additional data of a sealed event field: a label,
// then the name of the user's key, the event's id and the field's name.
func eventFieldAAD(userID, eventID, field string) []byte {
	return secrets.LabelledAAD("onboard event field\x00", secrets.UserKeyName(userID), eventID, field)
}
