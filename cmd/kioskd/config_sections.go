package main

import "time"

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
