package localapi

import (
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// apiMetrics are the API's Prometheus metrics (prefix kioskd_api_).
type apiMetrics struct {
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	logins     *prometheus.CounterVec
	enrolments *prometheus.CounterVec
	identify   *prometheus.CounterVec
	importRows *prometheus.CounterVec
	sseClients prometheus.Gauge
}

func newAPIMetrics(reg prometheus.Registerer) *apiMetrics {
	m := &apiMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kioskd_api_requests_total",
			Help: "HTTP requests by method, route and status."}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kioskd_api_request_duration_seconds",
			Help:    "HTTP request latency by method and route.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 10}}, []string{"method", "route"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kioskd_api_logins_total",
			Help: "Login attempts by result (ok, failed, throttled)."}, []string{"result"}),
		enrolments: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kioskd_api_enrolments_total",
			Help: "Single-face enrolments by result."}, []string{"result"}),
		identify: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kioskd_api_identify_total",
			Help: "Identify calls by result."}, []string{"result"}),
		importRows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kioskd_api_import_rows_total",
			Help: "Bulk import rows by status."}, []string{"status"}),
		sseClients: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kioskd_api_feedback_clients",
			Help: "Open kiosk-screen feedback streams."}),
	}
	reg.MustRegister(m.requests, m.latency, m.logins, m.enrolments, m.identify, m.importRows, m.sseClients)
	return m
}

func (s *Server) handleMetrics(c *gin.Context) {
	promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}).ServeHTTP(c.Writer, c.Request)
}
