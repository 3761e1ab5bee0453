// Package ports holds onboard's inbound adapters: the Gin HTTP server.
package ports

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/onboard/onboard/app"
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
	// PasswordLimit bounds, per client address, the requests that hash or
	// compare a password (registration, sign-in, email change, password
	// reset): beyond, 429 too-many-requests before any work. The zero
	// value limits nothing.
	PasswordLimit RateLimit
	// AdminToken opens GET /users?email= to operators who send it as a
	// bearer token. Empty: the route is off.
	AdminToken string
	// TrustedProxies are the peers whose X-Forwarded-For names the client
	// (its right-most address that is not a trusted proxy). Empty: the
	// peer is the client, whatever the headers say.
	TrustedProxies []netip.Prefix
	// Observe runs first on every request, in order: the middleware of
	// its span and of its series (see internal/telemetry). A handler tells
	// them what only it knows under ErrorCodeKey and RegistrationRepeatKey.
	Observe []gin.HandlerFunc
	// MetricsHandler, when set, answers GET /metrics.
	MetricsHandler http.Handler
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
	if err := c.PasswordLimit.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("http: registrations: %w", err))
	}
	return errors.Join(errs...)
}

// HTTPServer serves the JSON API.
type HTTPServer struct {
	app    app.Application
	ready  ReadinessCheck
	logger *slog.Logger
	// passwords limits per client the requests that hash or compare a
	// password; nil: no limit.
	passwords *clientLimiters
	// idempotencySecret keys the user ids derived from Idempotency-Keys.
	idempotencySecret []byte
	// adminTokenDigest is the SHA-256 of the token that opens the
	// operators' routes; nil: they are off.
	adminTokenDigest []byte
}

// NewHandler returns the API's http.Handler.
func NewHandler(application app.Application, cfg HTTPConfig) (http.Handler, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := HTTPServer{app: application, ready: cfg.Ready, logger: cfg.Logger, idempotencySecret: cfg.IdempotencySecret,
		adminTokenDigest: digestOf(cfg.AdminToken)}
	if !cfg.PasswordLimit.Off() {
		s.passwords = newClientLimiters(cfg.PasswordLimit, maxLimitedClients)
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
	router.Use(cfg.Observe...)
	router.Use(s.correlate, s.recover)
	router.NoRoute(func(c *gin.Context) { writeError(c, http.StatusNotFound, "not-found", "no such route", nil) })
	router.NoMethod(func(c *gin.Context) {
		writeError(c, http.StatusMethodNotAllowed, "method-not-allowed", "method not allowed on this route", nil)
	})
	// Answers about users may carry a name, an email or points: no cache
	// may keep them.
	users := router.Group("/users", noStore)
	users.POST("", s.limitPasswords, s.registerUser)
	getAndHead(users, "", s.findUserByEmail)
	getAndHead(users, "/:id", s.authorizeUser, s.getUser)
	getAndHead(users, "/:id/points", s.authorizeUser, s.getPoints)
	getAndHead(users, "/:id/export", s.authorizeUser, s.exportUser)
	users.DELETE("/:id", s.authorizeUser, s.limitPasswords, s.eraseUser)
	users.POST("/:id/email-verification", s.verifyEmail)
	users.POST("/:id/email-verification/resend", s.authorizeUser, s.resendVerification)
	users.PUT("/:id/email", s.authorizeUser, s.limitPasswords, s.changeEmail)
	sessions := router.Group("/sessions", noStore)
	sessions.POST("", s.limitPasswords, s.signIn)
	sessions.DELETE("/current", s.signOut)
	resets := router.Group("/password-resets", noStore)
	resets.POST("", s.requestPasswordReset)
	resets.POST("/confirm", s.limitPasswords, s.confirmPasswordReset)
	router.SetHTMLTemplate(pages)
	verify := router.Group("/verify-email", pageHeaders)
	getAndHead(verify, "", s.verifyPage)
	verify.POST("", s.verifyFromPage)
	reset := router.Group("/reset-password", pageHeaders)
	getAndHead(reset, "", s.resetPage)
	reset.POST("", s.limitPasswords, s.resetFromPage)
	getAndHead(router, "/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	getAndHead(router, "/readyz", s.readyz)
	routeMetrics(router, cfg.MetricsHandler)
	getAndHead(router, "/openapi.yaml", serveOpenAPI())
	return apiHandler{Handler: nosniff(router), engine: router}, nil
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

// limitPasswords answers 429 with Retry-After to a client over its
// allowance of password hashes and comparisons, before the body is read or
// anything is hashed.
func (s HTTPServer) limitPasswords(c *gin.Context) {
	if s.passwords == nil {
		return
	}
	wait := s.passwords.reserve(clientKey(c.ClientIP()), time.Now())
	if wait > 0 {
		c.Header("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		writeError(c, http.StatusTooManyRequests, "too-many-requests",
			"too many password requests from this address, try again later", nil)
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
