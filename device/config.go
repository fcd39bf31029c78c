package device

import (
	"fmt"
	"strings"
	"time"

	"github.com/kioskd/kioskd/models"
)

// Config says where frames come from and how strict the kiosk is. Zero values
// are not defaults: start from DefaultConfig. Validation errors name the
// yaml field cmd/kioskd maps each field from (device.<field>).
type Config struct {
	// Source is where frames come from: a camera index ("0"), device
	// ("/dev/video0") or stable link (/dev/v4l/by-id/...), an rtsp://,
	// http:// or https:// URL, a video file, or a folder of images (played
	// in name order).
	Source string
	// Width, Height and FPS are requested from cameras; files keep their own.
	Width  int
	Height int
	FPS    float64
	// Pace replays video files and image folders at their frame rate (a
	// folder uses FPS) instead of as fast as frames can be processed; paced
	// and live sources drop frames the pipeline is too busy for.
	Pace bool
	// Loop restarts a video file or image folder at its end instead of
	// ending: the replay demo keeps playing until somebody is enrolled.
	Loop bool

	// KioskID goes into every AttendanceEvent.
	KioskID string

	// DetectWidth downscales wider frames before the HOG scan (dlib finds
	// faces from about 80 px, so faces smaller than 80*width/DetectWidth px
	// are not seen). 0 scans at full size.
	DetectWidth int
	// DetectAdjust shifts dlib's HOG threshold: positive is stricter.
	DetectAdjust float64
	// MinFaceSize is the smallest face width, in frame pixels, worth
	// identifying; smaller faces get "move closer".
	MinFaceSize int
	// MinSharpness is the least variance of the Laplacian of the face,
	// measured at a fixed face width of 128 px; below it: "hold still".
	MinSharpness float64
	// MinContrast is the least standard deviation of the face's luma
	// (0-255): below it the face holds too little signal to encode ("too
	// dark" when the face is under mid-grey, else "too bright"). It judges
	// the signal, not the skin: a dark-skinned face in a dim room has a
	// low mean luma but keeps its contrast. See docs/liveness.md.
	MinContrast float64
	// MaxClipped is the largest fraction of the face's pixels that may be
	// crushed to black or burnt to white.
	MaxClipped float64
	// MaxYaw bounds the face's turn as facePose measures it: |dl-dr|/(dl+dr),
	// dl and dr the nose tip's distances to the two ends of the jaw line
	// (0 = frontal, towards 1 = profile).
	MaxYaw float64
	// MaxRoll bounds the eyes' tilt in degrees.
	MaxRoll float64

	// EncodeFaceSize is the face width the crop handed to the encoder is
	// upscaled to when the face is smaller (dlib's HOG misses faces under
	// about 80 px, and descriptors get noisy below about 100 px).
	EncodeFaceSize int
	// EncodeInterval spaces encodings of one track; 0 encodes every gated
	// frame the encoder has time for.
	EncodeInterval time.Duration
	// ConfirmK of the last ConfirmM encodings of a track must name the same
	// user before attendance is recorded.
	ConfirmK int
	ConfirmM int
	// Cooldown is the least time between two events for one user.
	Cooldown time.Duration
	// TrackIoU is the least overlap between the face's boxes in consecutive
	// frames for them to be the same person.
	TrackIoU float64
	// TrackTimeout ends a track after this long without its face.
	TrackTimeout time.Duration
	// TrackContinuity is the least similarity (normalised cross-correlation
	// of the eye-aligned grey face, -1..1) between a track's consecutive
	// faces; below it the track ends and its votes and liveness evidence
	// start over, so one photo swapped for another in place cannot pass
	// for a live face's motion. 0 turns the check off.
	TrackContinuity float64

	// Liveness requires proof that the face is a live person (a blink or
	// non-rigid facial motion) before recording attendance.
	Liveness bool
	// ShapePredictorPath is dlib's shape_predictor_68_face_landmarks.dat,
	// used for the pose gate and for liveness.
	ShapePredictorPath string
	// LivenessMotion is the least change, within one second, of one of the
	// face's expression measures (mouth gap and height over the nose's
	// length, eye opening over the lid-to-brow height, the nose tip's
	// parallax) that counts as a live face. The measures are chosen so that
	// a photo moved, tilted or folded along the nose leaves them nearly
	// unchanged (measured: at most 0.10, 0.09 on photos the gates accept),
	// while speech, a squint or a head turn changes them by 0.2-0.9; see
	// docs/liveness.md.
	LivenessMotion float64
	// BlinkEAR is the eye aspect ratio below which an eye counts as closed;
	// a blink is a closed eye between open ones.
	BlinkEAR float64
	// LivenessTimeout is how long a recognised track may go without proof
	// of liveness before the screen says "liveness failed".
	LivenessTimeout time.Duration

	// PreviewInterval spaces the JPEG previews kept for the kiosk screen.
	PreviewInterval time.Duration
	// PreviewQuality is the preview's JPEG quality (1-100).
	PreviewQuality int
	// UnknownDir, when set, keeps a JPEG crop of each unknown face there.
	// Off by default: faces of people who are not enrolled are personal data.
	UnknownDir string

	// IdleChange is the mean absolute grey difference (0-255, on an 80x60
	// copy) from the frame last given to the face detector that counts as
	// change while nobody is in view; IdleHeartbeat is the longest gap
	// between two frames given to the detector then (0: every frame goes
	// to it). See idle.go and docs/camera.md.
	IdleChange    float64
	IdleHeartbeat time.Duration
	// IdleProbeWidth is the width a heartbeat frame is scanned at first;
	// only when that finds a face does the frame get the whole gate (0:
	// the heartbeat gets the whole gate at DetectWidth).
	IdleProbeWidth int

	// CameraCheck is how long frames must stay black or unchanged before
	// the camera is reported black or frozen (camhealth.go); 0 turns the
	// check off.
	CameraCheck time.Duration

	// Mode is face (1:N), id_face (ID first, then 1:1) or auto (1:N when
	// clear, else ask for the ID); see mode.go. kioskd's file sets it as
	// recognizer.mode.
	Mode Mode

	// ReopenMin and ReopenMax bound the backoff between attempts to reopen
	// a failed source.
	ReopenMin time.Duration
	ReopenMax time.Duration
}

// DefaultConfig returns settings for a USB webcam at 640x480 and 30 fps with
// a person about 40-80 cm away: a face is then 100-250 px wide.
func DefaultConfig() Config {
	return Config{
		Source:             "0",
		Width:              640,
		Height:             480,
		FPS:                30,
		Pace:               false,
		Loop:               false,
		KioskID:            "kiosk",
		DetectWidth:        640,
		DetectAdjust:       0,
		MinFaceSize:        90,
		MinSharpness:       15,
		MinContrast:        DefaultMinContrast,
		MaxClipped:         0.25,
		MaxYaw:             0.35,
		MaxRoll:            20,
		EncodeFaceSize:     150,
		EncodeInterval:     0,
		ConfirmK:           2,
		ConfirmM:           3,
		Cooldown:           5 * time.Minute,
		TrackIoU:           0.3,
		TrackTimeout:       time.Second,
		TrackContinuity:    DefaultTrackContinuity,
		Liveness:           true,
		LivenessMotion:     0.15,
		ShapePredictorPath: "var/models/shape_predictor_68_face_landmarks.dat",
		BlinkEAR:           0.19,
		LivenessTimeout:    5 * time.Second,
		PreviewInterval:    100 * time.Millisecond,
		PreviewQuality:     75,
		IdleChange:         2,
		IdleHeartbeat:      333 * time.Millisecond,
		IdleProbeWidth:     400,
		CameraCheck:        5 * time.Second,
		ReopenMin:          250 * time.Millisecond,
		ReopenMax:          30 * time.Second,
		Mode:               ModeFace,
	}
}

// Validate returns an EINVALID error naming the first bad field, or nil.
func (c *Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return models.Errorf(models.EINVALID, "device.%s: "+format, append([]any{field}, args...)...).WithDetail("field", "device."+field)
	}
	switch {
	case strings.TrimSpace(c.Source) == "":
		return bad("source", "required (camera index, device, URL, video file or image folder)")
	case c.Width < 0 || c.Width > 8192:
		return bad("width", "%d is outside 0-8192", c.Width)
	case c.Height < 0 || c.Height > 8192:
		return bad("height", "%d is outside 0-8192", c.Height)
	case c.FPS < 0 || c.FPS > 240:
		return bad("fps", "%v is outside 0-240", c.FPS)
	case c.KioskID == "" || len(c.KioskID) > models.MaxIDLen:
		return bad("kiosk_id", "required, at most %d characters", models.MaxIDLen)
	case c.DetectWidth != 0 && (c.DetectWidth < 160 || c.DetectWidth > 4096):
		return bad("detect_width", "%d is outside 160-4096 (or 0 for full size)", c.DetectWidth)
	case c.DetectAdjust < -1 || c.DetectAdjust > 2:
		return bad("detect_adjust", "%v is outside -1 to 2", c.DetectAdjust)
	case c.MinFaceSize < 40 || c.MinFaceSize > 2000:
		return bad("min_face_size", "%d is outside 40-2000 px", c.MinFaceSize)
	case c.MinSharpness < 0:
		return bad("min_sharpness", "negative")
	case c.MinContrast < 0 || c.MinContrast > 100:
		return bad("min_contrast", "%v is outside 0-100", c.MinContrast)
	case c.MaxClipped <= 0 || c.MaxClipped > 1:
		return bad("max_clipped", "%v is outside (0, 1]", c.MaxClipped)
	case c.MaxYaw <= 0 || c.MaxYaw > 1:
		return bad("max_yaw", "%v is outside (0, 1]", c.MaxYaw)
	case c.MaxRoll <= 0 || c.MaxRoll > 90:
		return bad("max_roll", "%v is outside (0, 90] degrees", c.MaxRoll)
	case c.EncodeFaceSize < 80 || c.EncodeFaceSize > 600:
		return bad("encode_face_size", "%d is outside 80-600 px", c.EncodeFaceSize)
	case c.EncodeInterval < 0:
		return bad("encode_interval", "negative")
	case c.ConfirmM < 1 || c.ConfirmM > 50:
		return bad("confirm_m", "%d is outside 1-50", c.ConfirmM)
	case c.ConfirmK < 1 || c.ConfirmK > c.ConfirmM:
		return bad("confirm_k", "%d is outside 1-confirm_m (%d)", c.ConfirmK, c.ConfirmM)
	case c.Cooldown < 0:
		return bad("cooldown", "negative")
	case c.TrackIoU <= 0 || c.TrackIoU >= 1:
		return bad("track_iou", "%v is outside (0, 1)", c.TrackIoU)
	case c.TrackContinuity < 0 || c.TrackContinuity >= 1:
		return bad("track_continuity", "%v is outside [0, 1)", c.TrackContinuity)
	case c.TrackTimeout <= 0:
		return bad("track_timeout", "must be positive")
	case c.ShapePredictorPath == "":
		return bad("shape_predictor", "required: the path of shape_predictor_68_face_landmarks.dat (pose and liveness)")
	case c.LivenessMotion <= 0 || c.LivenessMotion > 1:
		return bad("liveness_motion", "%v is outside (0, 1]", c.LivenessMotion)
	case c.BlinkEAR <= 0 || c.BlinkEAR > 0.5:
		return bad("blink_ear", "%v is outside (0, 0.5]", c.BlinkEAR)
	case c.LivenessTimeout <= 0:
		return bad("liveness_timeout", "must be positive")
	case c.PreviewInterval < 0:
		return bad("preview_interval", "negative")
	case c.PreviewQuality < 1 || c.PreviewQuality > 100:
		return bad("preview_quality", "%d is outside 1-100", c.PreviewQuality)
	case c.Mode != ModeFace && c.Mode != ModeIDFace && c.Mode != ModeAuto:
		return bad("mode", "%q is not one of face, id_face, auto", c.Mode)
	case c.IdleChange <= 0 || c.IdleChange > 255:
		return bad("idle_change", "%v is outside (0, 255]", c.IdleChange)
	case c.IdleProbeWidth != 0 && (c.IdleProbeWidth < 160 || c.IdleProbeWidth > 4096):
		return bad("idle_probe_width", "%d is outside 160-4096 (or 0 for the full scan)", c.IdleProbeWidth)
	case c.IdleHeartbeat < 0 || c.IdleHeartbeat > 5*time.Second:
		return bad("idle_heartbeat", "%v is outside 0-5s (0 gives every frame to the face detector)", c.IdleHeartbeat)
	case c.CameraCheck < 0:
		return bad("camera_check", "negative")
	case c.ReopenMin <= 0:
		return bad("reopen_min", "must be positive")
	case c.ReopenMax < c.ReopenMin:
		return bad("reopen_max", "%v is less than reopen_min %v", c.ReopenMax, c.ReopenMin)
	}
	return nil
}

func (c *Config) String() string {
	return fmt.Sprintf("source=%q %dx%d@%v pace=%v loop=%v", c.Source, c.Width, c.Height, c.FPS, c.Pace, c.Loop)
}
