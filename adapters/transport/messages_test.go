package transport_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/domain"
)

// A UserRegistered message of version 1, published by an older build and
// still waiting on a queue, is read through the registry's upcaster.
func TestMarshaler_UpcastsOlderEventMessages(t *testing.T) {
	msg := message.NewMessage("m1", []byte(`{"user_id":"u1","name":"Ada","email":"ada@example.com"}`))
	msg.Metadata.Set("name", "UserRegistered")
	msg.Metadata.Set(transport.SchemaVersionKey, "1")
	require.NoError(t, transport.CheckSchemaVersion(domain.Events, "UserRegistered", msg))

	var e domain.UserRegistered
	require.NoError(t, transport.NewMarshaler(domain.Events).Unmarshal(msg, &e))
	assert.Equal(t, domain.UserRegistered{UserID: "u1", Name: "Ada", Email: "ada@example.com", Locale: "en"}, e)
	assert.JSONEq(t, `{"user_id":"u1","name":"Ada","email":"ada@example.com"}`, string(msg.Payload),
		"the message itself is left as it came")

	current, err := transport.NewMarshaler(domain.Events).Marshal(&domain.UserRegistered{UserID: "u2", Locale: "de"})
	require.NoError(t, err)
	require.NoError(t, transport.SetSchemaVersion(domain.Events, "UserRegistered", current))
	assert.Equal(t, "2", current.Metadata.Get(transport.SchemaVersionKey))
	var read domain.UserRegistered
	require.NoError(t, transport.NewMarshaler(domain.Events).Unmarshal(current, &read))
	assert.Equal(t, "de", read.Locale, "the current version is read as written")
}

func TestCheckSchemaVersion_RefusesWhatThisBuildCannotRead(t *testing.T) {
	for _, version := range []string{"0", "3", "two"} {
		msg := message.NewMessage("m1", []byte(`{}`))
		msg.Metadata.Set(transport.SchemaVersionKey, version)
		assert.ErrorContains(t, transport.CheckSchemaVersion(domain.Events, "UserRegistered", msg),
			"reads versions up to 2", version)
	}
	unversioned := message.NewMessage("m1", []byte(`{}`))
	assert.NoError(t, transport.CheckSchemaVersion(domain.Events, "UserRegistered", unversioned),
		"no version: the current one")
}
