package domain_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/domain"
)

// noteAdded is an event of the tests, at version 3 of its JSON form: version
// 1 had "text", version 2 renamed it "note", version 3 added "lang".
type noteAdded struct {
	Note string `json:"note" personal:"no"`
	Lang string `json:"lang" personal:"no"`
}

func (noteAdded) EventName() string { return "NoteAdded" }

func (noteAdded) StreamID() string { return "" }

var notes = domain.NewRegistry(
	domain.Register[domain.UserRegistered](domain.UserRegisteredSchemaVersion, nil),
	domain.Register[noteAdded](3, map[int]domain.Upcaster{
		1: func(p json.RawMessage) (json.RawMessage, error) {
			return json.RawMessage(strings.Replace(string(p), `"text"`, `"note"`, 1)), nil
		},
		2: func(p json.RawMessage) (json.RawMessage, error) {
			var v map[string]any
			if err := json.Unmarshal(p, &v); err != nil {
				return nil, err
			}
			v["lang"] = "en"
			return json.Marshal(v)
		},
	}),
)

func TestRegistry_DecodesEveryVersionItReads(t *testing.T) {
	for version, payload := range map[int]string{
		1: `{"text":"hello"}`,
		2: `{"note":"hello"}`,
		3: `{"note":"hello","lang":"en"}`,
	} {
		e, err := notes.Decode("NoteAdded", version, []byte(payload))
		require.NoError(t, err, "version %d", version)
		assert.Equal(t, noteAdded{Note: "hello", Lang: "en"}, e, "version %d", version)
	}
	v, err := notes.Version("NoteAdded")
	require.NoError(t, err)
	assert.Equal(t, 3, v)
	assert.Equal(t, []string{"NoteAdded", "UserRegistered"}, notes.Names())
}

func TestRegistry_RefusesWhatItCannotRead(t *testing.T) {
	for _, tt := range []struct {
		name    string
		event   string
		version int
		want    string
	}{
		{"a newer version", "NoteAdded", 4, "unknown schema version 4"},
		{"version 0", "UserRegistered", 0, "unknown schema version 0"},
		{"an older version without an upcaster", "UserRegistered", 1, "reads versions up to 2"},
		{"an unknown event", "Unheard", 1, `unknown event "Unheard"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.False(t, notes.CanRead(tt.event, tt.version))
			_, err := notes.Decode(tt.event, tt.version, []byte(`{}`))
			assert.ErrorContains(t, err, tt.want)
		})
	}
	_, err := notes.Decode("NoteAdded", 3, []byte(`{"note":`))
	assert.ErrorContains(t, err, "decode NoteAdded")
}

func TestEvents_RegistersEveryEventOfOnboard(t *testing.T) {
	assert.Equal(t, []string{"EmailChanged", "EmailVerified", "PasswordChanged", "PasswordResetRequested", "UserErased",
		"UserRegistered", "VerificationEmailRequested"}, domain.Events.Names())
	e, err := domain.Events.Decode("UserRegistered", domain.UserRegisteredSchemaVersion,
		[]byte(`{"user_id":"u1","name":"Ada","email":"ada@example.com"}`))
	require.NoError(t, err)
	assert.Equal(t, "u1", e.(domain.UserRegistered).UserID)
}

// Version 1 of UserRegistered, written before users chose a language,
// reads as version 2 with the default locale; the payload's other fields
// are kept as they were.
func TestEvents_UpcastsUserRegisteredVersion1(t *testing.T) {
	v1 := []byte(`{"user_id":"u1","name":"Ada","email":"ada@example.com","registered_at":"2024-05-06T05:08:09Z"}`)
	require.True(t, domain.Events.CanRead("UserRegistered", 1))
	e, err := domain.Events.Decode("UserRegistered", 1, v1)
	require.NoError(t, err)
	registered := e.(domain.UserRegistered)
	assert.Equal(t, "en", registered.Locale)
	assert.Equal(t, "ada@example.com", registered.Email)
	assert.Equal(t, "2024-05-06T05:08:09Z", registered.RegisteredAt.Format(time.RFC3339))

	v2 := []byte(`{"user_id":"u1","name":"Ada","email":"ada@example.com","locale":"de","registered_at":"2024-05-06T05:08:09Z"}`)
	e, err = domain.Events.Decode("UserRegistered", 2, v2)
	require.NoError(t, err)
	assert.Equal(t, "de", e.(domain.UserRegistered).Locale, "version 2 is read as written")

	_, err = domain.Events.Decode("UserRegistered", 1, []byte(`["not an object"]`))
	assert.ErrorContains(t, err, "upcast UserRegistered from version 1")
}

// Version 1 of EmailChanged and VerificationEmailRequested, written before
// links proved the address's number, read as version 2 with the number 0,
// which no address has: the links made from them never verify. The
// payload's other fields are kept; version 2 is read as written.
func TestEvents_UpcastsVersion1OfTheEventsThatSendLinks(t *testing.T) {
	for _, tt := range []struct {
		event string
		v1    string
		v2    string
		want  func(domain.Event) (number int, address string)
	}{
		{
			event: "EmailChanged",
			v1:    `{"user_id":"u1","old_email":"a@example.com","new_email":"b@example.com","locale":"de","changed_at":"2024-05-06T05:08:09Z"}`,
			v2: `{"user_id":"u1","old_email":"a@example.com","new_email":"b@example.com","email_number":4,"locale":"de",` +
				`"changed_at":"2024-05-06T05:08:09Z"}`,
			want: func(e domain.Event) (int, string) {
				changed := e.(domain.EmailChanged)
				return changed.EmailNumber, changed.NewEmail
			},
		},
		{
			event: "VerificationEmailRequested",
			v1:    `{"user_id":"u1","email":"b@example.com","locale":"de","requested_at":"2024-05-06T05:08:09Z"}`,
			v2:    `{"user_id":"u1","email":"b@example.com","email_number":4,"locale":"de","requested_at":"2024-05-06T05:08:09Z"}`,
			want: func(e domain.Event) (int, string) {
				requested := e.(domain.VerificationEmailRequested)
				return requested.EmailNumber, requested.Email
			},
		},
	} {
		t.Run(tt.event, func(t *testing.T) {
			version, err := domain.Events.Version(tt.event)
			require.NoError(t, err)
			assert.Equal(t, 2, version)
			require.True(t, domain.Events.CanRead(tt.event, 1))
			e, err := domain.Events.Decode(tt.event, 1, []byte(tt.v1))
			require.NoError(t, err)
			number, address := tt.want(e)
			assert.Zero(t, number, "the number version 1 did not carry: none")
			assert.Equal(t, "b@example.com", address)
			assert.Equal(t, "u1", e.StreamID())

			e, err = domain.Events.Decode(tt.event, 2, []byte(tt.v2))
			require.NoError(t, err)
			number, _ = tt.want(e)
			assert.Equal(t, 4, number, "version 2 is read as written")

			_, err = domain.Events.Decode(tt.event, 1, []byte(`["not an object"]`))
			assert.ErrorContains(t, err, "upcast "+tt.event+" from version 1")
		})
	}
}

// A user rebuilt from a stream written by an older build (EmailChanged of
// version 1) counts its addresses all the same.
func TestUser_CountsItsAddressesFromVersion1Events(t *testing.T) {
	stream := []domain.Event{domain.UserRegistered{UserID: "0190f5c4-7b9e-7000-8000-000000000001", Name: "Ada",
		Email: "a@example.com", Locale: "en", RegisteredAt: time.Now()}}
	for i, v1 := range []string{
		`{"user_id":"0190f5c4-7b9e-7000-8000-000000000001","old_email":"a@example.com","new_email":"b@example.com"}`,
		`{"user_id":"0190f5c4-7b9e-7000-8000-000000000001","old_email":"b@example.com","new_email":"a@example.com"}`,
	} {
		e, err := domain.Events.Decode("EmailChanged", 1, []byte(v1))
		require.NoError(t, err, i)
		stream = append(stream, e)
	}
	user, err := domain.UnmarshalUserFromEvents(stream)
	require.NoError(t, err)
	assert.Equal(t, 3, user.EmailNumber())
	assert.Equal(t, "a@example.com", user.Email().String())
}

// unmarked has a string field that does not say whether it is personal.
type unmarked struct {
	UserID string `json:"user_id" personal:"no"`
	Note   string `json:"note"`
}

func (unmarked) EventName() string { return "Unmarked" }

func (e unmarked) StreamID() string { return e.UserID }

// A new event cannot forget to mark its personal data: one with an
// unmarked string field does not register.
func TestRegister_RefusesAnEventWithAnUnmarkedStringField(t *testing.T) {
	assert.PanicsWithValue(t, `event unmarked: string field Note must say whether it holds personal data: `+
		`tag it personal:"yes" or personal:"no"`, func() { domain.Register[unmarked](1, nil) })
}

func TestEvents_MarkNameAndAddressesPersonal(t *testing.T) {
	for name, want := range map[string][]string{
		"UserRegistered":             {"name", "email"},
		"VerificationEmailRequested": {"email"},
		"EmailVerified":              {"email"},
		"EmailChanged":               {"old_email", "new_email"},
		"PasswordResetRequested":     {"email"},
		"PasswordChanged":            {},
		"UserErased":                 {},
	} {
		et, ok := domain.Events.Type(name)
		require.True(t, ok, name)
		assert.Equal(t, want, et.PersonalFields(), name)
	}
}

// MapPersonal maps the personal fields alone: of a copy for a value, in
// place for a pointer; an empty field is left empty.
func TestRegistry_MapPersonalMapsThePersonalFieldsAlone(t *testing.T) {
	upper := func(field, value string) (string, error) { return field + "=" + strings.ToUpper(value), nil }
	e := domain.UserRegistered{UserID: "u1", Name: "Ada", Email: "", Locale: "en"}
	mapped, err := domain.Events.MapPersonal(e, upper)
	require.NoError(t, err)
	assert.Equal(t, domain.UserRegistered{UserID: "u1", Name: "name=ADA", Locale: "en"}, mapped)
	assert.Equal(t, "Ada", e.Name, "the value is not changed")

	p := &domain.EmailChanged{UserID: "u1", OldEmail: "a@x", NewEmail: "b@x", Locale: "de"}
	_, err = domain.Events.MapPersonal(p, upper)
	require.NoError(t, err)
	assert.Equal(t, domain.EmailChanged{UserID: "u1", OldEmail: "old_email=A@X", NewEmail: "new_email=B@X", Locale: "de"}, *p)

	_, err = domain.Events.MapPersonal(e, func(string, string) (string, error) { return "", errors.New("no key") })
	assert.EqualError(t, err, "no key")
}
