package ports

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/onboard/onboard/domain"
)

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
