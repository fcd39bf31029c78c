// Command registry-sim plays the central registry over MQTT for demos and
// tests (see docs/mqtt.md). When the dlib models are found (in
// $KIOSK_MODELS_DIR, else var/models) it computes descriptors for users files
// that list photos; without them such files are refused.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/recognizer"
	"github.com/kioskd/kioskd/sync/registrysim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "registry-sim:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("component", "registry-sim")
	cfg := recognizer.DefaultEncoderConfig()
	if dir := os.Getenv("KIOSK_MODELS_DIR"); dir != "" {
		cfg.ModelsDir = dir
	}
	cfg.Logger = logger
	var enc models.Encoder
	e := recognizer.NewEncoder(cfg)
	if err := e.Open(); err != nil {
		logger.Warn("no encoder: users files must carry encodings", "err", err)
	} else {
		defer e.Close()
		enc = e
	}
	return registrysim.RunRegistrySim(ctx, args, os.Stdout, enc)
}
