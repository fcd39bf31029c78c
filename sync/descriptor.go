package sync

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"

	"github.com/kioskd/kioskd/models"
)

// Descriptor dtypes for base64-encoded descriptors (little-endian).
const (
	DtypeFloat32 = "float32"
	DtypeFloat64 = "float64"
)

// DecodeDescriptor decodes a descriptor as central sends it: a JSON array of
// 128 numbers (numpy's float64 through json.dumps is the common case), or a
// JSON string holding the base64 of 128 little-endian float32 or float64
// values as dtype says ("<f4"/"<f8" are accepted too). It checks length,
// finiteness and norm (models.Descriptor.Validate). Errors are EINVALID.
func DecodeDescriptor(raw json.RawMessage, dtype string) (models.Descriptor, error) {
	var d models.Descriptor
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return d, models.Errorf(models.EINVALID, "descriptor: required")
	}
	switch raw[0] {
	case '[':
		vs, err := parseNumberArray(raw)
		if err != nil {
			return d, err
		}
		for i, v := range vs {
			if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > math.MaxFloat32 {
				return d, models.Errorf(models.EINVALID, "descriptor: value %d is not a finite float32", i)
			}
			d[i] = float32(v)
		}
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return d, models.Errorf(models.EINVALID, "descriptor: bad string")
		}
		if len(s) > 2048 {
			return d, models.Errorf(models.EINVALID, "descriptor: base64 too long")
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return d, models.Errorf(models.EINVALID, "descriptor: not base64")
		}
		switch dtype {
		case DtypeFloat32, "<f4", "float32le":
			if len(b) != 4*models.DescriptorSize {
				return d, models.Errorf(models.EINVALID, "descriptor: %d bytes of float32, want %d", len(b), 4*models.DescriptorSize)
			}
			for i := range d {
				d[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
		case DtypeFloat64, "<f8", "float64le":
			if len(b) != 8*models.DescriptorSize {
				return d, models.Errorf(models.EINVALID, "descriptor: %d bytes of float64, want %d", len(b), 8*models.DescriptorSize)
			}
			for i := range d {
				v := math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
				if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > math.MaxFloat32 {
					return d, models.Errorf(models.EINVALID, "descriptor: value %d is not a finite float32", i)
				}
				d[i] = float32(v)
			}
		default:
			return d, models.Errorf(models.EINVALID, "descriptor: dtype %q is not float32 or float64", dtype)
		}
	default:
		return d, models.Errorf(models.EINVALID, "descriptor: neither an array nor a base64 string")
	}
	if err := d.Validate(); err != nil {
		return d, err
	}
	return d, nil
}

// EncodeDescriptorArray encodes d as a JSON array of numbers (the shape
// Python's json.dumps(list(encoding)) produces).
func EncodeDescriptorArray(d *models.Descriptor) json.RawMessage {
	b := make([]byte, 0, 12*models.DescriptorSize)
	b = append(b, '[')
	for i, v := range d {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendFloat(b, float64(v))
	}
	return append(b, ']')
}

// EncodeDescriptorBase64 encodes d as a JSON string of base64 little-endian
// values of dtype (DtypeFloat32 or DtypeFloat64).
func EncodeDescriptorBase64(d *models.Descriptor, dtype string) json.RawMessage {
	var b []byte
	if dtype == DtypeFloat64 {
		b = make([]byte, 8*models.DescriptorSize)
		for i, v := range d {
			binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(float64(v)))
		}
	} else {
		b = make([]byte, 4*models.DescriptorSize)
		for i, v := range d {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
	}
	out, _ := json.Marshal(base64.StdEncoding.EncodeToString(b))
	return out
}

// parseNumberArray parses a JSON array of exactly DescriptorSize numbers
// without reflection (encoding/json is the bottleneck of bulk pushes). It
// accepts only JSON number syntax; strconv checks each number.
func parseNumberArray(raw []byte) ([]float64, error) {
	body := bytes.TrimSpace(raw[1:])
	if len(body) == 0 || body[len(body)-1] != ']' {
		return nil, models.Errorf(models.EINVALID, "descriptor: not an array of numbers")
	}
	body = body[:len(body)-1]
	out := make([]float64, 0, models.DescriptorSize)
	for len(bytes.TrimSpace(body)) > 0 {
		if len(out) == models.DescriptorSize {
			return nil, models.Errorf(models.EINVALID, "descriptor: more than %d values", models.DescriptorSize)
		}
		tok := body
		if i := bytes.IndexByte(body, ','); i >= 0 {
			tok, body = body[:i], body[i+1:]
			if len(bytes.TrimSpace(body)) == 0 {
				return nil, models.Errorf(models.EINVALID, "descriptor: trailing comma")
			}
		} else {
			body = nil
		}
		tok = bytes.TrimSpace(tok)
		if !jsonNumber(tok) {
			return nil, models.Errorf(models.EINVALID, "descriptor: not an array of numbers")
		}
		v, err := strconv.ParseFloat(string(tok), 64)
		if err != nil {
			return nil, models.Errorf(models.EINVALID, "descriptor: value %d is not a finite number", len(out))
		}
		out = append(out, v)
	}
	if len(out) != models.DescriptorSize {
		return nil, models.Errorf(models.EINVALID, "descriptor: %d values, want %d", len(out), models.DescriptorSize)
	}
	return out, nil
}

// jsonNumber reports whether b is a JSON number (no NaN, Infinity, hex, +).
func jsonNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return false
	}
	if b[i] == '0' {
		i++
	} else if b[i] >= '1' && b[i] <= '9' {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	} else {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	return i == len(b)
}
