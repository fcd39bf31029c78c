package device

import (
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
)

func TestDefaultConfigValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidateNamesField(t *testing.T) {
	for field, mutate := range map[string]func(c *Config){
		"device.source":          func(c *Config) { c.Source = " " },
		"device.confirm_k":       func(c *Config) { c.ConfirmK = 4; c.ConfirmM = 3 },
		"device.confirm_m":       func(c *Config) { c.ConfirmM = 0 },
		"device.cooldown":        func(c *Config) { c.Cooldown = -time.Second },
		"device.min_face_size":   func(c *Config) { c.MinFaceSize = 10 },
		"device.reopen_max":      func(c *Config) { c.ReopenMax = time.Millisecond },
		"device.track_iou":       func(c *Config) { c.TrackIoU = 1 },
		"device.shape_predictor": func(c *Config) { c.ShapePredictorPath = "" },
		"device.min_contrast":    func(c *Config) { c.MinContrast = -1 },
		"device.max_clipped":     func(c *Config) { c.MaxClipped = 0 },
	} {
		c := DefaultConfig()
		mutate(&c)
		err := c.Validate()
		if models.ErrorCode(err) != models.EINVALID || models.ErrorDetails(err)["field"] != field {
			t.Errorf("%s: got %v", field, err)
		}
	}
}
