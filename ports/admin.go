package ports

import (
	"crypto/sha256"
	"net/http"

	"github.com/gin-gonic/gin"
)

// findUserByEmail is GET /users?email=, for operators: it needs the
// AdminToken as a bearer token, and is off (404) when none is configured.
func (s HTTPServer) findUserByEmail(c *gin.Context) {
	if s.adminTokenDigest == nil {
		writeError(c, http.StatusNotFound, "not-found", "no such route", nil)
		return
	}
	token, ok := bearerToken(c)
	if !ok {
		c.Header("WWW-Authenticate", `Bearer realm="onboard"`)
		writeError(c, http.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <ADMIN_TOKEN>", nil)
		return
	}
	if !s.isAdminToken(token) {
		writeError(c, http.StatusForbidden, "forbidden", "this token may not read users", nil)
		return
	}
	email := c.Query("email")
	if email == "" {
		writeError(c, http.StatusBadRequest, "invalid-query", "send ?email=<address>", nil)
		return
	}
	user, err := s.app.Queries.UserByEmail.Handle(c.Request.Context(), email)
	if err != nil {
		s.fail(c, err)
		return
	}
	writeUser(c, http.StatusOK, user)
}

// digestOf is the SHA-256 of a token; nil for none.
func digestOf(token string) []byte {
	if token == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}
