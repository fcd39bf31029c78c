package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"io"
	"os"

	"github.com/kioskd/kioskd/models"
)

// encodeLine is one JSON line of `kioskd encode`: the central team's scripts
// read descriptors from it, so its field names are a contract.
type encodeLine struct {
	File  string       `json:"file"`
	Faces []encodeFace `json:"faces,omitempty"`
	Error *encodeError `json:"error,omitempty"`
}

type encodeFace struct {
	Box        encodeBox `json:"box"`
	Descriptor []float32 `json:"descriptor"`
}

// encodeBox is a face box in face_recognition's (top, right, bottom, left)
// terms plus width and height, so either side's scripts can use it.
type encodeBox struct {
	Top    int `json:"top"`
	Right  int `json:"right"`
	Bottom int `json:"bottom"`
	Left   int `json:"left"`
	Width  int `json:"width"`
	Height int `json:"height"`
}

type encodeError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// maxEncodeFileSize bounds what `kioskd encode` reads of one file before the
// encoder's own byte and pixel limits apply.
const maxEncodeFileSize = 64 << 20

// runEncode prints one JSON line per image. It exits non-zero only when it
// cannot run at all; per-image failures are reported in the line.
func (m *Main) runEncode(ctx context.Context) error {
	if len(m.Args) == 0 {
		return fmt.Errorf("encode: name at least one image file")
	}
	if err := m.openEncoder(); err != nil {
		return err
	}
	enc := json.NewEncoder(m.Stdout)
	for _, path := range m.Args {
		line := encodeLine{File: path}
		faces, err := m.encodeFile(ctx, path)
		if err != nil {
			line.Error = &encodeError{Code: models.ErrorCode(err), Message: models.ErrorMessage(err)}
			if line.Error.Code == models.EINTERNAL {
				line.Error.Message = err.Error()
			}
		}
		for _, f := range faces {
			line.Faces = append(line.Faces, encodeFace{Box: boxOf(f.Box), Descriptor: f.Descriptor[:]})
		}
		if err := enc.Encode(line); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
	}
	return nil
}

func (m *Main) encodeFile(ctx context.Context, path string) ([]models.Face, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, models.Errorf(models.EBADIMAGE, "cannot open %s: %v", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxEncodeFileSize+1))
	if err != nil {
		return nil, models.Errorf(models.EBADIMAGE, "cannot read %s: %v", path, err)
	} else if len(b) > maxEncodeFileSize {
		return nil, models.Errorf(models.ETOOLARGE, "%s is larger than %d MiB", path, maxEncodeFileSize>>20)
	}
	faces, err := m.Encoder.Encode(ctx, b)
	if err != nil {
		return nil, err
	} else if len(faces) == 0 {
		return nil, models.Errorf(models.ENOFACE, "no face found in %s", path)
	}
	return faces, nil
}

func boxOf(r image.Rectangle) encodeBox {
	return encodeBox{Top: r.Min.Y, Right: r.Max.X, Bottom: r.Max.Y, Left: r.Min.X, Width: r.Dx(), Height: r.Dy()}
}
