package localapi

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// openAPIDoc is a copy of docs/openapi.yaml (go generate refreshes it; a
// test checks the two are equal).
//
//go:embed openapi.yaml
var openAPIDoc []byte

// OpenAPI returns the API's OpenAPI 3 document.
func OpenAPI() []byte { return openAPIDoc }

func (s *Server) handleOpenAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/yaml", openAPIDoc)
}
