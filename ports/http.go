// Package ports holds onboard's inbound adapters: the Gin HTTP server.
package ports

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/domain"
)

// MaxBodyBytes caps a request body; a larger one gets 413.
const MaxBodyBytes = 64 << 10

// RequestIDHeader carries a request's id: in, the client's own, kept when
// validClientRequestID; out, the id the server made, its correlation id.
const RequestIDHeader = "X-Request-ID"

// ClientRequestIDHeader echoes the client's X-Request-ID when it was kept.
const ClientRequestIDHeader = "X-Client-Request-ID"

// validClientRequestID: 1 to 64 characters of [A-Za-z0-9._:-], which cannot
// forge a log line or a header, nor carry much.
func validClientRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '.', b == '_', b == ':', b == '-':
		default:
			return false
		}
	}
	return true
}

// IdempotencyKeyHeader makes POST /users safe to retry: the same key with
// the same body answers the same 201 and creates nothing new.
const IdempotencyKeyHeader = "Idempotency-Key"

// idempotentUserID derives the user id of an Idempotency-Key, so that a
// repeated request registers the same user id again, which the registry
// recognizes: the HMAC-SHA256 of the key under the server's secret, cut to
// a UUID of version 8 (custom). Without the secret, knowing a key does not
// tell its user's id.
func idempotentUserID(secret []byte, key string) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(key))
	var id uuid.UUID
	copy(id[:], mac.Sum(nil))
	id[6] = id[6]&0x0f | 0x80 // version 8
	id[8] = id[8]&0x3f | 0x80 // the RFC 9562 variant
	return id.String()
}

// minIdempotencySecret is the shortest secret HTTPConfig accepts.
const minIdempotencySecret = 32

// validIdempotencyKey: 1 to 255 printable ASCII characters.
func validIdempotencyKey(key string) bool {
	if key == "" || len(key) > 255 {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return false
		}
	}
	return true
}

// ReadinessCheck reports whether a dependency can serve now.
type ReadinessCheck func(ctx context.Context) error

// HTTPConfig configures the HTTP API.
type HTTPConfig struct {
	// Ready answers GET /readyz. Required.
	Ready ReadinessCheck
	// Logger gets one line per request. Default: discards.
	Logger *slog.Logger
	// IdempotencySecret keys the user ids derived from Idempotency-Keys: at
	// least 32 random bytes, the same for every replica and restart.
	// Required.
	IdempotencySecret []byte
	// RegistrationLimit bounds POST /users per client address; beyond, 429
	// too-many-requests before any work. The zero value limits nothing.
	RegistrationLimit RateLimit
	// TrustedProxies are the peers whose X-Forwarded-For names the client
	// (its right-most address that is not a trusted proxy). Empty: the
	// peer is the client, whatever the headers say.
	TrustedProxies []netip.Prefix
}

func (c *HTTPConfig) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate returns every problem of the configuration at once.
func (c HTTPConfig) Validate() error {
	var errs []error
	if c.Ready == nil {
		errs = append(errs, errors.New("http: a readiness check is required"))
	}
	if len(c.IdempotencySecret) < minIdempotencySecret {
		errs = append(errs, fmt.Errorf("http: the idempotency secret must be at least %d bytes", minIdempotencySecret))
	}
	if err := c.RegistrationLimit.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("http: registrations: %w", err))
	}
	return errors.Join(errs...)
}

// HTTPServer serves the JSON API.
type HTTPServer struct {
	app    app.Application
	ready  ReadinessCheck
	logger *slog.Logger
	// registrations limits POST /users per client; nil: no limit.
	registrations *clientLimiters
	// idempotencySecret keys the user ids derived from Idempotency-Keys.
	idempotencySecret []byte
}

// NewHandler returns the API's http.Handler.
func NewHandler(application app.Application, cfg HTTPConfig) (http.Handler, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := HTTPServer{app: application, ready: cfg.Ready, logger: cfg.Logger, idempotencySecret: cfg.IdempotencySecret}
	if !cfg.RegistrationLimit.Off() {
		s.registrations = newClientLimiters(cfg.RegistrationLimit, maxLimitedClients)
	}
	gin.SetMode(gin.ReleaseMode)
	router := gin.New()
	// Gin trusts every peer's X-Forwarded-For by default: trust only the
	// configured proxies, and read no other header.
	proxies := make([]string, len(cfg.TrustedProxies))
	for i, p := range cfg.TrustedProxies {
		proxies[i] = p.String()
	}
	if err := router.SetTrustedProxies(proxies); err != nil {
		return nil, fmt.Errorf("http: trusted proxies: %w", err)
	}
	router.ForwardedByClientIP = len(proxies) > 0
	router.RemoteIPHeaders = []string{"X-Forwarded-For"}
	router.HandleMethodNotAllowed = true
	router.Use(s.correlate, s.recover)
	router.NoRoute(func(c *gin.Context) { writeError(c, http.StatusNotFound, "not-found", "no such route", nil) })
	router.NoMethod(func(c *gin.Context) {
		writeError(c, http.StatusMethodNotAllowed, "method-not-allowed", "method not allowed on this route", nil)
	})
	// Answers about users may carry a name, an email or points: no cache
	// may keep them.
	users := router.Group("/users", noStore)
	users.POST("", s.limitRegistrations, s.registerUser)
	getAndHead(users, "/:id", s.getUser)
	getAndHead(users, "/:id/points", s.getPoints)
	getAndHead(router, "/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	getAndHead(router, "/readyz", s.readyz)
	return nosniff(router), nil
}

// getAndHead routes GET and HEAD to the same handlers: net/http sends a
// HEAD's status and headers, Content-Length included, and drops its body.
func getAndHead(routes gin.IRoutes, path string, handlers ...gin.HandlerFunc) {
	routes.GET(path, handlers...)
	routes.HEAD(path, handlers...)
}

// nosniff tells browsers never to guess another content type than the one
// sent, on every answer: the router's own 404, 405 and redirects included.
func nosniff(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

func noStore(c *gin.Context) { c.Header("Cache-Control", "no-store") }

// limitRegistrations answers 429 with Retry-After to a client over its
// registration limit, before the body is read or anything is hashed.
func (s HTTPServer) limitRegistrations(c *gin.Context) {
	if s.registrations == nil {
		return
	}
	wait := s.registrations.reserve(clientKey(c.ClientIP()), time.Now())
	if wait > 0 {
		c.Header("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		writeError(c, http.StatusTooManyRequests, "too-many-requests",
			"too many registrations from this address, try again later", nil)
	}
}

// correlate gives the request an id of the server's own, its correlation
// id in the logs and the events, and keeps a valid X-Request-ID of the
// client beside it; it echoes both, and logs the request.
func (s HTTPServer) correlate(c *gin.Context) {
	id := uuid.NewString()
	ctx := app.WithCorrelationID(c.Request.Context(), id)
	c.Header(RequestIDHeader, id)
	if sent := c.Request.Header.Values(RequestIDHeader); len(sent) == 1 && validClientRequestID(sent[0]) {
		ctx = app.WithClientRequestID(ctx, sent[0])
		c.Header(ClientRequestIDHeader, sent[0])
	}
	c.Request = c.Request.WithContext(ctx)
	start := time.Now()
	c.Next()
	s.logger.InfoContext(ctx, "http request", "method", c.Request.Method, "path", c.FullPath(),
		"status", c.Writer.Status(), "duration", time.Since(start))
}

// recover turns a panic into a 500 without internals.
func (s HTTPServer) recover(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			s.logger.ErrorContext(c.Request.Context(), "panic in http handler", "panic", r)
			writeError(c, http.StatusInternalServerError, "internal", "internal error", nil)
		}
	}()
	c.Next()
}

type registerUserRequest struct {
	Name     *string `json:"name"`
	Email    *string `json:"email"`
	Password *string `json:"password"`
}

type userResponse struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Email        string    `json:"email"`
	RegisteredAt time.Time `json:"registered_at"`
}

func (s HTTPServer) registerUser(c *gin.Context) {
	if mediaType, _, err := mime.ParseMediaType(c.GetHeader("Content-Type")); err != nil || mediaType != "application/json" {
		writeError(c, http.StatusUnsupportedMediaType, "unsupported-media-type", "send the body as application/json", nil)
		return
	}
	var req registerUserRequest
	if !decodeJSON(c, &req) {
		return
	}
	missing := map[string]string{}
	for field, value := range map[string]*string{"name": req.Name, "email": req.Email, "password": req.Password} {
		if value == nil {
			missing[field] = "required"
		}
	}
	if len(missing) > 0 {
		s.fail(c, &domain.Error{Kind: domain.KindInvalid, Code: "validation-failed", Message: "some fields are invalid", Fields: missing})
		return
	}
	cmd := &command.RegisterUser{
		UserID:   uuid.Must(uuid.NewV7()).String(),
		Name:     *req.Name,
		Email:    *req.Email,
		Password: *req.Password,
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
	user, err := s.app.Commands.RegisterUser.Register(c.Request.Context(), cmd)
	if withKey && errors.Is(err, domain.ErrUserExists) { // the key's user has another email
		err = domain.ErrIdempotencyKeyReused
	}
	if errors.Is(err, command.ErrOverloaded) {
		c.Header("Retry-After", "1")
		writeError(c, http.StatusServiceUnavailable, "overloaded", "too many registrations at once, try again shortly", nil)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Location", "/users/"+user.ID())
	c.JSON(http.StatusCreated, toUserResponse(user))
}

// checkKeys rejects an object with a key that is not, byte for byte, the
// JSON name of one of into's fields, or a key named twice. encoding/json
// matches keys case-insensitively with Unicode folding ("PASSWORD",
// "paſſword" with U+017F all fill Password) and keeps the last value, so
// one field could otherwise arrive twice under two spellings. Malformed
// JSON is left for the decoder to report.
func checkKeys(body []byte, into any) error {
	names := jsonNames(into)
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := tok.(string)
		switch {
		case !names[key]:
			return fmt.Errorf("unknown key %q", key)
		case seen[key]:
			return fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}

// jsonNames returns the JSON names of the fields of the struct into points
// to (flat structs only: the request bodies have no embedded fields).
func jsonNames(into any) map[string]bool {
	names := map[string]bool{}
	t := reflect.TypeOf(into)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return names
	}
	for field := range t.Fields() {
		tag := field.Tag.Get("json")
		if !field.IsExported() || tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = field.Name
		}
		names[name] = true
	}
	return names
}

// decodeJSON reads exactly one JSON object from a size-capped body: valid
// UTF-8, every key exactly one of into's and at most once, nothing after it.
func decodeJSON(c *gin.Context, into any) bool {
	if c.Request.ContentLength > MaxBodyBytes {
		writeError(c, http.StatusRequestEntityTooLarge, "body-too-large", "the body is larger than 64 KiB", nil)
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes))
	if err == nil && !utf8.Valid(body) {
		err = errors.New("the body is not UTF-8")
	}
	if err == nil {
		err = checkKeys(body, into)
	}
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		err = dec.Decode(into)
		if err == nil {
			if _, extra := dec.Token(); extra != io.EOF {
				err = errors.New("trailing data after the JSON object")
			}
		}
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(c, http.StatusRequestEntityTooLarge, "body-too-large", "the body is larger than 64 KiB", nil)
		return false
	case err != nil:
		writeError(c, http.StatusBadRequest, "malformed-json", "the body is not a valid JSON object of the expected shape", nil)
		return false
	}
	return true
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
	c.JSON(http.StatusOK, toUserResponse(user))
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

func (s HTTPServer) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		s.logger.WarnContext(ctx, "not ready", "error", err)
		writeError(c, http.StatusServiceUnavailable, "not-ready", "a dependency is unavailable", nil)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

func userID(c *gin.Context) (string, bool) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		writeError(c, http.StatusBadRequest, "invalid-id", "the user id is not a UUID", nil)
		return "", false
	}
	return id.String(), true
}

func toUserResponse(u *domain.User) userResponse {
	return userResponse{ID: u.ID(), Name: u.Name(), Email: u.Email().String(), RegisteredAt: u.RegisteredAt()}
}

// fail maps an error to its status: domain errors by kind, anything else is
// a dependency failure, logged here and answered 503 without its details.
func (s HTTPServer) fail(c *gin.Context, err error) {
	var de *domain.Error
	if errors.As(err, &de) {
		status := map[domain.Kind]int{
			domain.KindInvalid:  http.StatusUnprocessableEntity,
			domain.KindConflict: http.StatusConflict,
			domain.KindNotFound: http.StatusNotFound,
		}[de.Kind]
		if status == 0 {
			status = http.StatusBadRequest
		}
		writeError(c, status, de.Code, de.Message, de.Fields)
		return
	}
	s.logger.ErrorContext(c.Request.Context(), "request failed", "error", err)
	writeError(c, http.StatusServiceUnavailable, "unavailable", "a dependency is unavailable, try again later", nil)
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

func writeError(c *gin.Context, status int, code, message string, fields map[string]string) {
	c.AbortWithStatusJSON(status, errorBody{Error: errorDetail{Code: code, Message: message, Fields: fields}})
}
