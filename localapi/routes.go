package localapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kioskd/kioskd/models"
)

func init() { gin.SetMode(gin.ReleaseMode) }

// routes builds the engine. Access is decided per group: public, loopback or
// token (live views), token (technician or admin), admin.
func (s *Server) routes() *gin.Engine {
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	_ = e.SetTrustedProxies(nil) // the client address is the peer's: no proxy headers are trusted
	e.Use(s.recoverer, s.observe, refuseUnknownMethod, securityHeaders, s.clearCacheOnWrite)
	e.NoRoute(func(c *gin.Context) {
		s.writeError(c, models.Errorf(models.ENOTFOUND, "No such page or endpoint: %s", c.Request.URL.Path))
	})
	e.NoMethod(func(c *gin.Context) {
		c.AbortWithStatusJSON(http.StatusMethodNotAllowed, ErrorResponse{Error: ErrorBody{Code: models.EINVALID, Message: "Method not allowed."}})
	})

	// Public.
	e.GET("/healthz", s.handleHealthz)
	e.GET("/readyz", s.handleReadyz)
	e.GET("/", func(c *gin.Context) { c.Redirect(http.StatusFound, "/kiosk") })
	e.GET("/kiosk", s.handlePage("kiosk.html"))
	e.GET("/technician", s.handlePage("technician.html"))
	e.GET("/static/*file", s.handleStatic)
	e.GET("/api/v1/openapi.yaml", s.handleOpenAPI)
	e.POST("/api/v1/auth/login", s.handleLogin)
	e.GET("/api/v1/setup", s.handleSetupState)
	e.POST("/api/v1/setup", s.handleSetup) // loopback only, while no account exists

	// Live views: the kiosk's own screen (loopback) or a logged-in user.
	live := e.Group("", s.authenticate(true))
	live.GET("/kiosk/events", s.handleFeedbackSSE)
	live.GET("/kiosk/preview.mjpeg", s.handlePreview)
	live.POST("/kiosk/claim", s.handleClaim)
	live.GET("/metrics", s.handleMetrics)

	api := e.Group("/api/v1", s.authenticate(false))
	api.POST("/auth/logout", s.handleLogout)
	api.GET("/me", s.handleMe)
	api.PUT("/me/password", s.handleChangePassword)
	api.GET("/status", s.handleStatus)

	api.GET("/users", s.handleListUsers)
	api.POST("/users", s.handleCreateUser)
	api.GET("/users/:id", s.handleGetUser)
	api.PUT("/users/:id", s.handleUpdateUser)
	api.DELETE("/users/:id", s.handleDeleteUser)
	api.GET("/users/:id/faces", s.handleListFaces)
	api.POST("/users/:id/faces", s.handleUploadFace)
	api.POST("/users/:id/faces/capture", s.handleCaptureFace)
	api.DELETE("/users/:id/faces/:face", s.handleDeleteFace)

	api.POST("/identify", s.handleIdentify)

	api.GET("/attendance", s.handleListAttendance)
	api.GET("/attendance/export.xlsx", s.handleExportAttendance)
	api.GET("/attendance/rows", s.handleAttendanceRows)

	api.GET("/import/template.xlsx", s.handleImportTemplate)
	api.POST("/import", s.handleImport)
	api.GET("/import/:job", s.handleImportStatus)
	api.GET("/import/:job/result.xlsx", s.handleImportResult)

	admin := api.Group("", s.requireRole(models.AccountAdmin))
	admin.GET("/accounts", s.handleListAccounts)
	admin.POST("/accounts", s.handleCreateAccount)
	admin.PUT("/accounts/:email", s.handleUpdateAccount)
	admin.DELETE("/accounts/:email", s.handleDeleteAccount)
	admin.POST("/accounts/:email/unlock", s.handleUnlockAccount)
	admin.GET("/config", s.handleGetConfig)
	admin.PUT("/config", s.handlePutConfig)
	return e
}

// recoverer turns a panic in a handler into a logged 500: bad input must
// never crash the daemon.
func (s *Server) recoverer(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.writeError(c, fmt.Errorf("panic: %v", r))
		}
	}()
	c.Next()
}

// observe records request metrics and logs slow or failed requests.
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := c.Writer.Status()
	d := time.Since(start)
	method := methodLabel(c.Request.Method)
	s.metrics.requests.WithLabelValues(method, route, itoa(status)).Inc()
	s.metrics.latency.WithLabelValues(method, route).Observe(d.Seconds())
	// Refusals a client can provoke at will (unknown method, no stream
	// slot) are counted, not logged: a log line each would be a flood.
	if status >= 500 && status != http.StatusNotImplemented && status != http.StatusServiceUnavailable {
		s.logger.Warn("request", slog.String("method", method), slog.String("route", route),
			slog.Int("status", status), slog.Duration("took", d))
	}
}

// knownMethods are the HTTP methods the API answers or refuses with 405;
// any other method name is refused before routing.
var knownMethods = map[string]bool{http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true}

// methodLabel bounds the metrics' method label: a client chooses the method
// name, so an unknown one is "other", never its own time series.
func methodLabel(m string) string {
	if knownMethods[m] {
		return m
	}
	return "other"
}

// refuseUnknownMethod answers 501 to a method no route could use, before
// routing or any other work.
func refuseUnknownMethod(c *gin.Context) {
	if !knownMethods[c.Request.Method] {
		c.AbortWithStatusJSON(http.StatusNotImplemented, ErrorResponse{Error: ErrorBody{Code: models.EINVALID, Message: "Unknown HTTP method."}})
		return
	}
	c.Next()
}

// clearCacheOnWrite drops cached reads after any request that may write.
func (s *Server) clearCacheOnWrite(c *gin.Context) {
	c.Next()
	switch c.Request.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		s.cache.clear()
		s.accounts.clear()
	}
}

// securityHeaders keeps pages self-contained: nothing is fetched from
// outside, no framing.
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
	c.Next()
}
