package device

import "github.com/kioskd/kioskd/models"

// OpenGater validates cfg, loads dlib's HOG detector and the 68-point shape
// predictor it names and returns a Gater on them, with the function that
// frees all three (after the pipeline using the Gater has closed).
func OpenGater(cfg *Config) (*Gater, func() error, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	shape, err := NewShapePredictor(cfg.ShapePredictorPath)
	if err != nil {
		return nil, nil, models.Errorf(models.EUNAVAILABLE, "The landmark model %s cannot be loaded: run `make models`.", cfg.ShapePredictorPath).WithDetail("error", err.Error())
	}
	det, err := NewFaceDetector()
	if err != nil {
		shape.Close()
		return nil, nil, err
	}
	gater, err := NewGater(cfg, det, shape)
	if err != nil {
		shape.Close()
		det.Close()
		return nil, nil, err
	}
	return gater, func() error {
		gater.Close()
		det.Close()
		shape.Close()
		return nil
	}, nil
}
