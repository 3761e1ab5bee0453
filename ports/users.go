package ports

import (
	"errors"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/app/query"
	"github.com/onboard/onboard/domain"
)

type registerUserRequest struct {
	Name     *string `json:"name"`
	Email    *string `json:"email"`
	Password *string `json:"password"`
	Locale   string  `json:"locale"`
}

type userResponse struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"email_verified"`
	Locale        string    `json:"locale"`
	RegisteredAt  time.Time `json:"registered_at"`
	Version       int       `json:"version"`
}

// requireJSON answers 415 to a body that is not application/json.
func requireJSON(c *gin.Context) bool {
	if mediaType, _, err := mime.ParseMediaType(c.GetHeader("Content-Type")); err != nil || mediaType != "application/json" {
		writeError(c, http.StatusUnsupportedMediaType, "unsupported-media-type", "send the body as application/json", nil)
		return false
	}
	return true
}

func (s HTTPServer) registerUser(c *gin.Context) {
	if !requireJSON(c) {
		return
	}
	var req registerUserRequest
	if !decodeJSON(c, &req) {
		return
	}
	if missing := missingFields(map[string]*string{"name": req.Name, "email": req.Email, "password": req.Password}); len(missing) > 0 {
		s.fail(c, &domain.Error{Kind: domain.KindInvalid, Code: "validation-failed", Message: "some fields are invalid", Fields: missing})
		return
	}
	cmd := &command.RegisterUser{
		UserID:   uuid.Must(uuid.NewV7()).String(),
		Name:     *req.Name,
		Email:    *req.Email,
		Password: *req.Password,
		Locale:   req.Locale,
		Client:   clientOf(c),
	}
	key, withKey := c.Request.Header[IdempotencyKeyHeader]
	if withKey {
		if len(key) != 1 || !validIdempotencyKey(key[0]) {
			writeError(c, http.StatusBadRequest, "invalid-idempotency-key",
				"send one Idempotency-Key of 1 to 255 printable ASCII characters", nil)
			return
		}
		cmd.UserID = idempotentUserID(s.idempotencySecret, key[0])
	}
	// The registration proved the password: a session comes with it, so
	// that the client can read the user it made.
	user, session, err := s.app.Commands.RegisterUser.RegisterSignedIn(c.Request.Context(), cmd)
	if withKey && errors.Is(err, domain.ErrUserExists) { // the key's user has another email
		err = domain.ErrIdempotencyKeyReused
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	markRepeat(c, user)
	c.Header("Location", "/users/"+user.ID())
	u := query.UserOf(user)
	c.Header("ETag", etag(u.Version))
	c.JSON(http.StatusCreated, registeredResponse{userResponse: responseOf(u),
		Session: newSessionResponse{Token: session.Token, ExpiresAt: session.ExpiresAt}})
}

// registeredResponse is a new user with the session its registration opened.
type registeredResponse struct {
	userResponse
	Session newSessionResponse `json:"session"`
}

type newSessionResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s HTTPServer) getUser(c *gin.Context) {
	id, ok := userID(c)
	if !ok {
		return
	}
	user, err := s.app.Queries.UserByID.Handle(c.Request.Context(), id)
	if err != nil {
		s.fail(c, err)
		return
	}
	writeUser(c, http.StatusOK, user)
}

type pointsResponse struct {
	UserID  string               `json:"user_id"`
	Balance int                  `json:"balance"`
	Entries []domain.PointsEntry `json:"entries"`
}

func (s HTTPServer) getPoints(c *gin.Context) {
	id, ok := userID(c)
	if !ok {
		return
	}
	points, err := s.app.Queries.PointsBalance.Handle(c.Request.Context(), id)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, pointsResponse{UserID: points.UserID, Balance: points.Balance, Entries: points.Entries})
}

func userID(c *gin.Context) (string, bool) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		writeError(c, http.StatusBadRequest, "invalid-id", "the user id is not a UUID", nil)
		return "", false
	}
	return id.String(), true
}

// writeUser answers with the user and its version as the ETag, which a
// change sends back in If-Match.
func writeUser(c *gin.Context, status int, u query.User) {
	c.Header("ETag", etag(u.Version))
	c.JSON(status, responseOf(u))
}

func responseOf(u query.User) userResponse {
	return userResponse{ID: u.ID, Name: u.Name, Email: u.Email, EmailVerified: u.EmailVerified,
		Locale: u.Locale, RegisteredAt: u.RegisteredAt, Version: u.Version}
}

func etag(version int) string { return `"` + strconv.Itoa(version) + `"` }
