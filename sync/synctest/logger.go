package synctest

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
)

// Logger returns a logger writing through tb.Logf at the level named by
// $KIOSK_TEST_LOG (debug, info, warn, error; default warn).
func Logger(tb testing.TB, component string) *slog.Logger {
	level := slog.LevelWarn
	switch strings.ToLower(os.Getenv("KIOSK_TEST_LOG")) {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "error":
		level = slog.LevelError
	}
	return slog.New(&tbHandler{tb: tb, level: level}).With("component", component)
}

type tbHandler struct {
	tb    testing.TB
	level slog.Level
	attrs []slog.Attr
}

func (h *tbHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *tbHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	for _, a := range h.attrs {
		b.WriteString(" " + a.String())
	}
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	defer func() { _ = recover() }() // a late log after the test ended is dropped
	h.tb.Log(b.String())
	return nil
}

func (h *tbHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &tbHandler{tb: h.tb, level: h.level, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}

func (h *tbHandler) WithGroup(string) slog.Handler { return h }
