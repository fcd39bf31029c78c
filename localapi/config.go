package localapi

import (
	"fmt"
	"net"
	"time"
)

// Config configures the local API. DefaultConfig gives a working one.
type Config struct {
	// Addr is the listen address; ":0" picks a free port (see Server.URL).
	Addr string
	// TokenTTL is how long a login token stays valid.
	TokenTTL time.Duration
	// MaxUploadBytes bounds a whole request body (spreadsheet + photos zip).
	MaxUploadBytes int64
	// MaxImageBytes bounds one image (a face upload, identify, one photo in
	// the zip).
	MaxImageBytes int64
	// MaxImportRows bounds the data rows of an import spreadsheet.
	MaxImportRows int
	// MaxZipEntries bounds the entries of the photos zip (and of the .xlsx).
	MaxZipEntries int
	// MaxUnzipBytes bounds the total uncompressed size of the photos zip.
	MaxUnzipBytes int64
	// MaxSheetBytes bounds the total uncompressed size of the import .xlsx
	// (excelize's UnzipSizeLimit): a sheet of max_import_rows rows unpacks to
	// a few MB, and the parsed workbook takes several times this in memory.
	MaxSheetBytes int64
	// MaxImagePixels bounds width x height of an image (a 16-bit PNG's
	// pixels count twice); the encoder enforces its own limit too, this one
	// is checked on headers before encoding. The default takes a phone's
	// photo and keeps kioskd's memory target (docs/benchmarks.md, "Abuse
	// campaign").
	MaxImagePixels int
	// DuplicateDistance: a new face within this distance of another user's
	// face may be that user (dlib's same-person convention is 0.6): the
	// technician is shown that user and confirms "different person". Only
	// under the gallery's calibrated outright distance is it refused.
	DuplicateDistance float64
	// SameFaceDistance: a face this close to one the user already has is the
	// same image again (re-saved or re-sent); it is not stored twice, so
	// re-imports stay idempotent. The encoder is deterministic (identical
	// bytes give distance 0); two different photos of one person are
	// usually 0.2-0.5 apart, a downscaled copy of one photo under 0.1.
	SameFaceDistance float64
	// CaptureTimeout bounds how long a capture from the camera waits for a
	// gated frame.
	CaptureTimeout time.Duration
	// LoginMaxFailures failed logins of one account from one client address
	// (LoginMaxFailuresPerAddr from one address whatever the accounts) are
	// free; each further failure makes that pair (address) wait a delay
	// doubling from 1 s up to LoginMaxDelay before its next attempt. A key
	// is forgotten after LoginWindow without failures. Nobody is locked out
	// by someone else's failures.
	LoginMaxFailures        int
	LoginMaxFailuresPerAddr int
	LoginWindow             time.Duration
	LoginMaxDelay           time.Duration
	// TrustLoopback lets clients on the loopback interface (the kiosk's own
	// screen) see the live preview, feedback and /metrics without a token.
	TrustLoopback bool
	// AllowedHosts are names besides localhost, 127.0.0.1 and ::1 that a
	// loopback client's Host header may carry to be trusted (anti DNS
	// rebinding); names only, no ports.
	AllowedHosts []string
	// MaxStreams bounds the open live streams (feedback events and camera
	// previews together); one more is refused with 503.
	MaxStreams int
	// StreamRecheck is how often a live stream opened with a token checks
	// that its session still stands, ending it after a logout, an expiry or
	// the account's deletion.
	StreamRecheck time.Duration
	// ImportWorkers sizes the bulk-import encoding pool; 0 means one per core.
	ImportWorkers int
	// ImportBatch is how many rows one bbolt write transaction carries.
	ImportBatch int
	// MaxJobs bounds the import jobs kept in memory (oldest finished first).
	MaxJobs int
	// TempDir holds uploads while an import runs; "" means os.TempDir().
	TempDir string
	// ReadCacheTTL is how long user lists and status are served from a
	// rendered copy (writes through the API clear it); 0 disables it.
	ReadCacheTTL time.Duration
	// BodyIdleTimeout cuts off a request body that stops arriving for this
	// long (and any body under 16 KB/s on average after 30 s).
	BodyIdleTimeout time.Duration
	// ShutdownTimeout bounds Close's graceful drain.
	ShutdownTimeout time.Duration

	// DeviceID and Version are reported by /api/v1/status.
	DeviceID string
	Version  string
}

// DefaultConfig returns the defaults a deployed kiosk uses.
func DefaultConfig() Config {
	return Config{
		Addr:                    ":8080",
		TokenTTL:                30 * time.Minute,
		MaxUploadBytes:          512 << 20,
		MaxImageBytes:           20 << 20,
		MaxImportRows:           5000,
		MaxZipEntries:           10000,
		MaxUnzipBytes:           2 << 30,
		MaxSheetBytes:           32 << 20,
		MaxImagePixels:          13_000_000,
		DuplicateDistance:       0.6,
		SameFaceDistance:        0.05,
		CaptureTimeout:          15 * time.Second,
		LoginMaxFailures:        5,
		LoginMaxFailuresPerAddr: 20,
		LoginWindow:             time.Hour,
		LoginMaxDelay:           15 * time.Minute,
		TrustLoopback:           true,
		MaxStreams:              32,
		StreamRecheck:           5 * time.Second,
		ImportBatch:             100,
		MaxJobs:                 20,
		ReadCacheTTL:            time.Second,
		ShutdownTimeout:         10 * time.Second,
		BodyIdleTimeout:         20 * time.Second,
		Version:                 "dev",
	}
}

// Validate returns an error naming the first bad field.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("addr: %q is not host:port", c.Addr)
	}
	switch {
	case c.TokenTTL < time.Minute || c.TokenTTL > 24*time.Hour:
		return fmt.Errorf("token_ttl: %s is outside [1m, 24h]", c.TokenTTL)
	case c.MaxUploadBytes < 1<<20:
		return fmt.Errorf("max_upload_bytes: %d is below 1 MiB", c.MaxUploadBytes)
	case c.MaxImageBytes < 64<<10 || c.MaxImageBytes > c.MaxUploadBytes:
		return fmt.Errorf("max_image_bytes: %d is outside [64 KiB, max_upload_bytes]", c.MaxImageBytes)
	case c.MaxImportRows < 1 || c.MaxImportRows > 1_048_575:
		return fmt.Errorf("max_import_rows: %d is outside [1, 1048575]", c.MaxImportRows)
	case c.MaxZipEntries < 1:
		return fmt.Errorf("max_zip_entries: %d must be positive", c.MaxZipEntries)
	case c.MaxUnzipBytes < 1<<20:
		return fmt.Errorf("max_unzip_bytes: %d is below 1 MiB", c.MaxUnzipBytes)
	case c.MaxSheetBytes < 1<<20 || c.MaxSheetBytes > 1<<30:
		return fmt.Errorf("max_sheet_bytes: %d is outside [1 MiB, 1 GiB]", c.MaxSheetBytes)
	case c.MaxImagePixels < 1<<16:
		return fmt.Errorf("max_image_pixels: %d is below 65536", c.MaxImagePixels)
	case c.DuplicateDistance <= 0 || c.DuplicateDistance > 1.2:
		return fmt.Errorf("duplicate_distance: %g is outside (0, 1.2]", c.DuplicateDistance)
	case c.SameFaceDistance < 0 || c.SameFaceDistance >= c.DuplicateDistance:
		return fmt.Errorf("same_face_distance: %g is outside [0, duplicate_distance)", c.SameFaceDistance)
	case c.CaptureTimeout < time.Second:
		return fmt.Errorf("capture_timeout: %s is below 1s", c.CaptureTimeout)
	case c.LoginMaxFailures < 1 || c.LoginMaxFailuresPerAddr < c.LoginMaxFailures:
		return fmt.Errorf("login_max_failures: %d must be positive and not above login_max_failures_per_addr (%d)", c.LoginMaxFailures, c.LoginMaxFailuresPerAddr)
	case c.LoginMaxDelay < time.Second || c.LoginWindow < c.LoginMaxDelay:
		return fmt.Errorf("login_max_delay, login_window: want 1s <= login_max_delay <= login_window")
	case c.MaxStreams < 1 || c.MaxStreams > 10000:
		return fmt.Errorf("max_streams: %d is outside [1, 10000]", c.MaxStreams)
	case c.StreamRecheck < 100*time.Millisecond || c.StreamRecheck > time.Minute:
		return fmt.Errorf("stream_recheck: %s is outside [100ms, 1m]", c.StreamRecheck)
	case c.ImportWorkers < 0 || c.ImportWorkers > 64:
		return fmt.Errorf("import_workers: %d is outside [0, 64]", c.ImportWorkers)
	case c.ImportBatch < 1 || c.ImportBatch > 10000:
		return fmt.Errorf("import_batch: %d is outside [1, 10000]", c.ImportBatch)
	case c.MaxJobs < 1:
		return fmt.Errorf("max_jobs: %d must be positive", c.MaxJobs)
	case c.ReadCacheTTL < 0 || c.ReadCacheTTL > time.Minute:
		return fmt.Errorf("read_cache_ttl: %s is outside [0, 1m]", c.ReadCacheTTL)
	case c.BodyIdleTimeout < 100*time.Millisecond || c.BodyIdleTimeout > 10*time.Minute:
		return fmt.Errorf("body_idle_timeout: %s is outside [100ms, 10m]", c.BodyIdleTimeout)
	case c.ShutdownTimeout <= 0:
		return fmt.Errorf("shutdown_timeout: must be positive")
	}
	return nil
}
