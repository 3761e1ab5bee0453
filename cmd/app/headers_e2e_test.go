package main

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/internal/testenv"
)

// TestE2E_ResponseHeaders: the headers every answer of the binary carries.
func TestE2E_ResponseHeaders(t *testing.T) {
	proc := runBinary(t, map[string]string{"DATABASE_URL": testenv.SQLiteDatabase(t)})
	api := newE2EAPI(proc.waitServing(t))
	created, err := api.register(e2eUser{Name: "Ada Lovelace", Email: "ada.headers@example.com", Password: "correct horse battery"}, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, created.Status, created.String())
	id, _ := created.JSON()["id"].(string)

	// Answers with a user's name, email or points are never stored by a cache.
	assert.Equal(t, "no-store", created.Header.Get("Cache-Control"), "the 201")
	for _, path := range []string{"/users/" + id, "/users/" + id + "/points"} {
		r := api.mustGet(t, path)
		require.Equal(t, http.StatusOK, r.Status, r.String())
		assert.Equal(t, "no-store", r.Header.Get("Cache-Control"), "GET %s", path)
	}
	proc.stop(t)
}
