package ports

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/app/query"
)

type verifyEmailRequest struct {
	Token *string `json:"token"`
}

// verifyEmail records the verification of the user's address by the token
// of its link: 200 with the user, whether this call or an earlier one
// verified it.
func (s HTTPServer) verifyEmail(c *gin.Context) {
	id, ok := userID(c)
	if !ok || !requireJSON(c) {
		return
	}
	var req verifyEmailRequest
	if !decodeJSON(c, &req) {
		return
	}
	if req.Token == nil {
		writeError(c, http.StatusUnprocessableEntity, "validation-failed", "some fields are invalid",
			map[string]string{"token": "required"})
		return
	}
	user, err := s.app.Commands.VerifyEmail.Handle(c.Request.Context(), command.VerifyEmail{UserID: id, Token: *req.Token})
	if err != nil {
		s.fail(c, err)
		return
	}
	writeUser(c, http.StatusOK, query.UserOf(user))
}

// resendVerification sends a new verification email: 202, the email
// leaves through the outbox.
func (s HTTPServer) resendVerification(c *gin.Context) {
	id, ok := userID(c)
	if !ok {
		return
	}
	user, err := s.app.Commands.RequestVerificationEmail.Handle(c.Request.Context(),
		command.RequestVerificationEmail{UserID: id, Client: clientOf(c)})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("ETag", etag(user.Version()))
	c.JSON(http.StatusAccepted, gin.H{"status": "verification-email-requested"})
}

type changeEmailRequest struct {
	Email    *string `json:"email"`
	Password *string `json:"password"`
}

// changeEmail moves the user to another address, given its password and,
// in If-Match, the ETag of the version the client read.
func (s HTTPServer) changeEmail(c *gin.Context) {
	id, ok := userID(c)
	if !ok {
		return
	}
	ifMatch := c.Request.Header.Values("If-Match")
	if len(ifMatch) == 0 {
		writeError(c, http.StatusPreconditionRequired, "precondition-required",
			`send If-Match with the ETag of GET /users/{id}: the user's version, quoted or bare`, nil)
		return
	}
	if !requireJSON(c) {
		return
	}
	var req changeEmailRequest
	if !decodeJSON(c, &req) {
		return
	}
	if missing := missingFields(map[string]*string{"email": req.Email, "password": req.Password}); len(missing) > 0 {
		writeError(c, http.StatusUnprocessableEntity, "validation-failed", "some fields are invalid", missing)
		return
	}
	// "*" matches any current version; an If-Match that is not one of our
	// ETags matches no version (RFC 9110 13.1.1), and is answered as a
	// stale one.
	version, ok := parseETag(ifMatch)
	switch {
	case len(ifMatch) == 1 && strings.TrimSpace(ifMatch[0]) == "*":
		version = command.AnyVersion
	case !ok:
		version = 0 // no version is 0
	}
	user, err := s.app.Commands.ChangeEmail.Handle(c.Request.Context(), command.ChangeEmail{
		UserID: id, Email: *req.Email, Password: *req.Password, ExpectedVersion: version,
		Client: clientOf(c), Session: c.GetString(sessionKey),
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	writeUser(c, http.StatusOK, query.UserOf(user))
}

// parseETag reads one strong ETag of ours, a quoted version, or the
// version bare, as a client holding the user's "version" sends it.
func parseETag(values []string) (int, bool) {
	if len(values) != 1 {
		return 0, false
	}
	text := strings.TrimSpace(values[0])
	if len(text) >= 3 && text[0] == '"' && text[len(text)-1] == '"' {
		text = text[1 : len(text)-1]
	}
	version, err := strconv.Atoi(text)
	if err != nil || version < 1 || strconv.Itoa(version) != text {
		return 0, false
	}
	return version, true
}
