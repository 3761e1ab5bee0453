package domain_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/domain"
)

const (
	validID       = "0190f5c4-7b9e-7000-8000-000000000001"
	validName     = "Ada Lovelace"
	validEmail    = "ada@example.com"
	validPassword = "correct horse"
)

var registeredAt = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("CEST", 2*60*60))

// fieldErrors returns the per-field slugs of a validation error, failing the
// test if err is not one.
func fieldErrors(t *testing.T, err error) map[string]string {
	t.Helper()
	var de *domain.Error
	require.ErrorAs(t, err, &de)
	assert.Equal(t, domain.KindInvalid, de.Kind)
	assert.Equal(t, "validation-failed", de.Code)
	return de.Fields
}

func TestNewUser_ReportsEveryInvalidFieldAtOnce(t *testing.T) {
	tests := []struct {
		name                          string
		id, userName, email, password string
		want                          map[string]string
	}{
		{
			name: "all fields empty",
			want: map[string]string{"id": "required", "name": "required", "email": "required", "password": "required"},
		},
		{
			name: "all fields malformed", id: validID, userName: "Ada\u202e", email: "Ada <ada@example.com>", password: "short",
			want: map[string]string{"name": "invalid-characters", "email": "invalid-format", "password": "too-short"},
		},
		{
			name: "all fields too long", id: validID, userName: strings.Repeat("n", 101), email: emailOf(255), password: strings.Repeat("p", 73),
			want: map[string]string{"name": "too-long", "email": "too-long", "password": "too-long"},
		},
		{
			name: "only the id", userName: validName, email: validEmail, password: validPassword,
			want: map[string]string{"id": "required"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, err := domain.NewUser(tt.id, tt.userName, tt.email, tt.password, "", registeredAt)
			require.Error(t, err)
			assert.Nil(t, user)
			assert.Equal(t, tt.want, fieldErrors(t, err))
			assert.True(t, domain.IsKind(err, domain.KindInvalid))
			assert.False(t, domain.IsKind(err, domain.KindConflict))
			assert.False(t, domain.IsKind(err, domain.KindNotFound))
		})
	}
}

func TestNewUser_ErrorMessageListsFieldsInOrder(t *testing.T) {
	const password = "pw-7byt"
	_, err := domain.NewUser(validID, "", "nope", password, "", registeredAt)
	require.Error(t, err)
	assert.Equal(t, "some fields are invalid (email: invalid-format, name: required, password: too-short)", err.Error())
	assert.NotContains(t, err.Error(), password, "the message never echoes the password")
}

func TestNewUser_Valid(t *testing.T) {
	user, err := domain.NewUser(validID, "  Ada Lovelace ", "Ada@Example.com", validPassword, "", registeredAt)
	require.NoError(t, err)

	wantAt := time.Date(2024, 5, 6, 5, 8, 9, 123456000, time.UTC)
	assert.Equal(t, validID, user.ID())
	assert.Equal(t, "Ada Lovelace", user.Name())
	assert.Equal(t, "Ada@Example.com", user.Email().String())
	assert.Equal(t, "ada@example.com", user.Email().Key())
	assert.Equal(t, wantAt, user.RegisteredAt())
	assert.Equal(t, time.UTC, user.RegisteredAt().Location())
	assert.Equal(t, 1, user.Version())

	require.Len(t, user.PendingEvents(), 1)
	assert.Equal(t, domain.UserRegistered{
		UserID:       validID,
		Name:         "Ada Lovelace",
		Email:        "Ada@Example.com",
		Locale:       "en",
		RegisteredAt: wantAt,
	}, user.PendingEvents()[0])
	assert.Equal(t, "UserRegistered", user.PendingEvents()[0].EventName())
}

func TestUserRegistered_CarriesNoSecret(t *testing.T) {
	const password = "s3cret-Passw0rd!"
	user, err := domain.NewUser(validID, validName, validEmail, password, "", registeredAt)
	require.NoError(t, err)
	payload, err := json.Marshal(user.PendingEvents())
	require.NoError(t, err)
	assert.NotContains(t, string(payload), password)
	assert.NotContains(t, strings.ToLower(string(payload)), "password")
	assert.JSONEq(t,
		`[{"user_id":"`+validID+`","name":"Ada Lovelace","email":"ada@example.com","locale":"en","registered_at":"2024-05-06T05:08:09.123456Z"}]`,
		string(payload))
}

func TestUnmarshalUserFromEvents(t *testing.T) {
	user, err := domain.NewUser(validID, " Ada Lovelace ", "Ada@Example.com", validPassword, "", registeredAt)
	require.NoError(t, err)

	t.Run("from the pending events", func(t *testing.T) {
		loaded, err := domain.UnmarshalUserFromEvents(user.PendingEvents())
		require.NoError(t, err)
		assertSameUser(t, user, loaded)
		assert.Empty(t, loaded.PendingEvents(), "a loaded user has nothing pending")
	})

	t.Run("from events stored as JSON", func(t *testing.T) {
		payload, err := json.Marshal(user.PendingEvents()[0])
		require.NoError(t, err)
		var stored domain.UserRegistered
		require.NoError(t, json.Unmarshal(payload, &stored))

		loaded, err := domain.UnmarshalUserFromEvents([]domain.Event{stored})
		require.NoError(t, err)
		assertSameUser(t, user, loaded)
	})

	t.Run("no events", func(t *testing.T) {
		for _, events := range [][]domain.Event{nil, {}} {
			loaded, err := domain.UnmarshalUserFromEvents(events)
			assert.Nil(t, loaded)
			require.ErrorIs(t, err, domain.ErrUserNotFound)
			assert.True(t, domain.IsKind(err, domain.KindNotFound))
		}
	})

	t.Run("unknown event", func(t *testing.T) {
		loaded, err := domain.UnmarshalUserFromEvents([]domain.Event{user.PendingEvents()[0], unknownEvent{}})
		require.Error(t, err)
		assert.Nil(t, loaded)
	})
}

type unknownEvent struct{}

func (unknownEvent) EventName() string { return "Unknown" }

func (unknownEvent) StreamID() string { return "" }

func assertSameUser(t *testing.T, want, got *domain.User) {
	t.Helper()
	assert.Equal(t, want.ID(), got.ID())
	assert.Equal(t, want.Name(), got.Name())
	assert.Equal(t, want.Email(), got.Email())
	assert.Equal(t, want.Email().Key(), got.Email().Key())
	assert.True(t, want.RegisteredAt().Equal(got.RegisteredAt()), "registered at %v, want %v", got.RegisteredAt(), want.RegisteredAt())
	assert.Equal(t, time.UTC, got.RegisteredAt().Location())
	assert.Equal(t, want.Version(), got.Version())
}

func TestErrorKinds(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantKind domain.Kind
		wantCode string
	}{
		{name: "email taken", err: domain.ErrEmailTaken, wantKind: domain.KindConflict, wantCode: "email-taken"},
		{name: "user exists", err: domain.ErrUserExists, wantKind: domain.KindConflict, wantCode: "user-exists"},
		{name: "user not found", err: domain.ErrUserNotFound, wantKind: domain.KindNotFound, wantCode: "user-not-found"},
		{name: "wrapped", err: fmt.Errorf("register: %w", domain.ErrEmailTaken), wantKind: domain.KindConflict, wantCode: "email-taken"},
		{name: "joined", err: errors.Join(errors.New("other"), domain.ErrUserNotFound), wantKind: domain.KindNotFound, wantCode: "user-not-found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var de *domain.Error
			require.ErrorAs(t, tt.err, &de)
			assert.Equal(t, tt.wantCode, de.Code)
			assert.NotEmpty(t, de.Message)
			for _, kind := range []domain.Kind{domain.KindInvalid, domain.KindConflict, domain.KindNotFound} {
				assert.Equal(t, kind == tt.wantKind, domain.IsKind(tt.err, kind), "IsKind(%d)", kind)
			}
		})
	}

	t.Run("not a domain error", func(t *testing.T) {
		err := fmt.Errorf("db: %w", errors.New("connection refused"))
		assert.False(t, domain.IsKind(err, domain.KindInvalid))
		assert.False(t, domain.IsKind(err, domain.KindConflict))
		assert.False(t, domain.IsKind(err, domain.KindNotFound))
		assert.False(t, domain.IsKind(nil, domain.KindInvalid))
	})
}

func TestNewUser_IDMustBeALowerCaseUUID(t *testing.T) {
	for id, slug := range map[string]string{
		"":                                       "required",
		"not-a-uuid":                             "invalid-format",
		"0190F5C4-7B9E-7000-8000-000000000001":   "invalid-format",
		"{0190f5c4-7b9e-7000-8000-000000000001}": "invalid-format",
	} {
		_, err := domain.NewUser(id, "Ada", "ada@example.com", "correct horse", "", time.Now())
		var de *domain.Error
		require.ErrorAs(t, err, &de, id)
		assert.Equal(t, slug, de.Fields["id"], id)
	}
	_, err := domain.NewUser("0190f5c4-7b9e-7000-8000-000000000001", "Ada", "ada@example.com", "correct horse", "", time.Now())
	require.NoError(t, err)
}
