package localapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kioskd/kioskd/models/password"
)

// Server is the local API: New (no I/O) -> Open (listens) -> Close.
type Server struct {
	cfg    Config
	deps   Deps
	logger *slog.Logger
	now    func() time.Time

	engine   *gin.Engine
	http     *http.Server
	listener net.Listener

	tokens   *tokenSigner
	throttle *loginThrottle
	hashSem  chan struct{} // bounds concurrent password hashing
	dummy    string        // a device-format hash no password matches: its cost class is always spent
	hash     hashWork      // the hashing a login does (auth.go)

	classMu   sync.Mutex
	classes   map[string]string // password cost class -> a hash of it (costClasses)
	classesAt time.Time
	streams   chan struct{} // a slot per open live stream
	claims    claimLimiter  // keypad IDs (idclaim.go)
	jobs      *jobRegistry
	cache     *respCache
	accounts  *accountCache
	metrics   *apiMetrics
	registry  *prometheus.Registry
	started   time.Time

	ctx    context.Context // cancelled by Close: stops streams and jobs
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewServer returns a server for cfg and deps; it does no I/O. The caller
// validates cfg (Open refuses an invalid one).
func NewServer(cfg Config, deps Deps, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, deps: deps, logger: logger, now: deps.Now}
	if s.now == nil {
		s.now = time.Now
	}
	s.hashSem = make(chan struct{}, max(1, runtime.NumCPU()))
	s.hash = hashWork{verify: password.VerifyPassword, spend: password.SpendPasswordWork}
	s.throttle = newLoginThrottle(cfg, s.now)
	s.streams = make(chan struct{}, max(1, cfg.MaxStreams))
	s.jobs = newJobRegistry(cfg.MaxJobs)
	s.cache = newRespCache(cfg.ReadCacheTTL, time.Now)
	s.accounts = newAccountCache(s.now)
	s.registry = deps.Registry
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
		s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	s.metrics = newAPIMetrics(s.registry)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.engine = s.routes()
	return s
}

// Handler returns the server's HTTP handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.engine }

// Open loads (or creates on first run) the token secret and starts listening
// on cfg.Addr.
func (s *Server) Open() error {
	if err := s.cfg.Validate(); err != nil {
		return fmt.Errorf("localapi config: %w", err)
	}
	if s.deps.Store == nil || s.deps.Enroller == nil || s.deps.Encoder == nil || s.deps.Matcher == nil || s.deps.Gallery == nil {
		return errors.New("localapi: Store, Enroller, Encoder, Matcher and Gallery are required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	secret, err := loadTokenSecret(ctx, s.deps.Store)
	if err != nil {
		return fmt.Errorf("token secret: %w", err)
	}
	s.tokens = newTokenSigner(secret, s.cfg.TokenTTL, s.now, s.deps.Store)
	if err := s.tokens.load(ctx); err != nil {
		return err
	}
	if s.dummy, err = password.HashPassword("unknown-account-" + strconv.FormatInt(time.Now().UnixNano(), 36)); err != nil {
		return fmt.Errorf("dummy hash: %w", err)
	}
	if s.cfg.TempDir != "" {
		if err := os.MkdirAll(s.cfg.TempDir, 0o700); err != nil {
			return fmt.Errorf("temp dir: %w", err)
		}
	}
	if n := removeStaleImportDirs(s.cfg.TempDir, s.logger); n > 0 {
		s.logger.Info("removed the temp folders of interrupted imports", slog.Int("folders", n))
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Addr, err)
	}
	s.listener = ln
	s.started = s.now()
	s.http = &http.Server{
		Handler:           s.engine,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("serve", slog.Any("err", err))
		}
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.sweepLoop()
	}()
	s.logger.Info("local API listening", slog.String("url", s.URL()))
	return nil
}

// URL returns the base URL the server listens on, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string {
	if s.listener == nil {
		return ""
	}
	addr := s.listener.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

// Close stops accepting requests, ends live streams and running imports, and
// waits for handlers to finish within cfg.ShutdownTimeout.
func (s *Server) Close() error {
	s.cancel() // ends SSE and MJPEG streams, which would hold Shutdown up
	var err error
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		if err = s.http.Shutdown(ctx); err != nil {
			err = fmt.Errorf("shutdown: %w", err)
			s.http.Close()
		}
	}
	s.jobs.wait()
	s.wg.Wait()
	s.jobs.removeAll()
	return err
}

// sweepLoop drops expired throttle entries, revoked tokens and old jobs.
func (s *Server) sweepLoop() {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.throttle.sweep()
			s.tokens.sweep()
			s.jobs.sweep(s.now(), time.Hour)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
