package ports

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/domain"
)

type passwordResetRequest struct {
	Email *string `json:"email"`
}

// requestPasswordReset is POST /password-resets: 202 the same way whether
// or not the address is registered; a registered one gets a link.
func (s HTTPServer) requestPasswordReset(c *gin.Context) {
	if !requireJSON(c) {
		return
	}
	var req passwordResetRequest
	if !decodeJSON(c, &req) {
		return
	}
	if req.Email == nil {
		writeError(c, http.StatusUnprocessableEntity, "validation-failed", "some fields are invalid",
			map[string]string{"email": "required"})
		return
	}
	err := s.app.Commands.RequestPasswordReset.Handle(c.Request.Context(),
		command.RequestPasswordReset{Email: *req.Email, Client: clientOf(c)})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"status": "password-reset-requested"})
}

type confirmPasswordResetRequest struct {
	User     *string `json:"user"`
	Token    *string `json:"token"`
	Password *string `json:"password"`
}

// confirmPasswordReset is POST /password-resets/confirm: the new password,
// with the user and token of the link; 204, and every session ends.
func (s HTTPServer) confirmPasswordReset(c *gin.Context) {
	if !requireJSON(c) {
		return
	}
	var req confirmPasswordResetRequest
	if !decodeJSON(c, &req) {
		return
	}
	missing := missingFields(map[string]*string{"user": req.User, "token": req.Token, "password": req.Password})
	if len(missing) > 0 {
		writeError(c, http.StatusUnprocessableEntity, "validation-failed", "some fields are invalid", missing)
		return
	}
	id, err := uuid.Parse(*req.User)
	if err != nil {
		s.fail(c, domain.ErrInvalidResetToken)
		return
	}
	err = s.app.Commands.ResetPassword.Handle(c.Request.Context(),
		command.ResetPassword{UserID: id.String(), Token: *req.Token, Password: *req.Password})
	if errors.Is(err, domain.ErrUserNotFound) {
		err = domain.ErrInvalidResetToken // a link names a user: one that is not ours is a bad link
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// resetPage is what the reset email's link opens: a form for the new
// password, which POSTs it with the token. A GET changes nothing.
func (s HTTPServer) resetPage(c *gin.Context) {
	c.HTML(http.StatusOK, "reset.html", gin.H{"User": c.Query("user"), "Token": c.Query("token")})
}

// resetFromPage is the form's POST: it sets the password and shows the
// outcome, or the form again with what is wrong with the password.
func (s HTTPServer) resetFromPage(c *gin.Context) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes)
	user, token := c.PostForm("user"), c.PostForm("token")
	id, err := uuid.Parse(user)
	if err != nil {
		c.HTML(http.StatusUnprocessableEntity, "reset_done.html", gin.H{"Outcome": "invalid"})
		return
	}
	err = s.app.Commands.ResetPassword.Handle(c.Request.Context(),
		command.ResetPassword{UserID: id.String(), Token: token, Password: c.PostForm("password")})
	var de *domain.Error
	switch {
	case err == nil:
		c.HTML(http.StatusOK, "reset_done.html", gin.H{"Outcome": "changed"})
	case errors.Is(err, domain.ErrResetExpired):
		c.HTML(http.StatusGone, "reset_done.html", gin.H{"Outcome": "expired"})
	case errors.As(err, &de) && de.Fields["password"] != "":
		c.HTML(http.StatusUnprocessableEntity, "reset.html", gin.H{"User": id.String(), "Token": token,
			"Problem": passwordProblems[de.Fields["password"]]})
	case errors.As(err, &de):
		c.HTML(http.StatusUnprocessableEntity, "reset_done.html", gin.H{"Outcome": "invalid"})
	default:
		s.logger.ErrorContext(c.Request.Context(), "request failed", "error", err)
		c.HTML(http.StatusServiceUnavailable, "reset_done.html", gin.H{"Outcome": "unavailable"})
	}
}

// passwordProblems say in words what a password's slug means.
var passwordProblems = map[string]string{
	"required":           "Type a new password.",
	"too-short":          "This password is too short: at least 8 characters.",
	"too-long":           "This password is too long: at most 64 characters (72 bytes).",
	"too-weak":           "This password is too easy to guess: add words or characters.",
	"invalid-characters": "This password holds characters no keyboard types.",
}
