package ports

import (
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/domain"
)

// fail maps an error to its status: domain errors by kind, anything else is
// a dependency failure, logged here and answered 503 without its details.
func (s HTTPServer) fail(c *gin.Context, err error) {
	if de, ok := isUnauthenticated(err); ok {
		unauthenticated(c, de)
		return
	}
	var de *domain.Error
	if errors.As(err, &de) && de.Kind == domain.KindCorrupt {
		// The error names the user by its id alone.
		s.logger.ErrorContext(c.Request.Context(), "stored user data is corrupt", "error", err)
		writeError(c, http.StatusInternalServerError, de.Code, de.Message, nil)
		return
	}
	if errors.As(err, &de) {
		status := map[domain.Kind]int{
			domain.KindInvalid:   http.StatusUnprocessableEntity,
			domain.KindConflict:  http.StatusConflict,
			domain.KindNotFound:  http.StatusNotFound,
			domain.KindGone:      http.StatusGone,
			domain.KindForbidden: http.StatusForbidden,
			domain.KindStale:     http.StatusPreconditionFailed,
			domain.KindTooMany:   http.StatusTooManyRequests,
		}[de.Kind]
		if status == 0 {
			status = http.StatusBadRequest
		}
		if de.RetryAfter > 0 {
			c.Header("Retry-After", strconv.Itoa(int(math.Ceil(de.RetryAfter.Seconds()))))
		}
		writeError(c, status, de.Code, de.Message, de.Fields)
		return
	}
	if errors.Is(err, command.ErrOverloaded) {
		c.Header("Retry-After", "1")
		writeError(c, http.StatusServiceUnavailable, CodeOverloaded, "too many requests at once, try again shortly", nil)
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
	c.Set(ErrorCodeKey, code) // for the metrics
	// Pure: a message's "<token>" reads as written, not as "\u003ctoken\u003e".
	c.AbortWithStatusPureJSON(status, errorBody{Error: errorDetail{Code: code, Message: message, Fields: fields}})
}
