package ports

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/onboard/onboard/domain"
)

// Keys of what a request's handlers tell the middleware that observes the
// request (HTTPConfig.Observe): the error code of its answer, and whether a
// 201 to POST /users repeats an earlier registration.
const (
	ErrorCodeKey          = "onboard.error_code"
	RegistrationRepeatKey = "onboard.registration_repeat"
)

// CodeOverloaded is the error code of a 503 for want of a turn to hash.
const CodeOverloaded = "overloaded"

// markRepeat tells the observers that a registration answered 201 repeats
// an earlier one: the user it returns was loaded, not created now.
func markRepeat(c *gin.Context, user *domain.User) {
	if len(user.PendingEvents()) == 0 {
		c.Set(RegistrationRepeatKey, true)
	}
}

// routeMetrics serves GET /metrics with handler, when there is one.
func routeMetrics(router *gin.Engine, handler http.Handler) {
	if handler != nil {
		getAndHead(router, "/metrics", gin.WrapH(handler))
	}
}
