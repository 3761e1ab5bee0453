package ports

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/onboard/onboard/api"
)

// OpenAPIContentType is the media type GET /openapi.yaml answers with
// (RFC 9512), which browsers and OpenAPI tools read as YAML.
const OpenAPIContentType = "application/yaml"

// serveOpenAPI answers with the API's contract, api/openapi.yaml.
func serveOpenAPI() gin.HandlerFunc {
	contract := []byte(api.OpenAPI())
	return func(c *gin.Context) { c.Data(http.StatusOK, OpenAPIContentType, contract) }
}

// apiHandler is the API's http.Handler; it keeps the Gin engine, whose
// route table the tests compare with the contract.
type apiHandler struct {
	http.Handler
	engine *gin.Engine
}
