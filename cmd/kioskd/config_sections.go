package main

import (
	"time"

	"github.com/kioskd/kioskd/device"
)

// APIConfig is the yaml form of the api section: localapi.Config field for
// field (documented there), converted with localapi.Config(c.API).
type APIConfig struct {
	Addr                    string        `yaml:"addr"`
	TokenTTL                time.Duration `yaml:"token_ttl"`
	MaxUploadBytes          int64         `yaml:"max_upload_bytes"`
	MaxImageBytes           int64         `yaml:"max_image_bytes"`
	MaxImportRows           int           `yaml:"max_import_rows"`
	MaxZipEntries           int           `yaml:"max_zip_entries"`
	MaxUnzipBytes           int64         `yaml:"max_unzip_bytes"`
	MaxSheetBytes           int64         `yaml:"max_sheet_bytes"`
	MaxImagePixels          int           `yaml:"max_image_pixels"`
	DuplicateDistance       float64       `yaml:"duplicate_distance"`
	SameFaceDistance        float64       `yaml:"same_face_distance"`
	CaptureTimeout          time.Duration `yaml:"capture_timeout"`
	LoginMaxFailures        int           `yaml:"login_max_failures"`
	LoginMaxFailuresPerAddr int           `yaml:"login_max_failures_per_addr"`
	LoginWindow             time.Duration `yaml:"login_window"`
	LoginMaxDelay           time.Duration `yaml:"login_max_delay"`
	TrustLoopback           bool          `yaml:"trust_loopback"`
	AllowedHosts            []string      `yaml:"allowed_hosts"`
	MaxStreams              int           `yaml:"max_streams"`
	StreamRecheck           time.Duration `yaml:"stream_recheck"`
	ImportWorkers           int           `yaml:"import_workers"`
	ImportBatch             int           `yaml:"import_batch"`
	MaxJobs                 int           `yaml:"max_jobs"`
	TempDir                 string        `yaml:"temp_dir"`
	ReadCacheTTL            time.Duration `yaml:"read_cache_ttl"`
	BodyIdleTimeout         time.Duration `yaml:"body_idle_timeout"`
	ShutdownTimeout         time.Duration `yaml:"shutdown_timeout"`
	DeviceID                string        `yaml:"-"`
	Version                 string        `yaml:"-"`
}

// SyncConfig is the yaml form of the sync section: sync.Config field for
// field (documented there), converted with ksync.Config(c.Sync).
type SyncConfig struct {
	Broker            string        `yaml:"broker"`
	DeviceID          string        `yaml:"device_id"`
	ClientID          string        `yaml:"client_id"`
	SiteID            string        `yaml:"site_id"`
	Room              string        `yaml:"room"`
	TopicPrefix       string        `yaml:"topic_prefix"`
	Username          string        `yaml:"username"`
	Password          string        `yaml:"password"`
	CAFile            string        `yaml:"ca_file"`
	CertFile          string        `yaml:"cert_file"`
	KeyFile           string        `yaml:"key_file"`
	RegistryPublicKey string        `yaml:"registry_public_key"`
	MaxPayload        int           `yaml:"max_payload"`
	Inflight          int           `yaml:"inflight"`
	QueueSize         int           `yaml:"queue_size"`
	Heartbeat         time.Duration `yaml:"heartbeat"`
	KeepAlive         time.Duration `yaml:"keep_alive"`
	ConnectTimeout    time.Duration `yaml:"connect_timeout"`
	AckTimeout        time.Duration `yaml:"ack_timeout"`
	MinBackoff        time.Duration `yaml:"min_backoff"`
	MaxBackoff        time.Duration `yaml:"max_backoff"`
	SnapshotTimeout   time.Duration `yaml:"snapshot_timeout"`
	GapGrace          time.Duration `yaml:"gap_grace"`
	MaxClockSkew      time.Duration `yaml:"max_clock_skew"`
	MaxSnapshotUsers  int           `yaml:"max_snapshot_users"`
	HistoricalAfter   time.Duration `yaml:"historical_after"`
	OutboxPoll        time.Duration `yaml:"outbox_poll"`
	CloseTimeout      time.Duration `yaml:"close_timeout"`
	UnknownInterval   time.Duration `yaml:"unknown_interval"`
	SummaryPoll       time.Duration `yaml:"summary_poll"`
}

// DeviceConfig is the yaml form of the device section: device.Config field
// for field (documented there), converted with device.Config(c.Device).
type DeviceConfig struct {
	Source             string        `yaml:"source"`
	Width              int           `yaml:"width"`
	Height             int           `yaml:"height"`
	FPS                float64       `yaml:"fps"`
	Pace               bool          `yaml:"pace"`
	Loop               bool          `yaml:"loop"`
	KioskID            string        `yaml:"kiosk_id"`
	DetectWidth        int           `yaml:"detect_width"`
	DetectAdjust       float64       `yaml:"detect_adjust"`
	MinFaceSize        int           `yaml:"min_face_size"`
	MinSharpness       float64       `yaml:"min_sharpness"`
	MinContrast        float64       `yaml:"min_contrast"`
	MaxClipped         float64       `yaml:"max_clipped"`
	MaxYaw             float64       `yaml:"max_yaw"`
	MaxRoll            float64       `yaml:"max_roll"`
	EncodeFaceSize     int           `yaml:"encode_face_size"`
	EncodeInterval     time.Duration `yaml:"encode_interval"`
	ConfirmK           int           `yaml:"confirm_k"`
	ConfirmM           int           `yaml:"confirm_m"`
	Cooldown           time.Duration `yaml:"cooldown"`
	TrackIoU           float64       `yaml:"track_iou"`
	TrackTimeout       time.Duration `yaml:"track_timeout"`
	TrackContinuity    float64       `yaml:"track_continuity"`
	Liveness           bool          `yaml:"liveness"`
	ShapePredictorPath string        `yaml:"shape_predictor"`
	LivenessMotion     float64       `yaml:"liveness_motion"`
	BlinkEAR           float64       `yaml:"blink_ear"`
	LivenessTimeout    time.Duration `yaml:"liveness_timeout"`
	PreviewInterval    time.Duration `yaml:"preview_interval"`
	PreviewQuality     int           `yaml:"preview_quality"`
	UnknownDir         string        `yaml:"unknown_dir"`
	IdleChange         float64       `yaml:"idle_change"`
	IdleHeartbeat      time.Duration `yaml:"idle_heartbeat"`
	IdleProbeWidth     int           `yaml:"idle_probe_width"`
	CameraCheck        time.Duration `yaml:"camera_check"`
	Mode               device.Mode   `yaml:"-"` // set from recognizer.mode
	ReopenMin          time.Duration `yaml:"reopen_min"`
	ReopenMax          time.Duration `yaml:"reopen_max"`
}
