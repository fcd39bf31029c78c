package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kioskd/kioskd/device"
	"github.com/kioskd/kioskd/localapi"
	"github.com/kioskd/kioskd/recognizer"
	ksync "github.com/kioskd/kioskd/sync"
)

// Config is kioskd's whole configuration, as read from YAML (see
// configs/kioskd.yaml for the annotated sample). Only cmd knows yaml: the
// device, api and sync sections mirror device.Config, localapi.Config and
// sync.Config field for field (config_sections.go), so every knob they have
// is reachable from the file; kioskd fills in what they share (device id,
// site, model paths) from the top level.
type Config struct {
	DeviceID string `yaml:"device_id"`
	SiteID   string `yaml:"site_id"`
	DataDir  string `yaml:"data_dir"`
	LogLevel string `yaml:"log_level"`

	Models     ModelsConfig     `yaml:"models"`
	Recognizer RecognizerConfig `yaml:"recognizer"`
	// Device is the camera pipeline; an empty device.source runs kioskd
	// without a camera (API and sync only).
	Device DeviceConfig `yaml:"device"`
	// API is the local HTTP API and pages.
	API APIConfig `yaml:"api"`
	// Sync is the MQTT link to central; an empty sync.broker runs kioskd
	// offline (attendance waits in the outbox).
	Sync SyncConfig `yaml:"sync"`
	Jobs JobsConfig `yaml:"jobs"`
}

// ModelsConfig says where dlib's model files are.
type ModelsConfig struct {
	Dir string `yaml:"dir"`
}

// RecognizerConfig tunes encoding and matching; encoderConfig and
// matcherConfig convert it.
type RecognizerConfig struct {
	// Threshold is the 1:N distance threshold; with a target false-match
	// rate it is the ceiling the calibrated threshold never exceeds.
	Threshold float64 `yaml:"threshold"`
	// TargetFalseMatchRate is the false-match rate per identification the
	// gallery's calibration derives the 1:N threshold for
	// (docs/accuracy.md); 0 keeps Threshold fixed (still reported).
	TargetFalseMatchRate float64 `yaml:"target_false_match_rate"`
	// CalibrationPriorPairs is how many impostor pairs the calibration's
	// prior (the densest population measured) is worth against the
	// gallery's own pairs; 0 trusts a small gallery's pairs alone.
	CalibrationPriorPairs int     `yaml:"calibration_prior_pairs"`
	Margin                float64 `yaml:"margin"`
	MinFaceSize           int     `yaml:"min_face_size"`
	PoolSize              int     `yaml:"pool_size"`
	MaxPixels             int     `yaml:"max_pixels"`
	// MaxConcurrentPixels bounds the pixels all concurrent encodes work on
	// at once (a 2x detection counts four times): the knob for the
	// encoders' peak memory (docs/benchmarks.md, "Abuse campaign").
	MaxConcurrentPixels int `yaml:"max_concurrent_pixels"`
	// Mode is how the kiosk decides who is in front of it: face (1:N),
	// id_face (ID card or keypad first, then 1:1) or auto (1:N when clear,
	// else ask for the ID; "" is face); docs/accuracy.md, "Choosing a mode".
	Mode string `yaml:"mode"`
}

// encoderConfig is the recognizer configuration over the encoder's
// defaults; pool_size 0 keeps the default pool (one per core, up to 4).
func (c *Config) encoderConfig() recognizer.EncoderConfig {
	cfg := recognizer.DefaultEncoderConfig()
	cfg.ModelsDir = c.Models.Dir
	cfg.MinFaceSize = c.Recognizer.MinFaceSize
	cfg.MaxPixels = c.Recognizer.MaxPixels
	cfg.MaxConcurrentPixels = c.Recognizer.MaxConcurrentPixels
	if c.Recognizer.PoolSize > 0 {
		cfg.PoolSize = c.Recognizer.PoolSize
	}
	return cfg
}

// matcherConfig is the recognizer configuration as a MatcherConfig.
func (c *Config) matcherConfig() recognizer.MatcherConfig {
	cfg := recognizer.DefaultMatcherConfig()
	cfg.Threshold = c.Recognizer.Threshold
	cfg.Margin = c.Recognizer.Margin
	return cfg
}

// JobsConfig configures scheduled jobs (robfig/cron specs, local time).
type JobsConfig struct {
	RetentionDays int    `yaml:"retention_days"`
	RetentionCron string `yaml:"retention_cron"`
	BackupCron    string `yaml:"backup_cron"`
	BackupKeep    int    `yaml:"backup_keep"`
	BackupDir     string `yaml:"backup_dir"`
	// Sessions are class sessions: attendance recorded while one is open
	// carries its id.
	Sessions []SessionConfig `yaml:"sessions"`
}

// SessionConfig is one recurring class session.
type SessionConfig struct {
	ID         string        `yaml:"id"`
	Cron       string        `yaml:"cron"`     // when it opens
	Duration   time.Duration `yaml:"duration"` // how long it stays open
	ClassGroup string        `yaml:"class_group"`
}

// DefaultConfig returns the configuration kioskd runs with when no file is
// given: data under var/, no camera, no broker, the API on loopback.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "kiosk"
	}
	dev := device.DefaultConfig()
	dev.Source = "" // no camera unless configured: kioskd must start on any box
	dev.Pace = true
	api := localapi.DefaultConfig()
	api.Addr = "127.0.0.1:8080" // technicians reach it through the kiosk or an SSH tunnel
	api.MaxUploadBytes = 200 << 20
	return Config{
		DeviceID: sanitizeID(host),
		SiteID:   "default",
		DataDir:  "var",
		LogLevel: "info",
		Models:   ModelsConfig{Dir: "var/models"},
		Recognizer: RecognizerConfig{
			// The recognizer's own defaults, whose doc comments say why.
			Threshold:             recognizer.DefaultThreshold,
			TargetFalseMatchRate:  recognizer.DefaultTargetFMR,
			CalibrationPriorPairs: recognizer.DefaultPriorPairs,
			Margin:                recognizer.DefaultMargin,
			MinFaceSize:           recognizer.DefaultMinFaceSize,
			MaxPixels:             recognizer.DefaultMaxPixels,

			MaxConcurrentPixels: recognizer.DefaultMaxConcurrentPixels,
			Mode:                string(device.ModeFace),
		},
		Device: DeviceConfig(dev),
		API:    APIConfig(api),
		Sync:   SyncConfig(ksync.DefaultConfig()),
		Jobs: JobsConfig{
			RetentionDays: 180,
			RetentionCron: "30 3 * * *",
			BackupCron:    "0 2 * * *",
			BackupKeep:    7,
		},
	}
}

// envRef matches ${NAME} and ${NAME:-default}; a bare $ is left alone so
// passwords may contain it.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}`)

// expandEnv replaces ${NAME} and ${NAME:-default} with environment values.
func expandEnv(b []byte, getenv func(string) string) []byte {
	return envRef.ReplaceAllFunc(b, func(m []byte) []byte {
		sub := envRef.FindSubmatch(m)
		if v := getenv(string(sub[1])); v != "" {
			return []byte(v)
		}
		return sub[2]
	})
}

// maxConfigSize bounds the configuration file; a real one is a few KB.
const maxConfigSize = 1 << 20

// ParseConfig reads YAML from r over DefaultConfig, expanding ${ENV}
// references. Unknown keys are errors, so a typo does not silently fall back
// to a default.
func ParseConfig(r io.Reader) (Config, error) {
	return parseConfig(r, os.Getenv)
}

func parseConfig(r io.Reader, getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()
	b, err := io.ReadAll(io.LimitReader(r, maxConfigSize+1))
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	} else if len(b) > maxConfigSize {
		return cfg, fmt.Errorf("config: larger than %d bytes", maxConfigSize)
	}
	b = expandEnv(b, getenv)
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("config: %s", nameFields(err, &root))
	}
	return cfg, nil
}

var yamlLine = regexp.MustCompile(`line (\d+): `)

// nameFields rewrites yaml's "line N: ..." errors to also name the field
// (e.g. recognizer.threshold), which is what a person edits.
func nameFields(err error, root *yaml.Node) string {
	paths := map[int]string{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, prefix)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if prefix != "" {
					p = prefix + "." + k.Value
				}
				if _, ok := paths[k.Line]; !ok {
					paths[k.Line] = p
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", prefix, i))
			}
		}
	}
	walk(root, "")
	return yamlLine.ReplaceAllStringFunc(err.Error(), func(m string) string {
		var line int
		fmt.Sscanf(m, "line %d: ", &line)
		if p, ok := paths[line]; ok {
			return fmt.Sprintf("line %d: %s: ", line, p)
		}
		return m
	})
}

// ApplyEnv overrides fields from KIOSK_* environment variables, which win
// over the file (containers and systemd units set them).
func (c *Config) ApplyEnv(getenv func(string) string) error {
	str := map[string]*string{
		"KIOSK_DEVICE_ID":     &c.DeviceID,
		"KIOSK_SITE_ID":       &c.SiteID,
		"KIOSK_DATA_DIR":      &c.DataDir,
		"KIOSK_LOG_LEVEL":     &c.LogLevel,
		"KIOSK_MODELS_DIR":    &c.Models.Dir,
		"KIOSK_CAMERA_SOURCE": &c.Device.Source,
		"KIOSK_API_ADDR":      &c.API.Addr,
		"KIOSK_MQTT_BROKER":   &c.Sync.Broker,
		"KIOSK_MQTT_USERNAME": &c.Sync.Username,
		"KIOSK_MQTT_PASSWORD": &c.Sync.Password,
	}
	for name, p := range str {
		if v := getenv(name); v != "" {
			*p = v
		}
	}
	if v := getenv("KIOSK_THRESHOLD"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("KIOSK_THRESHOLD: %q is not a number", v)
		}
		c.Recognizer.Threshold = f
	}
	return nil
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// sanitizeID turns a host name into a valid device id.
func sanitizeID(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 128 && (r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		}
	}
	out := b.String()
	if len(out) > 64 {
		out = out[:64]
	}
	if !idPattern.MatchString(out) {
		return "kiosk"
	}
	return out
}

// Validate returns an error naming the first invalid field.
func (c *Config) Validate() error {
	switch {
	case !idPattern.MatchString(c.DeviceID):
		return fmt.Errorf("device_id: %q must be 1-64 letters, digits, '-', '_' or '.' (it becomes an MQTT topic level)", c.DeviceID)
	case !idPattern.MatchString(c.SiteID):
		return fmt.Errorf("site_id: %q must be 1-64 letters, digits, '-', '_' or '.'", c.SiteID)
	case c.DataDir == "":
		return fmt.Errorf("data_dir: required")
	case c.Models.Dir == "":
		return fmt.Errorf("models.dir: required")
	case !(c.Recognizer.Threshold > 0 && c.Recognizer.Threshold <= 1.2): // NaN too
		return fmt.Errorf("recognizer.threshold: %g is outside (0, 1.2]; dlib's convention is 0.6", c.Recognizer.Threshold)
	case c.Recognizer.CalibrationPriorPairs < 0 || c.Recognizer.CalibrationPriorPairs > 1000:
		return fmt.Errorf("recognizer.calibration_prior_pairs: %d is outside 0-1000; %d is the default, 0 trusts a small gallery alone", c.Recognizer.CalibrationPriorPairs, recognizer.DefaultPriorPairs)
	case !(c.Recognizer.TargetFalseMatchRate >= 0 && c.Recognizer.TargetFalseMatchRate <= 0.01):
		return fmt.Errorf("recognizer.target_false_match_rate: %g is outside [0, 0.01]; 0.0001 is 1 in 10,000 identifications, 0 keeps the threshold fixed", c.Recognizer.TargetFalseMatchRate)
	case !(c.Recognizer.Margin >= 0 && c.Recognizer.Margin < c.Recognizer.Threshold):
		return fmt.Errorf("recognizer.margin: %g must be >= 0 and below the threshold", c.Recognizer.Margin)
	case c.Recognizer.MinFaceSize < 20 || c.Recognizer.MinFaceSize > 2000:
		return fmt.Errorf("recognizer.min_face_size: %d is outside [20, 2000] pixels", c.Recognizer.MinFaceSize)
	case c.Recognizer.PoolSize < 0 || c.Recognizer.PoolSize > 64:
		return fmt.Errorf("recognizer.pool_size: %d is outside [0, 64] (0 = one per core)", c.Recognizer.PoolSize)
	case c.Recognizer.MaxPixels < 1_000_000 || c.Recognizer.MaxPixels > 200_000_000:
		return fmt.Errorf("recognizer.max_pixels: %d is outside [1e6, 2e8]", c.Recognizer.MaxPixels)
	case c.Recognizer.MaxConcurrentPixels < 1_000_000 || c.Recognizer.MaxConcurrentPixels > 400_000_000:
		return fmt.Errorf("recognizer.max_concurrent_pixels: %d is outside [1e6, 4e8]", c.Recognizer.MaxConcurrentPixels)
	case c.Recognizer.Mode != "" && c.Recognizer.Mode != string(device.ModeFace) && c.Recognizer.Mode != string(device.ModeIDFace) && c.Recognizer.Mode != string(device.ModeAuto):
		return fmt.Errorf("recognizer.mode: %q is not one of face, id_face, auto", c.Recognizer.Mode)
	case c.Jobs.RetentionDays < 1:
		return fmt.Errorf("jobs.retention_days: %d must be at least 1", c.Jobs.RetentionDays)
	case c.Jobs.BackupKeep < 1:
		return fmt.Errorf("jobs.backup_keep: %d must be at least 1", c.Jobs.BackupKeep)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log_level: %q is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.Device.Source != "" {
		dev := c.deviceConfig()
		if err := dev.Validate(); err != nil {
			return err // names device.<field>
		}
	}
	api := localapi.Config(c.API)
	if err := api.Validate(); err != nil {
		return fmt.Errorf("api.%w", err)
	}
	if c.Sync.Broker != "" {
		if err := c.syncConfig().Validate(); err != nil {
			return err // names sync.<field>
		}
		if c.Sync.RegistryPublicKey == "" {
			return fmt.Errorf("sync.registry_public_key: required when sync.broker is set (commands from central are verified with it)")
		}
	}
	seen := map[string]bool{}
	for i, s := range c.Jobs.Sessions {
		switch {
		case !idPattern.MatchString(s.ID):
			return fmt.Errorf("jobs.sessions[%d].id: %q must be 1-64 letters, digits, '-', '_' or '.'", i, s.ID)
		case seen[s.ID]:
			return fmt.Errorf("jobs.sessions[%d].id: %q appears twice", i, s.ID)
		case s.Cron == "":
			return fmt.Errorf("jobs.sessions[%d].cron: required", i)
		case s.Duration <= 0 || s.Duration > 12*time.Hour:
			return fmt.Errorf("jobs.sessions[%d].duration: %s is outside (0, 12h]", i, s.Duration)
		}
		seen[s.ID] = true
	}
	return validateCron(c.Jobs)
}

// deviceConfig is the pipeline's configuration with the shared fields
// filled in from the top level.
func (c *Config) deviceConfig() device.Config {
	d := device.Config(c.Device)
	if d.KioskID == "" || d.KioskID == device.DefaultConfig().KioskID {
		d.KioskID = c.DeviceID
	}
	if d.ShapePredictorPath == "" || d.ShapePredictorPath == device.DefaultConfig().ShapePredictorPath {
		d.ShapePredictorPath = filepath.Join(c.Models.Dir, "shape_predictor_68_face_landmarks.dat")
	}
	if d.Mode = device.Mode(c.Recognizer.Mode); d.Mode == "" {
		d.Mode = device.ModeFace
	}
	return d
}

// syncConfig is sync's configuration with the shared fields filled in.
func (c *Config) syncConfig() ksync.Config {
	s := ksync.Config(c.Sync)
	if s.DeviceID == "" {
		s.DeviceID = c.DeviceID
	}
	if s.SiteID == "" {
		s.SiteID = c.SiteID
	}
	return s
}
