package bypass

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/png"

	"github.com/mediaguard/mediaguard/internal/jpegenc"
	"github.com/mediaguard/mediaguard/internal/testimg"
)

// segments walks a JPEG's marker segments up to the first scan, calling f
// with each marker, its payload's offset and length. It returns the
// offset of the first SOS marker.
func segments(j []byte, f func(m byte, off, n int)) int {
	i := 2
	for i+4 <= len(j) && j[i] == 0xff {
		m := j[i+1]
		n := int(j[i+2])<<8 | int(j[i+3])
		if m == 0xda {
			f(m, i+4, n-2)
			return i
		}
		f(m, i+4, n-2)
		i += 2 + n
	}
	return i
}

// jpegWithoutDHT drops the Huffman tables, as Motion-JPEG frames do;
// decoders then use the standard tables (Go's encoder writes exactly those).
func jpegWithoutDHT(img *image.NRGBA) []byte {
	j := testimg.JPEG(img, 90)
	var out []byte
	out = append(out, j[:2]...)
	last := 2
	sos := segments(j, func(m byte, off, n int) {
		if m == 0xc4 {
			out = append(out, j[last:off-4]...)
			last = off + n
		}
	})
	_ = sos
	return append(out, j[last:]...)
}

// jpegDuplicateComponentIDs names every component 1, in the frame and the
// scan headers; libjpeg-turbo matches them by order.
func jpegDuplicateComponentIDs(img *image.NRGBA) []byte {
	j := append([]byte(nil), testimg.JPEG(img, 90)...)
	segments(j, func(m byte, off, n int) {
		switch m {
		case 0xc0, 0xc1, 0xc2:
			for c := 0; c < int(j[off+5]); c++ {
				j[off+6+3*c] = 1
			}
		case 0xda:
			for c := 0; c < int(j[off]); c++ {
				j[off+1+2*c] = 1
			}
		}
	})
	return j
}

// jpegWithDNL declares height 0 in the frame header and gives the height
// in a DNL segment after the scan.
func jpegWithDNL(img *image.NRGBA) []byte {
	j := append([]byte(nil), testimg.JPEG(img, 90)...)
	var height uint16
	segments(j, func(m byte, off, n int) {
		if m == 0xc0 {
			height = binary.BigEndian.Uint16(j[off+1:])
			j[off+1], j[off+2] = 0, 0
		}
	})
	eoi := bytes.LastIndex(j, []byte{0xff, 0xd9})
	out := append([]byte(nil), j[:eoi]...)
	out = append(out, 0xff, 0xdc, 0, 4, byte(height>>8), byte(height))
	return append(out, j[eoi:]...)
}

// renumberRestarts makes every restart marker RST0, as some cameras and
// broken encoders write them.
func renumberRestarts(j []byte) []byte {
	j = append([]byte(nil), j...)
	for i := 0; i+1 < len(j); i++ {
		if j[i] == 0xff && j[i+1] >= 0xd0 && j[i+1] <= 0xd7 {
			j[i+1] = 0xd0
		}
	}
	return j
}

// pngPLTEAfterIDAT moves a palette PNG's PLTE after its image data,
// which Chromium accepts.
func pngPLTEAfterIDAT(img *image.NRGBA) []byte {
	var b bytes.Buffer
	png.Encode(&b, paletted(img))
	types, datas := pngChunks(b.Bytes())
	out := []byte("\x89PNG\r\n\x1a\n")
	var plte []byte
	for i, t := range types {
		switch t {
		case "PLTE":
			plte = datas[i]
			continue
		case "IEND":
			out = appendChunk(out, "PLTE", plte)
		}
		out = appendChunk(out, t, datas[i])
	}
	return out
}

// gif1x1Screen declares a 1×1 logical screen around a full-size frame.
func gif1x1Screen(img *image.NRGBA) []byte {
	g := gifOf(img)
	g[6], g[7], g[8], g[9] = 1, 0, 1, 0
	return g
}

func pngTruncated(img *image.NRGBA) []byte {
	p := testimg.PNG(img)
	return p[:len(p)*97/100]
}

// jpegDecoyScan appends a decoy picture's scan after the picture's own,
// in one baseline file: libjpeg-turbo (every browser) shows the first
// scan and stops at the second SOS, where Go's image/jpeg lets the decoy
// paint over it. Both are written by Go's encoder at one size and
// quality, so they share the quantisation and Huffman tables.
func jpegDecoyScan(img *image.NRGBA) []byte {
	a := testimg.JPEG(img, 90)
	b := testimg.JPEG(testimg.Photo(999, img.Bounds().Dx(), img.Bounds().Dy()), 90)
	sos := segments(b, func(byte, int, int) {})
	out := append([]byte(nil), a[:len(a)-2]...) // without its EOI
	return append(out, b[sos:]...)
}

// withJunkByte puts a byte that is not a marker after a JPEG's first
// segment: libjpeg-turbo (so every browser) and image/jpeg skip it with
// a warning, and a marker walk that stops there misses what follows.
func withJunkByte(j []byte) []byte {
	end := 4 + int(j[4])<<8 | int(j[5])
	out := append([]byte(nil), j[:end]...)
	out = append(out, 0x00)
	return append(out, j[end:]...)
}

// jpegRequantised is a progressive JPEG whose quantisation tables are
// redefined after its first scan (DC 1, every AC 255): libjpeg-turbo,
// and so every browser, keeps each component's table from its first scan
// and shows the picture; Go's image/jpeg dequantises with the last
// tables and shows a flat field of noise.
func jpegRequantised(img *image.NRGBA) []byte {
	j := jpegenc.Encode(img, jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 1, 1, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1, Progressive: true})
	first := segments(j, func(byte, int, int) {})
	second := first + 2 + bytes.Index(j[first+2:], []byte{0xff, 0xda})
	dqt := []byte{0xff, 0xdb, 0x00, 2 + 2*65}
	for tq := range 2 {
		dqt = append(dqt, byte(tq), 1)
		dqt = append(dqt, bytes.Repeat([]byte{255}, 63)...)
	}
	out := append([]byte(nil), j[:second]...)
	out = append(out, dqt...)
	return append(out, j[second:]...)
}
