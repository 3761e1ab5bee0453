package ports

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// Routes lists the routes of a handler NewHandler returned.
func Routes(h http.Handler) gin.RoutesInfo { return h.(apiHandler).engine.Routes() }
