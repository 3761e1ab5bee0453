package service

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestService_NoAddressIsALookupKey: after registrations and an address
// change, user_emails and the users read model find addresses by keyed
// hashes alone, and everything that finds a user by address still does,
// in any letter case.
func TestService_NoAddressIsALookupKey(t *testing.T) {
	t.Parallel()
	s := startServiceOnSQLite(t)
	status, _, body := s.post(jsonBody(okName, `"Ada@Example.com"`, okPassword), "")
	require.Equal(t, http.StatusCreated, status, "%s", body)
	ada, auth := decodeUser(t, body).ID, sessionHeader(t, body)
	status, _, body = s.post(jsonBody(okName, `"Bob@Example.com"`, okPassword), "")
	require.Equal(t, http.StatusCreated, status, "%s", body)
	bob := decodeUser(t, body).ID
	resp, body := s.call(http.MethodPut, "/users/"+ada+"/email", `{"email":"Lovelace@Example.org","password":`+okPassword+`}`,
		map[string]string{"If-Match": "*", "Authorization": auth["Authorization"]})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)

	addresses := []string{"Ada@Example.com", "Bob@Example.com", "Lovelace@Example.org"}
	for _, query := range []string{`SELECT email_key FROM user_emails`, `SELECT email_key FROM users`} {
		keys := s.db.RowsAsText(t, query)
		require.Len(t, keys, 2, query)
		for _, key := range keys {
			assert.NotContains(t, key, "@", query)
			for _, address := range addresses {
				for _, form := range []string{address, strings.ToLower(address)} {
					assert.NotContains(t, key, form, query)
				}
			}
		}
	}

	status, _, body = s.post(jsonBody(okName, `"bob@EXAMPLE.com"`, okPassword), "")
	assert.Equal(t, http.StatusConflict, status, "%s", body)
	status, _, body = s.post(jsonBody(okName, `"LOVELACE@example.ORG"`, okPassword), "")
	assert.Equal(t, http.StatusConflict, status, "%s", body)

	for email, id := range map[string]string{"LOVELACE@example.org": ada, "bob@example.COM": bob} {
		resp, body = s.call(http.MethodGet, "/users?email="+email, "",
			map[string]string{"Authorization": "Bearer " + testAdminToken})
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		assert.Equal(t, id, decodeUser(t, body).ID)
	}
	resp, body = s.call(http.MethodGet, "/users?email=ada@example.com", "",
		map[string]string{"Authorization": "Bearer " + testAdminToken})
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "the old address is nobody's: %s", body)

	resp, body = s.call(http.MethodPost, "/sessions", `{"email":"lovelace@EXAMPLE.org","password":`+okPassword+`}`, nil)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	resp, body = s.call(http.MethodPost, "/password-resets", `{"email":"BOB@example.com"}`, nil)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "%s", body)
	assert.Contains(t, s.waitMail("Bob@Example.com", "Reset your password"), "reset-password")
}
