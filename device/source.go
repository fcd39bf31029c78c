package device

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gocv.io/x/gocv"
)

// FrameSource yields frames. Read fills m with the next frame; it returns
// io.EOF at the end of a file or folder (unless it loops) and another error when the source
// failed (a camera unplugged, a stream dropped): the pipeline then closes it
// and opens a new one with backoff.
type FrameSource interface {
	Read(m *gocv.Mat) error
	// Live reports whether frames arrive on their own clock (cameras,
	// streams): such sources are drained continuously and frames the
	// pipeline is too busy for are dropped.
	Live() bool
	// FPS returns the source's frame rate, 0 when unknown.
	FPS() float64
	Close() error
}

// SourceKind says what a Config.Source names.
type SourceKind string

// Source kinds.
const (
	SourceCamera SourceKind = "camera"
	SourceURL    SourceKind = "url"
	SourceFile   SourceKind = "file"
	SourceFolder SourceKind = "folder"
)

// ParseSource says what kind of source s names and returns the camera index
// for cameras ("0", "/dev/video2"); a stable path (/dev/v4l/by-id/...,
// /dev/v4l/by-path/...) is a camera whose index, -1 here, is resolved each
// time it is opened (the same camera may come back under another index).
func ParseSource(s string) (SourceKind, int, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", 0, errors.New("empty source")
	case strings.HasPrefix(s, "/dev/v4l/by-id/") || strings.HasPrefix(s, "/dev/v4l/by-path/"):
		if filepath.Clean(s) != s || strings.Count(s, "/") != 4 {
			return "", 0, fmt.Errorf("source %q: not a /dev/v4l/by-id/ or /dev/v4l/by-path/ device link", s)
		}
		return SourceCamera, -1, nil
	case strings.HasPrefix(s, "/dev/video"):
		n, err := strconv.Atoi(strings.TrimPrefix(s, "/dev/video"))
		if err != nil || n < 0 {
			return "", 0, fmt.Errorf("source %q: not a /dev/videoN device", s)
		}
		return SourceCamera, n, nil
	case strings.Contains(s, "://"):
		scheme := strings.ToLower(s[:strings.Index(s, "://")])
		switch scheme {
		case "rtsp", "rtsps", "http", "https", "rtmp", "udp", "tcp":
			return SourceURL, 0, nil
		}
		return "", 0, fmt.Errorf("source %q: unsupported URL scheme %q", s, scheme)
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > 63 {
			return "", 0, fmt.Errorf("source %q: camera index outside 0-63", s)
		}
		return SourceCamera, n, nil
	}
	if st, err := os.Stat(s); err == nil && st.IsDir() {
		return SourceFolder, 0, nil
	}
	return SourceFile, 0, nil
}

// OpenSource opens the source cfg names.
func OpenSource(cfg *Config) (FrameSource, error) {
	kind, index, err := ParseSource(cfg.Source)
	if err != nil {
		return nil, err
	}
	switch kind {
	case SourceFolder:
		return openFolder(cfg.Source, cfg.FPS, cfg.Pace, cfg.Loop)
	case SourceCamera:
		if index < 0 {
			if index, err = resolveCamera(cfg.Source); err != nil {
				return nil, err
			}
		}
		vc, err := gocv.OpenVideoCapture(index)
		if err != nil {
			return nil, fmt.Errorf("open camera %d: %w", index, err)
		}
		if !vc.IsOpened() {
			vc.Close()
			return nil, fmt.Errorf("open camera %d: not available", index)
		}
		if cfg.Width > 0 && cfg.Height > 0 {
			vc.Set(gocv.VideoCaptureFrameWidth, float64(cfg.Width))
			vc.Set(gocv.VideoCaptureFrameHeight, float64(cfg.Height))
		}
		if cfg.FPS > 0 {
			vc.Set(gocv.VideoCaptureFPS, cfg.FPS)
		}
		// A small driver buffer keeps latency low; the pipeline drains it.
		vc.Set(gocv.VideoCaptureBufferSize, 1)
		return &captureSource{vc: vc, name: cfg.Source, live: true, fps: vc.Get(gocv.VideoCaptureFPS)}, nil
	case SourceURL:
		vc, err := gocv.OpenVideoCapture(cfg.Source)
		if err != nil || !vc.IsOpened() {
			if vc != nil {
				vc.Close()
			}
			return nil, fmt.Errorf("open stream %s: not available", redactURL(cfg.Source))
		}
		return &captureSource{vc: vc, name: redactURL(cfg.Source), live: true, fps: vc.Get(gocv.VideoCaptureFPS)}, nil
	default:
		if _, err := os.Stat(cfg.Source); err != nil {
			return nil, fmt.Errorf("open video file: %w", err)
		}
		vc, err := gocv.VideoCaptureFile(cfg.Source)
		if err != nil || !vc.IsOpened() {
			if vc != nil {
				vc.Close()
			}
			return nil, fmt.Errorf("open video file %s: cannot decode", cfg.Source)
		}
		s := &captureSource{vc: vc, name: cfg.Source, file: true, loop: cfg.Loop, fps: vc.Get(gocv.VideoCaptureFPS)}
		if cfg.Pace {
			s.pacer = newPacer(s.fps)
		}
		return s, nil
	}
}

// resolveCamera follows a stable device link to /dev/videoN and returns N.
func resolveCamera(link string) (int, error) {
	dev, err := filepath.EvalSymlinks(link)
	if err != nil {
		return 0, fmt.Errorf("open camera %s: %w (unplugged?)", link, err)
	}
	kind, index, err := ParseSource(dev)
	if err != nil || kind != SourceCamera || index < 0 {
		return 0, fmt.Errorf("open camera %s: it points to %s, not a /dev/videoN device", link, dev)
	}
	return index, nil
}

// captureSource reads through an OpenCV VideoCapture.
type captureSource struct {
	vc    *gocv.VideoCapture
	name  string
	live  bool
	file  bool
	loop  bool // a file starts over at its end
	fps   float64
	pacer *pacer
	// read counts frames since the last start over: a looping file that
	// yields none ends instead of spinning.
	read int
}

func (s *captureSource) Read(m *gocv.Mat) error {
	if s.pacer != nil {
		s.pacer.wait()
	}
	if s.vc.Read(m) && !m.Empty() {
		s.read++
		return nil
	}
	if !s.file {
		return fmt.Errorf("read %s: no frame", s.name)
	}
	if !s.loop || s.read == 0 {
		return io.EOF
	}
	s.read = 0
	s.vc.Set(gocv.VideoCapturePosFrames, 0)
	if !s.vc.Read(m) || m.Empty() {
		return io.EOF
	}
	s.read++
	return nil
}

func (s *captureSource) Live() bool   { return s.live || s.pacer != nil }
func (s *captureSource) FPS() float64 { return s.fps }
func (s *captureSource) Close() error { return s.vc.Close() }

// folderSource plays the images of a folder in name order.
type folderSource struct {
	dir   string
	files []string
	next  int
	loop  bool // start over after the last image
	fps   float64
	pacer *pacer
}

var imageExts = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".bmp": true, ".webp": true}

func openFolder(dir string, fps float64, pace, loop bool) (*folderSource, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open image folder: %w", err)
	}
	s := &folderSource{dir: dir, fps: fps, loop: loop}
	for _, e := range ents {
		if !e.IsDir() && imageExts[strings.ToLower(filepath.Ext(e.Name()))] {
			s.files = append(s.files, e.Name())
		}
	}
	sort.Strings(s.files)
	if len(s.files) == 0 {
		return nil, fmt.Errorf("open image folder %s: no images", dir)
	}
	if pace {
		s.pacer = newPacer(fps)
	}
	return s, nil
}

func (s *folderSource) Read(m *gocv.Mat) error {
	if s.next >= len(s.files) {
		if !s.loop {
			return io.EOF
		}
		s.next = 0
	}
	if s.pacer != nil {
		s.pacer.wait()
	}
	p := filepath.Join(s.dir, s.files[s.next])
	// Refuse huge files before decoding them: a folder is outside input.
	st, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	if st.Size() > maxImageFileBytes {
		return fmt.Errorf("read %s: %d bytes is too large", p, st.Size())
	}
	img := gocv.IMRead(p, gocv.IMReadColor)
	if img.Empty() {
		img.Close()
		return fmt.Errorf("read %s: not a decodable image", p)
	}
	s.next++
	img.CopyTo(m)
	img.Close()
	return nil
}

const maxImageFileBytes = 50 << 20

func (s *folderSource) Live() bool   { return s.pacer != nil }
func (s *folderSource) FPS() float64 { return s.fps }
func (s *folderSource) Close() error { return nil }

// pacer releases one frame per period of the source's frame rate, measured
// from the first frame, so that slow processing never makes replay drift.
type pacer struct {
	period time.Duration
	start  time.Time
	n      int64
}

func newPacer(fps float64) *pacer {
	if fps <= 0 || fps > 240 {
		fps = 30
	}
	return &pacer{period: time.Duration(float64(time.Second) / fps)}
}

func (p *pacer) wait() {
	if p.start.IsZero() {
		p.start = time.Now()
	}
	due := p.start.Add(time.Duration(p.n) * p.period)
	p.n++
	if d := time.Until(due); d > 0 {
		time.Sleep(d)
	}
}

// redactURL hides the password of a stream URL in logs and status.
func redactURL(s string) string {
	i := strings.Index(s, "://")
	at := strings.LastIndex(s, "@")
	if i < 0 || at < i {
		return s
	}
	cred := s[i+3 : at]
	if c := strings.Index(cred, ":"); c >= 0 {
		return s[:i+3] + cred[:c] + ":xxxxx" + s[at:]
	}
	return s
}
