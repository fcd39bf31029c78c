package recognizertest

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
)

// PNGHeader returns a PNG's signature, IHDR (w x h, bit depth, color type)
// and IEND: all a header check reads, without the pixels.
func PNGHeader(w, h int, depth, colorType byte) []byte {
	var b bytes.Buffer
	writePNGStart(&b, w, h, depth, colorType)
	pngChunk(&b, "IEND", nil)
	return b.Bytes()
}

// StreamedPNG returns a complete w x h PNG of zero pixels, compressed as it
// is written (no image held): a few hundred KB for hundreds of MB decoded.
// colorType is 0 (gray), 2 (RGB), 4 (gray+alpha) or 6 (RGBA).
func StreamedPNG(w, h int, depth, colorType byte) []byte {
	var b, idat bytes.Buffer
	writePNGStart(&b, w, h, depth, colorType)
	zw, _ := zlib.NewWriterLevel(&idat, zlib.BestCompression)
	channels := map[byte]int{0: 1, 2: 3, 4: 2, 6: 4}[colorType]
	row := make([]byte, 1+w*channels*int(depth)/8) // filter byte 0, then zeros
	for y := 0; y < h; y++ {
		zw.Write(row)
	}
	zw.Close()
	pngChunk(&b, "IDAT", idat.Bytes())
	pngChunk(&b, "IEND", nil)
	return b.Bytes()
}

func writePNGStart(b *bytes.Buffer, w, h int, depth, colorType byte) {
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = depth, colorType
	pngChunk(b, "IHDR", ihdr)
}

func pngChunk(b *bytes.Buffer, typ string, data []byte) {
	binary.Write(b, binary.BigEndian, uint32(len(data)))
	c := crc32.NewIEEE()
	c.Write([]byte(typ))
	c.Write(data)
	b.WriteString(typ)
	b.Write(data)
	binary.Write(b, binary.BigEndian, c.Sum32())
}
