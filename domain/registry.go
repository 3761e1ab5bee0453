package domain

import (
	"encoding/json"
	"fmt"
	"sort"
)

// EventType registers one event: its name, the version of its JSON form
// this build writes, how to read that form, and how to bring each older
// form up to the next. The event store, the outbox, the handlers' schema
// check and the tests all read events through their registration.
type EventType struct {
	name    string
	version int
	decode  func(payload []byte) (Event, error)
	// upcasters[v] turns the JSON of version v into that of version v+1.
	upcasters map[int]Upcaster
}

// Upcaster turns an event's JSON form of one version into the next one's.
type Upcaster func(payload json.RawMessage) (json.RawMessage, error)

// Register is the registration of the event type E, whose JSON form is at
// version; upcasters maps each older version to the function that brings
// it up one version.
func Register[E Event](version int, upcasters map[int]Upcaster) EventType {
	var zero E
	return EventType{
		name:    zero.EventName(),
		version: version,
		decode: func(payload []byte) (Event, error) {
			var e E
			if err := json.Unmarshal(payload, &e); err != nil {
				return nil, err
			}
			return e, nil
		},
		upcasters: upcasters,
	}
}

// Name is the name under which the event is stored and published.
func (t EventType) Name() string { return t.name }

// Version is the version of the JSON form this build writes.
func (t EventType) Version() int { return t.version }

// Registry is the set of events a build reads and writes. It is built once
// and never changes.
type Registry struct{ types map[string]EventType }

// NewRegistry registers the event types.
func NewRegistry(types ...EventType) Registry {
	r := Registry{types: make(map[string]EventType, len(types))}
	for _, t := range types {
		r.types[t.name] = t
	}
	return r
}

// Type is the registration of the named event.
func (r Registry) Type(name string) (EventType, bool) {
	t, ok := r.types[name]
	return t, ok
}

// Version is the version of the named event's JSON form this build writes.
func (r Registry) Version(name string) (int, error) {
	t, ok := r.types[name]
	if !ok {
		return 0, fmt.Errorf("unknown event %q", name)
	}
	return t.version, nil
}

// Names lists the registered events, sorted.
func (r Registry) Names() []string {
	names := make([]string, 0, len(r.types))
	for name := range r.types {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// CanRead reports whether this build reads the named event at version:
// the current one, or an older one it can bring up to date.
func (r Registry) CanRead(name string, version int) bool {
	t, ok := r.types[name]
	if !ok || version < 1 || version > t.version {
		return false
	}
	for v := version; v < t.version; v++ {
		if t.upcasters[v] == nil {
			return false
		}
	}
	return true
}

// Upcast brings the JSON form of the named event at version up to the
// version this build writes.
func (r Registry) Upcast(name string, version int, payload []byte) ([]byte, error) {
	if !r.CanRead(name, version) {
		return nil, r.unknownVersion(name, version)
	}
	t := r.types[name]
	for v := version; v < t.version; v++ {
		up, err := t.upcasters[v](payload)
		if err != nil {
			return nil, fmt.Errorf("upcast %s from version %d: %w", name, v, err)
		}
		payload = up
	}
	return payload, nil
}

// Decode reads a stored or published event of any version this build
// reads.
func (r Registry) Decode(name string, version int, payload []byte) (Event, error) {
	current, err := r.Upcast(name, version, payload)
	if err != nil {
		return nil, err
	}
	e, err := r.types[name].decode(current)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", name, err)
	}
	return e, nil
}

func (r Registry) unknownVersion(name string, version int) error {
	t, ok := r.types[name]
	if !ok {
		return fmt.Errorf("unknown event %q", name)
	}
	return fmt.Errorf("%s: unknown schema version %d (this build reads versions up to %d)", name, version, t.version)
}
