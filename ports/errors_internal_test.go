package ports

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"

	"github.com/onboard/onboard/domain"
)

// Stored data that does not decrypt is answered 500 corrupt-data, and
// logged with the error, which names the user by its id alone.
func TestFail_CorruptDataAnswers500(t *testing.T) {
	var logs bytes.Buffer
	s := HTTPServer{logger: slog.New(slog.NewTextHandler(&logs, nil))}
	rec := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(rec)
	c.Request = httptest.NewRequest(http.MethodGet, "/users/u-1", nil)

	s.fail(c, fmt.Errorf("user u-1: the name does not open: %w", domain.ErrCorruptData))

	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.Contains(t, rec.Body.String(), `"code":"corrupt-data"`)
	assert.Contains(t, logs.String(), "user u-1")
}
