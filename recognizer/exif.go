package recognizer

import (
	"bytes"
	"encoding/binary"
)

// Orientation is the EXIF orientation tag (0x0112): how the stored pixels
// must be turned to show the picture upright. 1 is upright; 2-8 are the
// mirrorings and quarter turns phones write instead of rotating pixels.
type Orientation int

// maxSegments bounds the JPEG marker walk so a crafted file of tiny segments
// costs at most a few thousand steps.
const maxSegments = 4096

// jpegOrientation returns the EXIF orientation of a JPEG: 1 when it has
// none or the tag is malformed. It reads only the header segments (up to the
// first SOS) and never allocates.
func jpegOrientation(b []byte) Orientation {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return 1
	}
	p := 2
	for n := 0; n < maxSegments && p+4 <= len(b); n++ {
		if b[p] != 0xFF {
			return 1
		}
		marker := b[p+1]
		switch {
		case marker == 0xFF: // fill byte
			p++
			continue
		case marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7): // no length
			p += 2
			continue
		case marker == 0xDA || marker == 0xD9: // image data or end: no EXIF after this
			return 1
		}
		size := int(binary.BigEndian.Uint16(b[p+2:]))
		if size < 2 || p+2+size > len(b) {
			return 1
		}
		seg := b[p+4 : p+2+size]
		if marker == 0xE1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			return tiffOrientation(seg[6:])
		}
		p += 2 + size
	}
	return 1
}

// pngOrientation returns the orientation from a PNG's eXIf chunk, 1 when
// there is none. It walks chunk headers up to the first IDAT.
func pngOrientation(b []byte) Orientation {
	const sig = "\x89PNG\r\n\x1a\n"
	if !bytes.HasPrefix(b, []byte(sig)) {
		return 1
	}
	p := len(sig)
	for n := 0; n < maxSegments && p+8 <= len(b); n++ {
		size := int64(binary.BigEndian.Uint32(b[p:]))
		typ := string(b[p+4 : p+8])
		end := int64(p) + 8 + size
		if end > int64(len(b)) || typ == "IDAT" {
			return 1
		}
		if typ == "eXIf" {
			return tiffOrientation(b[p+8 : end])
		}
		p = int(end) + 4 // skip the CRC
	}
	return 1
}

// tiffOrientation reads tag 0x0112 from IFD0 of a TIFF structure (EXIF's
// container), checking every offset against len(t).
func tiffOrientation(t []byte) Orientation {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	if bo.Uint16(t[2:]) != 42 {
		return 1
	}
	ifd := int64(bo.Uint32(t[4:]))
	if ifd < 8 || ifd+2 > int64(len(t)) {
		return 1
	}
	count := int64(bo.Uint16(t[ifd:]))
	for i := int64(0); i < count; i++ {
		e := ifd + 2 + 12*i
		if e+12 > int64(len(t)) {
			return 1
		}
		if bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		// SHORT (type 3), count 1: the value sits in the entry itself.
		if bo.Uint16(t[e+2:]) != 3 || bo.Uint32(t[e+4:]) != 1 {
			return 1
		}
		if v := Orientation(bo.Uint16(t[e+8:])); v >= 1 && v <= 8 {
			return v
		}
		return 1
	}
	return 1
}

// orientedSize returns the upright size of a w x h image stored with o.
func orientedSize(w, h int, o Orientation) (int, int) {
	if o >= 5 {
		return h, w
	}
	return w, h
}
