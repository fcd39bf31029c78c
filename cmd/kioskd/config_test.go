package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/recognizer"
)

func TestParseConfig_Sample(t *testing.T) {
	f, err := os.Open("../../configs/kioskd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{"KIOSK_DEVICE_ID": "door-3"}
	cfg, err := parseConfig(f, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("sample config does not parse: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("sample config does not validate: %v", err)
	}
	if err := validateCron(cfg.Jobs); err != nil {
		t.Fatalf("sample cron specs: %v", err)
	}
	if cfg.DeviceID != "door-3" {
		t.Errorf("device_id = %q, want the ${KIOSK_DEVICE_ID} expansion door-3", cfg.DeviceID)
	}
	if cfg.Sync.Broker != "" {
		t.Errorf("sync.broker = %q, want empty default from ${KIOSK_MQTT_BROKER:-}", cfg.Sync.Broker)
	}
	if cfg.Device.Cooldown != 5*time.Minute || cfg.Recognizer.Threshold != 0.6 {
		t.Errorf("defaults changed: cooldown %s threshold %g", cfg.Device.Cooldown, cfg.Recognizer.Threshold)
	}
}

func TestParseConfig_EmptyIsDefault(t *testing.T) {
	cfg, err := parseConfig(strings.NewReader(""), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

// TestConfig_RecognizerConfigs: the encoder and matcher configs start from
// the recognizer's defaults and take the yaml's values; pool_size 0 keeps the
// default pool.
func TestConfig_RecognizerConfigs(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Models.Dir, cfg.Recognizer.MinFaceSize, cfg.Recognizer.Threshold, cfg.Recognizer.Margin = "m", 60, 0.5, 0
	want := recognizer.DefaultEncoderConfig()
	want.ModelsDir, want.MinFaceSize = "m", 60
	if got := cfg.encoderConfig(); got != want {
		t.Errorf("pool_size 0: encoder config %+v, want %+v", got, want)
	}
	cfg.Recognizer.PoolSize = 3
	if got := cfg.encoderConfig().PoolSize; got != 3 {
		t.Errorf("pool_size 3: PoolSize %d", got)
	}
	if got := cfg.matcherConfig(); got != (recognizer.MatcherConfig{Threshold: 0.5, Margin: 0}) {
		t.Errorf("matcher config %+v", got)
	}
}

func TestParseConfig_EnvKeepsBareDollar(t *testing.T) {
	cfg, err := parseConfig(strings.NewReader("sync:\n  password: \"pa$$word${X}\"\n"), func(k string) string {
		if k == "X" {
			return "!"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Sync.Password != "pa$$word!" {
		t.Fatalf("password = %q", cfg.Sync.Password)
	}
}

func TestParseConfig_Errors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown key", "device:\n  sorce: 0\n", "sorce"},
		{"wrong type", "recognizer:\n  threshold: high\n", "threshold"},
		{"bad threshold", "recognizer:\n  threshold: 3\n", "recognizer.threshold"},
		{"NaN threshold", "recognizer:\n  threshold: .nan\n", "recognizer.threshold"},
		{"NaN margin", "recognizer:\n  margin: .nan\n", "recognizer.margin"},
		{"bad device id", "device_id: \"a/b\"\n", "device_id"},
		{"k above m", "device:\n  source: \"0\"\n  confirm_k: 4\n  confirm_m: 3\n", "device.confirm_k"},
		{"bad broker", "sync:\n  broker: http://x\n", "sync.broker"},
		{"broker without key", "sync:\n  broker: tcp://127.0.0.1:1883\n", "sync.registry_public_key"},
		{"bad log level", "log_level: loud\n", "log_level"},
		{"bad mode", "recognizer:\n  mode: id\n", "recognizer.mode"},
		{"session without cron", "jobs:\n  sessions:\n    - id: s1\n      duration: 1h\n", "jobs.sessions[0].cron"},
		{"negative cooldown", "device:\n  source: \"0\"\n  cooldown: -1s\n", "device.cooldown"},
		{"bad api addr", "api:\n  addr: nowhere\n", "api.addr"},
		{"wrong type names field", "device:\n  fps: fast\n", "device.fps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseConfig(strings.NewReader(tc.yaml), func(string) string { return "" })
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil {
				t.Fatalf("no error, want one naming %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

func TestValidateCron_NamesField(t *testing.T) {
	cfg := DefaultConfig().Jobs
	cfg.BackupCron = "every day"
	err := validateCron(cfg)
	if err == nil || !strings.Contains(err.Error(), "jobs.backup_cron") {
		t.Fatalf("err = %v, want one naming jobs.backup_cron", err)
	}
}

func TestApplyEnv(t *testing.T) {
	cfg := DefaultConfig()
	env := map[string]string{"KIOSK_DATA_DIR": "/srv/kiosk", "KIOSK_THRESHOLD": "0.5", "KIOSK_API_ADDR": ":0"}
	if err := cfg.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/srv/kiosk" || cfg.Recognizer.Threshold != 0.5 || cfg.API.Addr != ":0" {
		t.Fatalf("env not applied: %+v", cfg)
	}
	env["KIOSK_THRESHOLD"] = "abc"
	if err := cfg.ApplyEnv(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "KIOSK_THRESHOLD") {
		t.Fatalf("err = %v, want KIOSK_THRESHOLD named", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	b, _ := os.ReadFile("../../configs/kioskd.yaml")
	f.Add(string(b))
	f.Add("device:\n  cooldown: 1h\n")
	f.Add("jobs:\n  sessions: [{id: x, cron: '* * * * *', duration: 1m}]\n")
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := parseConfig(strings.NewReader(s), func(string) string { return "" })
		if err != nil {
			return
		}
		if cfg.Validate() == nil {
			_ = validateCron(cfg.Jobs)
		}
	})
}

func TestParseConfig_ReplaySample(t *testing.T) {
	f, err := os.Open("../../configs/kioskd-replay.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := parseConfig(f, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("replay sample does not validate: %v", err)
	}
	if d := cfg.deviceConfig(); d.KioskID != "demo-kiosk" || d.ShapePredictorPath != "var/models/shape_predictor_68_face_landmarks.dat" {
		t.Fatalf("shared fields not filled in: kiosk %q shape %q", d.KioskID, d.ShapePredictorPath)
	}
	if d := cfg.deviceConfig(); !d.Loop || !d.Pace {
		t.Fatalf("the replay demo must loop at the clip's pace: loop %v pace %v", d.Loop, d.Pace)
	}
}
