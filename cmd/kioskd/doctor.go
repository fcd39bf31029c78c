package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"gocv.io/x/gocv"
	"golang.org/x/sys/cpu"

	"github.com/kioskd/kioskd/device"
	ksync "github.com/kioskd/kioskd/sync"
)

// modelSums are the pinned sha256 sums of dlib's model files; scripts/models.sh
// checks downloads against the same file.
//
//go:embed models.sha256
var modelSums string

// modelFiles are the model files kioskd loads.
var modelFiles = []string{
	"shape_predictor_5_face_landmarks.dat",
	"dlib_face_recognition_resnet_model_v1.dat",
	"mmod_human_face_detector.dat",
	"shape_predictor_68_face_landmarks.dat",
}

// doctorCheck is one line of `kioskd doctor`: "" when fine, else what is
// wrong and what to do.
type doctorCheck struct {
	name string
	run  func(ctx context.Context) (ok string, problem string)
}

// runDoctor handles `kioskd doctor`: one line per check, OK or what to do,
// and an error (exit status 1) when any check fails.
func (m *Main) runDoctor(ctx context.Context) error {
	var daemon *controlStatus
	var st controlStatus
	if err := m.callControl(ctx, "/status", struct{}{}, &st); err == nil {
		daemon = &st
	} else if !errors.Is(err, errNoDaemon) {
		fmt.Fprintf(m.Stdout, "WARN  daemon: the control socket answers but: %v\n", err)
	}
	checks := []doctorCheck{
		{"config", func(context.Context) (string, string) {
			return orDefault(m.ConfigPath, "built-in defaults") + " is valid", ""
		}},
		{"daemon", func(context.Context) (string, string) {
			switch {
			case daemon == nil:
				return "not running (checks below open the store, camera and broker themselves)", ""
			case daemon.Ready != "":
				return "", fmt.Sprintf("running %s but not ready: %s", daemon.Version, daemon.Ready)
			}
			return "running " + daemon.Version + ", ready", ""
		}},
		{"models", m.doctorModels},
		{"store", func(context.Context) (string, string) { return m.doctorStore(daemon) }},
		{"key file", m.doctorKey},
		{"camera", func(ctx context.Context) (string, string) { return m.doctorCamera(ctx, daemon) }},
		{"broker", func(ctx context.Context) (string, string) { return m.doctorBroker(ctx, daemon) }},
		{"registry key", m.doctorRegistryKey},
		{"clock", doctorClock},
		{"disk", m.doctorDisk},
		{"cpu", doctorCPU},
	}
	failed := 0
	for _, c := range checks {
		ok, problem := c.run(ctx)
		if problem != "" {
			failed++
			fmt.Fprintf(m.Stdout, "FAIL  %-12s %s\n", c.name+":", problem)
			continue
		}
		fmt.Fprintf(m.Stdout, "OK    %-12s %s\n", c.name+":", ok)
	}
	if failed > 0 {
		return fmt.Errorf("doctor: %d of %d checks failed", failed, len(checks))
	}
	return nil
}

// parseSums reads "sum  name" lines.
func parseSums(s string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 {
			out[f[1]] = f[0]
		}
	}
	return out
}

func (m *Main) doctorModels(context.Context) (string, string) {
	sums := parseSums(modelSums)
	var bad []string
	for _, name := range modelFiles {
		p := filepath.Join(m.Config.Models.Dir, name)
		f, err := os.Open(p)
		if err != nil {
			bad = append(bad, name+" missing")
			continue
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil || hex.EncodeToString(h.Sum(nil)) != sums[name] {
			bad = append(bad, name+" damaged (sha256 differs)")
		}
	}
	if len(bad) > 0 {
		return "", fmt.Sprintf("%s in %s: fetch them again with `make models` (or, installed from the .deb, `/usr/share/kioskd/models.sh %s`)", strings.Join(bad, ", "), m.Config.Models.Dir, m.Config.Models.Dir)
	}
	return fmt.Sprintf("%d files in %s match their sha256", len(modelFiles), m.Config.Models.Dir), ""
}

func (m *Main) doctorStore(daemon *controlStatus) (string, string) {
	if daemon != nil {
		if daemon.Ready != "" {
			return "", "the running daemon's store does not answer: " + daemon.Ready
		}
		return "open in the running daemon and answering (stop it for a full check)", ""
	}
	if _, err := os.Stat(m.dataPath("kioskd.db")); errors.Is(err, os.ErrNotExist) {
		return "", fmt.Sprintf("no database in %s yet: start kioskd once, or restore a backup (kioskd restore FILE)", m.Config.DataDir)
	}
	if err := m.openStore(); err != nil {
		return "", err.Error()
	}
	if err := m.DB.Check(); err != nil {
		return "", fmt.Sprintf("%v: restore the latest backup (kioskd restore FILE)", err)
	}
	return m.dataPath("kioskd.db") + " opens and passes its checks", ""
}

func (m *Main) doctorKey(context.Context) (string, string) {
	p := m.dataPath("keys", "descriptors.key")
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Sprintf("%s is missing: restore it from where you keep it (kioskd creates one only for a new database)", p)
	case err != nil:
		return "", err.Error()
	case fi.Mode().Perm()&0o077 != 0:
		return "", fmt.Sprintf("%s has mode %04o: run chmod 600 %s", p, fi.Mode().Perm(), p)
	}
	return p + " mode 0600", ""
}

func (m *Main) doctorCamera(ctx context.Context, daemon *controlStatus) (string, string) {
	cfg := m.Config.deviceConfig()
	if cfg.Source == "" {
		return "none configured (device.source is empty: kioskd runs without a camera)", ""
	}
	if daemon != nil {
		c := daemon.Camera
		switch {
		case c == nil:
			return "", "the running daemon has no camera pipeline: restart it after setting device.source"
		case c.Message != "":
			return "", fmt.Sprintf("%s is %s in the running daemon: %s", c.Source, c.State, c.Message)
		case c.State != device.CameraRunning && c.State != device.CameraEnded:
			return "", fmt.Sprintf("%s is %s in the running daemon (%s): check the cable and `ls /dev/video*`", c.Source, c.State, c.LastError)
		case time.Since(c.LastFrameAt) > 5*time.Second && c.State == device.CameraRunning:
			return "", fmt.Sprintf("%s is open but its last frame is %s old", c.Source, time.Since(c.LastFrameAt).Round(time.Second))
		}
		return fmt.Sprintf("%s %s in the running daemon, %d frames", c.Source, c.State, c.Frames), ""
	}
	src, err := device.OpenSource(&cfg)
	if err != nil {
		return "", fmt.Sprintf("%v: check device.source, the cable, `ls -l /dev/video*` and that kioskd's user is in group video", err)
	}
	defer src.Close()
	mat := gocv.NewMat()
	defer mat.Close()
	deadline := time.Now().Add(5 * time.Second)
	frames := 0
	var seen []gocv.Mat // for the black/frozen check
	defer func() {
		for _, f := range seen {
			f.Close()
		}
	}()
	for frames < 5 && time.Now().Before(deadline) && ctx.Err() == nil {
		if err := src.Read(&mat); errors.Is(err, io.EOF) && frames > 0 {
			break // a short file or folder
		} else if err != nil {
			return "", fmt.Sprintf("%s opened but a read failed after %d frames: %v", cfg.Source, frames, err)
		}
		if !mat.Empty() {
			frames++
			seen = append(seen, mat.Clone())
		}
	}
	if frames == 0 {
		return "", fmt.Sprintf("%s opened but delivered no frame in 5 s", cfg.Source)
	}
	w, h := mat.Cols(), mat.Rows()
	if kind, _, _ := device.ParseSource(cfg.Source); kind == device.SourceCamera && (w != cfg.Width || h != cfg.Height) {
		return "", fmt.Sprintf("%s delivers %dx%d, configured %dx%d: set device.width/height to a size it supports (v4l2-ctl --list-formats-ext)", cfg.Source, w, h, cfg.Width, cfg.Height)
	}
	if st, msg := device.CheckFrames(seen); st != "" {
		return "", fmt.Sprintf("%s delivered %d %s frames: %s", cfg.Source, frames, st, msg)
	}
	return fmt.Sprintf("%s delivered %d frames of %dx%d", cfg.Source, frames, w, h), ""
}

func (m *Main) doctorBroker(ctx context.Context, daemon *controlStatus) (string, string) {
	cfg := m.Config.syncConfig()
	if cfg.Broker == "" {
		return "none configured (sync.broker is empty: attendance waits in the outbox)", ""
	}
	if daemon != nil && daemon.Sync != nil {
		if !daemon.Sync.Connected {
			return "", fmt.Sprintf("the running daemon is not connected to %s: %s", cfg.Broker, orDefault(daemon.Sync.LastError, "no error yet"))
		}
		return fmt.Sprintf("the running daemon is connected to %s, outbox %d", cfg.Broker, daemon.Sync.OutboxLen), ""
	}
	tlsCfg, err := ksync.TLSConfig(cfg)
	if err != nil {
		return "", fmt.Sprintf("TLS files: %v: check sync.ca_file, cert_file, key_file", err)
	}
	opts := mqtt.NewClientOptions().AddBroker(cfg.Broker).SetClientID(cfg.DeviceID + "-doctor").
		SetUsername(cfg.Username).SetPassword(cfg.Password).SetConnectTimeout(5 * time.Second).SetAutoReconnect(false)
	if tlsCfg != nil {
		opts.SetTLSConfig(tlsCfg)
	}
	c := mqtt.NewClient(opts)
	t := c.Connect()
	if !t.WaitTimeout(6*time.Second) || t.Error() != nil {
		return "", fmt.Sprintf("cannot connect to %s: %v: check the address, the firewall, the CA and the username/password", cfg.Broker, t.Error())
	}
	c.Disconnect(100)
	how := "plain TCP"
	if tlsCfg != nil {
		how = "TLS"
	}
	return fmt.Sprintf("connected to %s (%s, user %q)", cfg.Broker, how, cfg.Username), ""
}

func (m *Main) doctorRegistryKey(context.Context) (string, string) {
	if m.Config.Sync.Broker == "" {
		return "not needed without a broker", ""
	}
	if k, err := m.Config.syncConfig().PublicKey(); err != nil || len(k) == 0 {
		return "", "sync.registry_public_key is missing or invalid: ask central for its Ed25519 public key (base64)"
	}
	return "sync.registry_public_key set", ""
}

// doctorClock asks the kernel whether NTP keeps the clock in sync: attendance
// carries its times and tokens expire by it.
func doctorClock(context.Context) (string, string) {
	var tx syscall.Timex
	state, err := syscall.Adjtimex(&tx)
	if err != nil {
		return "", "cannot read the clock state: " + err.Error()
	}
	const staUnsync, timeError = 0x0040, 5
	if state == timeError || tx.Status&staUnsync != 0 {
		return "", "the clock is not synchronised (no NTP): enable systemd-timesyncd or chrony, or attendance times drift"
	}
	return fmt.Sprintf("synchronised (estimated error %d us)", tx.Esterror), ""
}

func (m *Main) doctorDisk(context.Context) (string, string) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(m.Config.DataDir, &fs); err != nil {
		return "", fmt.Sprintf("%s: %v", m.Config.DataDir, err)
	}
	free := fs.Bavail * uint64(fs.Bsize)
	total := fs.Blocks * uint64(fs.Bsize)
	if free < 1<<30 || free*20 < total {
		return "", fmt.Sprintf("only %d MB free on %s's file system: free space (old backups in %s), or backups and attendance stop", free>>20, m.Config.DataDir, m.dataPath("backups"))
	}
	return fmt.Sprintf("%d MB free of %d MB", free>>20, total>>20), ""
}

// doctorCPU reports the features the binary relies on: x86-64-v2 (the C++
// is built for it) and AVX2/FMA for the matcher's fast path.
func doctorCPU(context.Context) (string, string) {
	switch runtime.GOARCH {
	case "amd64":
		if !cpu.X86.HasSSE42 || !cpu.X86.HasPOPCNT {
			return "", "this CPU lacks SSE4.2/POPCNT (x86-64-v2): kioskd's binary cannot run on it"
		}
		if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
			return fmt.Sprintf("amd64, %d cores, x86-64-v2 and AVX2/FMA (fast matcher)", runtime.NumCPU()), ""
		}
		return fmt.Sprintf("amd64, %d cores, x86-64-v2 without AVX2 (portable matcher, slower at large galleries)", runtime.NumCPU()), ""
	case "arm64":
		return fmt.Sprintf("arm64, %d cores, ASIMD %v", runtime.NumCPU(), cpu.ARM64.HasASIMD), ""
	}
	return fmt.Sprintf("%s, %d cores", runtime.GOARCH, runtime.NumCPU()), ""
}
