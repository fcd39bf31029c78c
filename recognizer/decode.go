package recognizer

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"

	"gocv.io/x/gocv"

	"github.com/kioskd/kioskd/models"
)

// Image formats the encoder accepts.
const (
	formatJPEG = "jpeg"
	formatPNG  = "png"
)

// minImageSide is the smallest side that can hold a detectable face: dlib's
// HOG window is 80 px, 40 px after one 2x upscale.
const minImageSide = 40

// limits bounds what the decoder accepts before it allocates pixels.
type limits struct {
	maxBytes  int64
	maxPixels int
}

// sniff names the format from the magic bytes.
func sniff(b []byte) string {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return formatJPEG
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return formatPNG
	}
	return ""
}

// header is what the decoder learns from an image's header alone.
type header struct {
	format      string
	width       int // as stored
	height      int
	model       color.Model
	orientation Orientation
}

// size returns the upright size.
func (h header) size() (int, int) { return orientedSize(h.width, h.height, h.orientation) }

// readHeader checks an image's bytes and header against lim without decoding
// pixels. Errors: EBADIMAGE, ETOOLARGE.
func readHeader(b []byte, lim limits) (header, error) {
	var h header
	if len(b) == 0 {
		return h, models.Errorf(models.EBADIMAGE, "The image is empty: send a JPEG or PNG photo.")
	}
	if lim.maxBytes > 0 && int64(len(b)) > lim.maxBytes {
		return h, models.Errorf(models.ETOOLARGE, "The image is %d MB; the limit is %d MB: send a smaller photo.",
			mb(int64(len(b))), mb(lim.maxBytes)).WithDetail("bytes", len(b)).WithDetail("max_bytes", lim.maxBytes)
	}
	h.format = sniff(b)
	var cfg image.Config
	var err error
	switch h.format {
	case formatJPEG:
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(b))
		h.orientation = jpegOrientation(b)
	case formatPNG:
		cfg, err = png.DecodeConfig(bytes.NewReader(b))
		h.orientation = pngOrientation(b)
	default:
		return h, models.Errorf(models.EBADIMAGE, "The file is not a JPEG or PNG image.")
	}
	if err != nil {
		return h, models.Errorf(models.EBADIMAGE, "The image cannot be read (%s header: %v): send an undamaged JPEG or PNG photo.", h.format, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return h, models.Errorf(models.EBADIMAGE, "The image has no pixels (%dx%d).", cfg.Width, cfg.Height)
	}
	h.width, h.height, h.model = cfg.Width, cfg.Height, cfg.ColorModel
	if px := int64(cfg.Width) * int64(cfg.Height); lim.maxPixels > 0 && px > int64(lim.maxPixels) {
		return h, models.Errorf(models.ETOOLARGE, "The image is %dx%d (%.1f megapixels); the limit is %.1f megapixels: send a smaller photo.",
			cfg.Width, cfg.Height, float64(px)/1e6, float64(lim.maxPixels)/1e6).
			WithDetail("width", cfg.Width).WithDetail("height", cfg.Height).WithDetail("max_pixels", lim.maxPixels)
	}
	// Go's PNG decoder holds 16-bit images at 8 bytes a pixel: the pixel
	// limit alone let a 36 MP 16-bit PNG take twice an 8-bit one's memory.
	if bpp := decodedBytesPerPixel(h.format, cfg.ColorModel); lim.maxPixels > 0 &&
		int64(cfg.Width)*int64(cfg.Height)*bpp > int64(lim.maxPixels)*maxDecodedBytesPerPixel {
		need, budget := int64(cfg.Width)*int64(cfg.Height)*bpp, int64(lim.maxPixels)*maxDecodedBytesPerPixel
		return h, models.Errorf(models.ETOOLARGE, "The image is %dx%d at %d bytes a pixel: decoding it needs %d MB, more than the %d MB limit: save it with 8 bits per channel or smaller.",
			cfg.Width, cfg.Height, bpp, mb(need), mb(budget)).
			WithDetail("width", cfg.Width).WithDetail("height", cfg.Height).WithDetail("bytes_per_pixel", bpp)
	}
	if h.orientation < 1 || h.orientation > 8 {
		h.orientation = 1
	}
	return h, nil
}

// maxDecodedBytesPerPixel is the decoding budget per allowed pixel: an
// 8-bit RGBA image at the pixel limit.
const maxDecodedBytesPerPixel = 4

// decodedBytesPerPixel is what one pixel of an image with model takes once
// decoded: Go's PNG decoder keeps the file's depth; JPEG goes through libjpeg
// to 8-bit BGR.
func decodedBytesPerPixel(format string, model color.Model) int64 {
	if format == formatJPEG {
		return 3
	}
	switch model {
	case color.GrayModel:
		return 1
	case color.Gray16Model:
		return 2
	case color.RGBA64Model, color.NRGBA64Model:
		return 8
	}
	if _, ok := model.(color.Palette); ok {
		return 1
	}
	return 4
}

func mb(n int64) int64 { return (n + 1<<20 - 1) >> 20 }

// bgrImage is 8-bit BGR pixels, rows packed (OpenCV's layout).
type bgrImage struct {
	w, h int
	pix  []byte
}

// decodeBGR decodes b (whose header h was checked) into upright BGR pixels:
// grayscale is replicated, CMYK/YCCK converted, 16-bit reduced to 8,
// palettes expanded, alpha dropped without compositing (as Pillow's
// convert("RGB") does, which face_recognition uses). Errors: EBADIMAGE.
func decodeBGR(b []byte, h header) (*bgrImage, error) {
	var img image.Image
	var err error
	switch h.format {
	case formatJPEG:
		img, err = jpeg.Decode(bytes.NewReader(b))
	case formatPNG:
		img, err = png.Decode(bytes.NewReader(b))
	default:
		err = fmt.Errorf("unknown format")
	}
	if err != nil {
		return nil, models.Errorf(models.EBADIMAGE, "The image cannot be decoded (%v): send an undamaged JPEG or PNG photo.", err)
	}
	r := img.Bounds()
	if r.Dx() != h.width || r.Dy() != h.height {
		return nil, models.Errorf(models.EBADIMAGE, "The image's size changed while decoding it.")
	}
	src := &bgrImage{w: r.Dx(), h: r.Dy(), pix: make([]byte, r.Dx()*r.Dy()*3)}
	toBGR(img, src)
	return orient(src, h.orientation), nil
}

// toBGR copies img's pixels into dst, with fast paths for the types the
// standard decoders return.
func toBGR(img image.Image, dst *bgrImage) {
	r := img.Bounds()
	w := r.Dx()
	put := func(i int, red, green, blue uint8) {
		dst.pix[i], dst.pix[i+1], dst.pix[i+2] = blue, green, red
	}
	switch m := img.(type) {
	case *image.Gray:
		for y := 0; y < dst.h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			for x, g := range row {
				put((y*w+x)*3, g, g, g)
			}
		}
	case *image.NRGBA:
		for y := 0; y < dst.h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := 0; x < w; x++ {
				put((y*w+x)*3, row[4*x], row[4*x+1], row[4*x+2])
			}
		}
	case *image.RGBA:
		for y := 0; y < dst.h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := 0; x < w; x++ {
				put((y*w+x)*3, row[4*x], row[4*x+1], row[4*x+2])
			}
		}
	case *image.YCbCr:
		for y := 0; y < dst.h; y++ {
			for x := 0; x < w; x++ {
				yi, ci := m.YOffset(r.Min.X+x, r.Min.Y+y), m.COffset(r.Min.X+x, r.Min.Y+y)
				red, green, blue := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				put((y*w+x)*3, red, green, blue)
			}
		}
	case *image.CMYK:
		for y := 0; y < dst.h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := 0; x < w; x++ {
				red, green, blue := color.CMYKToRGB(row[4*x], row[4*x+1], row[4*x+2], row[4*x+3])
				put((y*w+x)*3, red, green, blue)
			}
		}
	default: // Gray16, NRGBA64, RGBA64, Paletted, ...: through NRGBA (no alpha compositing)
		for y := 0; y < dst.h; y++ {
			for x := 0; x < w; x++ {
				c := color.NRGBAModel.Convert(img.At(r.Min.X+x, r.Min.Y+y)).(color.NRGBA)
				put((y*w+x)*3, c.R, c.G, c.B)
			}
		}
	}
}

// orient turns src upright according to an EXIF orientation.
func orient(src *bgrImage, o Orientation) *bgrImage {
	if o <= 1 || o > 8 {
		return src
	}
	w, h := orientedSize(src.w, src.h, o)
	dst := &bgrImage{w: w, h: h, pix: make([]byte, len(src.pix))}
	for y := 0; y < src.h; y++ {
		for x := 0; x < src.w; x++ {
			var dx, dy int
			switch o {
			case 2: // mirrored horizontally
				dx, dy = src.w-1-x, y
			case 3: // rotated 180
				dx, dy = src.w-1-x, src.h-1-y
			case 4: // mirrored vertically
				dx, dy = x, src.h-1-y
			case 5: // transposed
				dx, dy = y, x
			case 6: // rotated 90 clockwise to view
				dx, dy = src.h-1-y, x
			case 7: // transversed
				dx, dy = src.h-1-y, src.w-1-x
			case 8: // rotated 90 counter-clockwise to view
				dx, dy = y, src.w-1-x
			}
			s, d := (y*src.w+x)*3, (dy*w+dx)*3
			copy(dst.pix[d:d+3], src.pix[s:s+3])
		}
	}
	return dst
}

// decodePixels decodes b (whose header h was checked) into upright BGR
// pixels. JPEG goes through libjpeg (OpenCV's imdecode), the decoder Pillow
// uses too, so face_recognition sees the same pixels; PNG through Go's
// decoder (lossless: the same pixels as any other). Errors: EBADIMAGE.
func decodePixels(b []byte, h header) (*bgrImage, error) {
	if h.format != formatJPEG {
		return decodeBGR(b, h)
	}
	// libjpeg pads a truncated file with grey and only warns: refuse it
	// first, as Pillow does ("image file is truncated").
	if !jpegComplete(b) {
		return nil, models.Errorf(models.EBADIMAGE, "The image is truncated (the JPEG data ends early): send the complete file.")
	}
	m, err := gocv.IMDecode(b, gocv.IMReadColor|gocv.IMReadIgnoreOrientation)
	if err != nil || m.Empty() {
		m.Close()
		return nil, models.Errorf(models.EBADIMAGE, "The image cannot be decoded: send an undamaged JPEG or PNG photo.")
	}
	defer m.Close()
	if m.Cols() != h.width || m.Rows() != h.height {
		return nil, models.Errorf(models.EBADIMAGE, "The image's size changed while decoding it.")
	}
	px, err := bgrOfMat(m)
	if err != nil {
		return nil, err
	}
	px.pix = append([]byte(nil), px.pix...) // m's memory is freed on return
	return orient(px, h.orientation), nil
}

// bgrOfMat views an 8UC3 Mat's pixels (no copy: valid while m lives).
func bgrOfMat(m gocv.Mat) (*bgrImage, error) {
	if !m.IsContinuous() {
		return nil, models.Errorf(models.EBADIMAGE, "The frame's rows are not contiguous.")
	}
	pix, err := m.DataPtrUint8()
	if err != nil || len(pix) < m.Rows()*m.Cols()*3 {
		return nil, models.Errorf(models.EBADIMAGE, "The frame's pixels cannot be read.")
	}
	return &bgrImage{w: m.Cols(), h: m.Rows(), pix: pix}, nil
}

// jpegComplete reports whether a JPEG's entropy-coded data ends with an EOI
// marker. 0xFF 0xD9 cannot occur inside entropy-coded data (0xFF is stuffed
// there), only before the first SOS (in an EXIF thumbnail) or at the end.
func jpegComplete(b []byte) bool {
	sos := jpegSOS(b)
	return sos > 0 && bytes.LastIndex(b, []byte{0xFF, 0xD9}) > sos
}

// jpegSOS returns the offset of the first SOS marker, or -1.
func jpegSOS(b []byte) int {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return -1
	}
	p := 2
	for n := 0; n < maxSegments && p+4 <= len(b); n++ {
		if b[p] != 0xFF {
			return -1
		}
		marker := b[p+1]
		switch {
		case marker == 0xFF:
			p++
			continue
		case marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7):
			p += 2
			continue
		case marker == 0xDA:
			return p
		case marker == 0xD9:
			return -1
		}
		size := int(b[p+2])<<8 | int(b[p+3])
		if size < 2 {
			return -1
		}
		p += 2 + size
	}
	return -1
}
