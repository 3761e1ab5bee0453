package adapters_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/internal/testenv"
)

func TestUserStore_NeedsALookupKey(t *testing.T) {
	db := storeDB(t, testenv.Backends()[0])
	for _, key := range [][]byte{nil, []byte("short")} {
		_, err := adapters.NewUserStoreWithConfig(adapters.UserStoreConfig{DB: db.DB, LookupKey: key})
		assert.ErrorContains(t, err, "lookup key")
	}
}
