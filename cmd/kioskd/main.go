// Command kioskd is the daemon of a face-attendance kiosk: camera pipeline,
// local cache of the central registry, MQTT sync and the local API. main only
// wires signals to Main; everything else lives in Main so tests can run it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	m := NewMain()
	if err := m.ParseFlags(ctx, os.Args[1:]); errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "kioskd:", err)
		os.Exit(2)
	}
	hup := make(chan os.Signal, 1)
	if m.Daemon() {
		signal.Notify(hup, syscall.SIGHUP) // reload, not terminate
	}
	if err := m.Run(ctx); err != nil {
		_ = m.Close()
		fmt.Fprintln(os.Stderr, "kioskd:", err)
		os.Exit(1)
	}
	if m.Daemon() {
		for done := false; !done; {
			select {
			case <-hup:
				_ = m.Reload(ctx) // logs what it applied or why not
			case <-ctx.Done():
				done = true
			}
		}
		stop() // a second signal kills at once
	}
	if err := m.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "kioskd:", err)
		os.Exit(1)
	}
}
