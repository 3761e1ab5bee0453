package ports

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/domain"
)

type signInRequest struct {
	Email    *string `json:"email"`
	Password *string `json:"password"`
}

type sessionResponse struct {
	UserID    string    `json:"user_id"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// signIn is POST /sessions: a session for the owner of an address, given
// its password. A wrong address and a wrong password get the same 401.
func (s HTTPServer) signIn(c *gin.Context) {
	if !requireJSON(c) {
		return
	}
	var req signInRequest
	if !decodeJSON(c, &req) {
		return
	}
	if missing := missingFields(map[string]*string{"email": req.Email, "password": req.Password}); len(missing) > 0 {
		writeError(c, http.StatusUnprocessableEntity, "validation-failed", "some fields are invalid", missing)
		return
	}
	session, err := s.app.Commands.SignIn.Handle(c.Request.Context(), command.SignIn{
		Email: *req.Email, Password: *req.Password, Client: clientOf(c),
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, sessionResponse{UserID: session.UserID, Token: session.Token, ExpiresAt: session.ExpiresAt})
}

// signOut is DELETE /sessions/current: it ends the session of the bearer
// token; 204 whether or not the session was still live.
func (s HTTPServer) signOut(c *gin.Context) {
	token, ok := bearerToken(c)
	if !ok {
		unauthenticated(c, domain.ErrUnauthenticated)
		return
	}
	if err := s.app.Commands.SignOut.Handle(c.Request.Context(), token); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// sessionKey holds, in a request's context, the token of the session
// that authorised it.
const sessionKey = "onboard.session"

// authorizeUser lets through a request about the user of the :id path
// parameter made by that user's session, or by an operator with the
// ADMIN_TOKEN: 401 without a valid credential, and 404, as for an unknown
// id, for another user's.
func (s HTTPServer) authorizeUser(c *gin.Context) {
	id, ok := userID(c)
	if !ok {
		return
	}
	token, ok := bearerToken(c)
	if !ok {
		unauthenticated(c, domain.ErrUnauthenticated)
		return
	}
	if s.isAdminToken(token) {
		return
	}
	sessionUser, err := s.app.Queries.SessionUser.Handle(c.Request.Context(), token)
	if err != nil {
		s.fail(c, err)
		return
	}
	if sessionUser != id {
		s.fail(c, domain.ErrUserNotFound)
		return
	}
	c.Set(sessionKey, token)
}

// isAdminToken tells whether token is the ADMIN_TOKEN, comparing digests
// so that the time taken tells nothing of the lengths.
func (s HTTPServer) isAdminToken(token string) bool {
	return s.adminTokenDigest != nil && subtle.ConstantTimeCompare(digestOf(token), s.adminTokenDigest) == 1
}

// bearerToken reads Authorization: Bearer <token>, its scheme in any
// letter case (RFC 9110 11.1).
func bearerToken(c *gin.Context) (string, bool) {
	values := c.Request.Header.Values("Authorization")
	if len(values) != 1 {
		return "", false
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// unauthenticated answers 401 with the challenge of RFC 6750.
func unauthenticated(c *gin.Context, err *domain.Error) {
	c.Header("WWW-Authenticate", `Bearer realm="onboard"`)
	writeError(c, http.StatusUnauthorized, err.Code, err.Message, nil)
}

// missingFields names the fields of a request that are absent.
func missingFields(fields map[string]*string) map[string]string {
	missing := map[string]string{}
	for field, value := range fields {
		if value == nil {
			missing[field] = "required"
		}
	}
	return missing
}

// clientOf is the key of the request's client for the limits: its
// address, or its /64 for IPv6.
func clientOf(c *gin.Context) string { return clientKey(c.ClientIP()).String() }

// isUnauthenticated tells whether err is a domain error of that kind.
func isUnauthenticated(err error) (*domain.Error, bool) {
	var de *domain.Error
	return de, errors.As(err, &de) && de.Kind == domain.KindUnauthenticated
}
