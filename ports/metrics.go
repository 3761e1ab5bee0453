package ports

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/onboard/onboard/domain"
)

// HTTPMetrics are the API's series. Routes are labelled by their template
// (/users/:id), never by a path, so that ids never become labels.
type HTTPMetrics struct {
	requests      *prometheus.CounterVec   // route, method, status
	durations     *prometheus.HistogramVec // route, method
	registrations *prometheus.CounterVec   // outcome
	overloaded    *prometheus.CounterVec   // route, method
}

// UnmatchedRoute is the route label of a request no route matched (404,
// 405).
const UnmatchedRoute = "unmatched"

// Registration outcomes, the outcome label of onboard_registrations_total.
const (
	RegistrationCreated  = "created"
	RegistrationRepeated = "idempotent-repeat"
	RegistrationTaken    = "email-taken"
	RegistrationInvalid  = "invalid"
	RegistrationKeyReuse = "idempotency-key-reused"
	RegistrationLimited  = "rate-limited"
	RegistrationOverload = "overloaded"
	RegistrationFailed   = "error"
)

// NewHTTPMetrics registers the API's series on reg.
func NewHTTPMetrics(reg prometheus.Registerer) (*HTTPMetrics, error) {
	m := &HTTPMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onboard_http_requests_total",
			Help: "HTTP requests answered, by route template (unmatched: no route), method and status.",
		}, []string{"route", "method", "status"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "onboard_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route template and method.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15},
		}, []string{"route", "method"}),
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onboard_registrations_total",
			Help: "Answers to POST /users by outcome: created, idempotent-repeat, email-taken, invalid, " +
				"idempotency-key-reused, rate-limited, overloaded, error.",
		}, []string{"outcome"}),
		overloaded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onboard_http_overloaded_total",
			Help: "Requests answered 503 overloaded (no turn to hash a password in time), by route template and method.",
		}, []string{"route", "method"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.durations, m.registrations, m.overloaded} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, outcome := range []string{RegistrationCreated, RegistrationRepeated, RegistrationTaken, RegistrationInvalid,
		RegistrationKeyReuse, RegistrationLimited, RegistrationOverload, RegistrationFailed} {
		m.registrations.WithLabelValues(outcome)
	}
	m.overloaded.WithLabelValues("/users", http.MethodPost)
	return m, nil
}

// Keys of what a request's handlers tell the metrics.
const (
	errorCodeKey          = "onboard.error_code"
	registrationRepeatKey = "onboard.registration_repeat"
)

// observe counts and times every request, after the others have answered
// it; a nil *HTTPMetrics does nothing.
func (m *HTTPMetrics) observe(c *gin.Context) {
	if m == nil {
		return
	}
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = UnmatchedRoute
	}
	method := methodLabel(c.Request.Method)
	status := c.Writer.Status()
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.durations.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
	code := c.GetString(errorCodeKey)
	if code == codeOverloaded {
		m.overloaded.WithLabelValues(route, method).Inc()
	}
	if route == "/users" && method == http.MethodPost {
		m.registrations.WithLabelValues(registrationOutcome(status, code, c.GetBool(registrationRepeatKey))).Inc()
	}
}

// codeOverloaded is the error code of a 503 for want of a turn to hash.
const codeOverloaded = "overloaded"

// registrationOutcome names the answer to a POST /users.
func registrationOutcome(status int, code string, repeat bool) string {
	switch {
	case status == http.StatusCreated && repeat:
		return RegistrationRepeated
	case status == http.StatusCreated:
		return RegistrationCreated
	case code == domain.ErrEmailTaken.Code:
		return RegistrationTaken
	case code == domain.ErrIdempotencyKeyReused.Code:
		return RegistrationKeyReuse
	case status == http.StatusTooManyRequests:
		return RegistrationLimited
	case code == codeOverloaded:
		return RegistrationOverload
	case status >= 400 && status < 500:
		return RegistrationInvalid
	}
	return RegistrationFailed
}

// markRepeat tells the metrics that a registration answered 201 repeats
// an earlier one: the user it returns was loaded, not created now.
func markRepeat(c *gin.Context, user *domain.User) {
	if len(user.PendingEvents()) == 0 {
		c.Set(registrationRepeatKey, true)
	}
}

// methodLabel keeps the method label to the methods HTTP defines, so that
// a client cannot make a label of its own.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}

// routeMetrics serves GET /metrics with handler, when there is one.
func routeMetrics(router *gin.Engine, handler http.Handler) {
	if handler != nil {
		getAndHead(router, "/metrics", gin.WrapH(handler))
	}
}
