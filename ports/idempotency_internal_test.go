package ports

import (
	"bytes"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The user id of an Idempotency-Key is keyed by the server's secret: the
// key alone does not tell it.
func TestIdempotentUserID_KeyedBySecret(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	const key = "signup-7f3c2a9e"

	id := idempotentUserID(secret, key)
	parsed, err := uuid.Parse(id)
	require.NoError(t, err)
	assert.Equal(t, id, parsed.String(), "lower-case canonical form")
	assert.Equal(t, uuid.Version(8), parsed.Version(), "a custom-made UUID")
	assert.Equal(t, uuid.RFC4122, parsed.Variant())

	assert.Equal(t, id, idempotentUserID(secret, key), "the same key, the same id")
	assert.NotEqual(t, id, idempotentUserID(secret, key+"x"))
	assert.NotEqual(t, id, idempotentUserID(bytes.Repeat([]byte{8}, 32), key), "another secret, another id")
	// The former derivation, UUIDv5 under a namespace written in the source.
	assert.NotEqual(t, uuid.NewSHA1(uuid.MustParse("e5e94093-ea57-47fc-8009-a1946c152edd"), []byte(key)).String(), id)
}
