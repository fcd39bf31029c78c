// Command registry-sim plays the central registry over MQTT for demos and
// tests (see docs/mqtt.md). It cannot compute descriptors from photos; use
// `kioskd registry-sim` for users files that list photos.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kioskd/kioskd/sync/registrysim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := registrysim.RunRegistrySim(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "registry-sim:", err)
		os.Exit(1)
	}
}
