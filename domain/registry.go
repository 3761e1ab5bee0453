package domain

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
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
	// personal are the fields that hold personal data, which are stored
	// and published encrypted.
	personal []personalField
}

// personalField is a string field of an event that holds personal data.
type personalField struct {
	index int    // in the struct
	name  string // in the JSON form
}

// Upcaster turns an event's JSON form of one version into the next one's.
type Upcaster func(payload json.RawMessage) (json.RawMessage, error)

// Register is the registration of the event type E, whose JSON form is at
// version; upcasters maps each older version to the function that brings
// it up one version. Every string field of E says whether it holds
// personal data, in its tag: `personal:"yes"` or `personal:"no"`; the
// ones that do are stored and published encrypted (MapPersonal). An event
// with a string field that says neither does not register: a new event
// cannot forget to mark its personal data.
func Register[E Event](version int, upcasters map[int]Upcaster) EventType {
	var zero E
	return EventType{
		name:     zero.EventName(),
		personal: personalFields(reflect.TypeOf(zero)),
		version:  version,
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

// personalFields lists the fields of the event struct t marked
// `personal:"yes"`, and panics on a string field marked neither way: a
// mistake in the code, found at start by every test.
func personalFields(t reflect.Type) []personalField {
	var fields []personalField
	for i := range t.NumField() {
		f := t.Field(i)
		mark, marked := f.Tag.Lookup("personal")
		switch {
		case f.Type.Kind() != reflect.String:
			if marked {
				panic(fmt.Sprintf("event %s: field %s is marked personal but is not a string", t.Name(), f.Name))
			}
		case mark == "yes":
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" {
				name = f.Name
			}
			fields = append(fields, personalField{index: i, name: name})
		case mark != "no":
			panic(fmt.Sprintf("event %s: string field %s must say whether it holds personal data: "+
				"tag it personal:\"yes\" or personal:\"no\"", t.Name(), f.Name))
		}
	}
	return fields
}

// Name is the name under which the event is stored and published.
func (t EventType) Name() string { return t.name }

// PersonalFields names, as in the JSON form, the event's fields that hold
// personal data.
func (t EventType) PersonalFields() []string {
	names := make([]string, len(t.personal))
	for i, f := range t.personal {
		names[i] = f.name
	}
	return names
}

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

// HasPersonalData reports whether the named event has fields that hold
// personal data.
func (r Registry) HasPersonalData(name string) bool { return len(r.types[name].personal) > 0 }

// MapPersonal sets each non-empty personal field of e to f of its JSON
// name and value: on a copy for an event value, in place for a pointer to
// one (what a handler receives). An event this registry does not know has
// no personal fields.
func (r Registry) MapPersonal(e Event, f func(field, value string) (string, error)) (Event, error) {
	t, ok := r.types[e.EventName()]
	if !ok || len(t.personal) == 0 {
		return e, nil
	}
	v := reflect.ValueOf(e)
	out := e
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	} else {
		c := reflect.New(v.Type()).Elem()
		c.Set(v)
		v = c
	}
	for _, p := range t.personal {
		field := v.Field(p.index)
		if field.String() == "" {
			continue
		}
		mapped, err := f(p.name, field.String())
		if err != nil {
			return nil, err
		}
		field.SetString(mapped)
	}
	if reflect.ValueOf(e).Kind() != reflect.Pointer {
		out = v.Interface().(Event)
	}
	return out, nil
}

func (r Registry) unknownVersion(name string, version int) error {
	t, ok := r.types[name]
	if !ok {
		return fmt.Errorf("unknown event %q", name)
	}
	return fmt.Errorf("%s: unknown schema version %d (this build reads versions up to %d)", name, version, t.version)
}
