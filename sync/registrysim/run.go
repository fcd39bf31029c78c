package registrysim

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/kioskd/kioskd/models"
)

// RunRegistrySim is the `registry-sim` command: it connects to a broker as
// central for one site, pushes users from -users (JSON or .xlsx) and/or
// -idols, then answers snapshot requests and acks uplink messages until ctx
// ends, printing a JSON status line every -report interval. enc computes
// descriptors for rows that give photos; with a nil enc such rows are
// refused.
func RunRegistrySim(ctx context.Context, args []string, stdout io.Writer, enc models.Encoder) error {
	fs := flag.NewFlagSet("registry-sim", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var (
		cfg      Config
		keyFile  = fs.String("key", "var/registry-sim.key", "Ed25519 private key file (base64 seed); created when missing")
		users    = fs.String("users", "", "users file to push (.json or .xlsx)")
		idols    = fs.String("idols", "", "idols gallery to push (e.g. ../shared/testdata/gallery/idols.json)")
		per      = fs.Int("per-message", 100, "users per users message")
		report   = fs.Duration("report", 10*time.Second, "status line interval")
		once     = fs.Bool("once", false, "push, then exit instead of serving")
		verbose  = fs.Bool("v", false, "log to stderr")
		loglevel = slog.LevelWarn
	)
	fs.StringVar(&cfg.Broker, "broker", "tcp://127.0.0.1:1883", "broker URL")
	fs.StringVar(&cfg.Site, "site", "site1", "site id")
	fs.StringVar(&cfg.Prefix, "prefix", "kiosk", "topic prefix")
	fs.StringVar(&cfg.ClientID, "client-id", "", "MQTT client id (default registry-sim-SITE)")
	fs.StringVar(&cfg.Username, "username", "", "broker username")
	fs.StringVar(&cfg.Password, "password", os.Getenv("REGISTRY_SIM_PASSWORD"), "broker password (or $REGISTRY_SIM_PASSWORD)")
	fs.StringVar(&cfg.CAFile, "ca", "", "CA certificate file")
	fs.StringVar(&cfg.CertFile, "cert", "", "client certificate file")
	fs.StringVar(&cfg.KeyFile, "cert-key", "", "client certificate key file")
	fs.StringVar(&cfg.Dtype, "dtype", "json", "descriptor encoding: json, float32 or float64")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *verbose {
		loglevel = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: loglevel})).With("component", "registry-sim")
	key, created, err := loadOrCreateKey(*keyFile)
	if err != nil {
		return err
	}
	cfg.PrivateKey = key
	out := json.NewEncoder(stdout)
	_ = out.Encode(map[string]any{"event": "key", "file": *keyFile, "created": created,
		"registry_public_key": base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))})

	var recs []models.UserRecord
	if *idols != "" {
		r, err := LoadIdols(*idols)
		if err != nil {
			return err
		}
		recs = append(recs, r...)
	}
	if *users != "" {
		r, err := LoadUsers(ctx, *users, enc)
		if err != nil {
			return err
		}
		recs = append(recs, r...)
	}
	reg := New(cfg, logger)
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := reg.Open(octx); err != nil {
		return err
	}
	defer reg.Close()
	if len(recs) > 0 {
		start := time.Now()
		if err := reg.Push(ctx, recs, *per); err != nil {
			return err
		}
		_ = out.Encode(map[string]any{"event": "pushed", "users": len(recs), "seq": reg.Seq(), "seconds": time.Since(start).Seconds()})
	}
	if *once {
		return nil
	}
	t := time.NewTicker(*report)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s := reg.Stats()
			_ = out.Encode(map[string]any{"event": "stats", "seq": reg.Seq(), "received": s.Received, "duplicates": s.Duplicates,
				"by_kind": s.ByKind, "snapshots": s.Snapshots, "snapshot_requests": s.Requests})
		}
	}
}

// loadOrCreateKey reads a base64 Ed25519 seed, creating one (0600) when the
// file does not exist.
func loadOrCreateKey(path string) (ed25519.PrivateKey, bool, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(seed) != ed25519.SeedSize {
			return nil, false, fmt.Errorf("%s: not the base64 of a 32-byte Ed25519 seed", path)
		}
		return ed25519.NewKeyFromSeed(seed), false, nil
	}
	if !os.IsNotExist(err) {
		return nil, false, err
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, false, err
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(seed)+"\n"), 0o600); err != nil {
		return nil, false, fmt.Errorf("create key: %w", err)
	}
	return ed25519.NewKeyFromSeed(seed), true, nil
}
