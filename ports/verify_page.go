package ports

import (
	"embed"
	"errors"
	"html/template"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/domain"
)

//go:embed templates/*.html
var templates embed.FS

// pageHeaders keep the page (whose address holds a token) out of caches,
// referrers and frames, and let it run no script.
func pageHeaders(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Header("Referrer-Policy", "no-referrer")
	c.Header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
}

// The pages of the email links: verification and password reset.
var pages = template.Must(template.ParseFS(templates, "templates/*.html"))

// verifyPage is what the email's link opens: a page with one button that
// POSTs the token. Mail scanners follow links, so a GET verifies nothing.
func (s HTTPServer) verifyPage(c *gin.Context) {
	c.HTML(http.StatusOK, "verify.html", gin.H{"User": c.Query("user"), "Token": c.Query("token")})
}

// verifyFromPage is the button's POST: it verifies and shows the outcome.
func (s HTTPServer) verifyFromPage(c *gin.Context) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes)
	id, err := uuid.Parse(c.PostForm("user"))
	if err != nil {
		c.HTML(http.StatusUnprocessableEntity, "verified.html", gin.H{"Outcome": "invalid"})
		return
	}
	_, err = s.app.Commands.VerifyEmail.Handle(c.Request.Context(),
		command.VerifyEmail{UserID: id.String(), Token: c.PostForm("token")})
	var de *domain.Error
	switch {
	case err == nil:
		c.HTML(http.StatusOK, "verified.html", gin.H{"Outcome": "verified"})
	case errors.Is(err, domain.ErrTokenExpired):
		c.HTML(http.StatusGone, "verified.html", gin.H{"Outcome": "expired", "User": id.String()})
	case errors.As(err, &de):
		c.HTML(http.StatusUnprocessableEntity, "verified.html", gin.H{"Outcome": "invalid"})
	default:
		s.logger.ErrorContext(c.Request.Context(), "request failed", "error", err)
		c.HTML(http.StatusServiceUnavailable, "verified.html", gin.H{"Outcome": "unavailable"})
	}
}
