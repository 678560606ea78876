package picture

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"

	"golang.org/x/image/webp"
)

// WebP, still and animated, on x/image/webp alone: the RIFF container is
// walked here (tolerating a wrong RIFF size and trailing bytes), and each
// picture — the still image, or each ANMF frame's ALPH+VP8 or VP8L data — is
// handed to x/image/webp as a minimal, well-formed WebP of its own. Animation
// frames are then blended and disposed onto the canvas as libwebp's
// WebPAnimDecoder does (the background colour is ignored, as browsers do).

type riffChunk struct {
	id   string
	data []byte
}

func webpChunks(data []byte) (chunks []riffChunk, cut bool) {
	return webpChunksAt(data, 12)
}

func webpChunksAt(data []byte, p int) (chunks []riffChunk, cut bool) {
	for p+8 <= len(data) {
		id := string(data[p : p+4])
		n := int(le32(data[p+4:]))
		start := p + 8
		end := start + n
		if n < 0 || end > len(data) || end < start {
			end = len(data)
			cut = true
		}
		chunks = append(chunks, riffChunk{id, data[start:end]})
		p = end + n&1
	}
	return chunks, cut
}

// webpBitstreamSize reads the size a VP8 or VP8L bitstream declares.
func webpBitstreamSize(id string, b []byte) (int, int, bool) {
	switch id {
	case "VP8 ":
		if len(b) < 10 || b[3] != 0x9d || b[4] != 0x01 || b[5] != 0x2a {
			return 0, 0, false
		}
		return int(le16(b[6:]) & 0x3fff), int(le16(b[8:]) & 0x3fff), true
	case "VP8L":
		if len(b) < 5 || b[0] != 0x2f {
			return 0, 0, false
		}
		v := le32(b[1:])
		return int(v&0x3fff) + 1, int((v>>14)&0x3fff) + 1, true
	}
	return 0, 0, false
}

func configWebP(head []byte) (int, int, error) {
	chunks, _ := webpChunks(head)
	if len(chunks) == 0 {
		return 0, 0, corruptf("webp", "no chunks")
	}
	c := chunks[0]
	if c.id == "VP8X" {
		if len(c.data) < 10 {
			return 0, 0, corruptf("webp", "short VP8X")
		}
		return int(le24(c.data[4:])) + 1, int(le24(c.data[7:])) + 1, nil
	}
	w, h, ok := webpBitstreamSize(c.id, c.data)
	if !ok {
		return 0, 0, corruptf("webp", "no VP8/VP8L header")
	}
	return w, h, nil
}

// buildWebP wraps one bitstream (with its ALPH chunk, for VP8) as a simple
// WebP file x/image/webp accepts.
func buildWebP(id string, bitstream, alph []byte, w, h int) []byte {
	var buf bytes.Buffer
	chunk := func(id string, b []byte) {
		buf.WriteString(id)
		binary.Write(&buf, binary.LittleEndian, uint32(len(b)))
		buf.Write(b)
		if len(b)&1 == 1 {
			buf.WriteByte(0)
		}
	}
	buf.WriteString("RIFF\x00\x00\x00\x00WEBP")
	if id == "VP8 " && alph != nil {
		x := make([]byte, 10)
		x[0] = 0x10 // alpha
		w1, h1 := uint32(w-1), uint32(h-1)
		x[4], x[5], x[6] = byte(w1), byte(w1>>8), byte(w1>>16)
		x[7], x[8], x[9] = byte(h1), byte(h1>>8), byte(h1>>16)
		chunk("VP8X", x)
		chunk("ALPH", alph)
	}
	chunk(id, bitstream)
	b := buf.Bytes()
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	return b
}

// decodeWebPImage decodes one picture given as its chunks (ALPH, VP8, VP8L
// in any order; others ignored).
func decodeWebPImage(chunks []riffChunk, l *limits) (image.Image, error) {
	var alph []byte
	for _, c := range chunks {
		switch c.id {
		case "ALPH":
			if alph == nil {
				alph = c.data
			}
		case "VP8 ", "VP8L":
			w, h, ok := webpBitstreamSize(c.id, c.data)
			if !ok {
				return nil, corruptf("webp", "bad %s header", c.id)
			}
			if err := l.fits("webp", w, h); err != nil {
				return nil, err
			}
			if !l.spend(int64(w) * int64(h)) {
				return nil, corruptf("webp", "work budget exhausted")
			}
			img, err := webp.Decode(bytes.NewReader(buildWebP(c.id, c.data, alph, w, h)))
			if err != nil {
				return nil, corruptf("webp", "%v", err)
			}
			// x/image/webp hands VP8's limited-range Y'CbCr out as a
			// full-range image.YCbCr: convert as libwebp does.
			return vp8ToNRGBA(img), nil
		}
	}
	return nil, corruptf("webp", "no image data")
}

func decodeWebP(data []byte, l *limits) (*Picture, error) {
	chunks, cut := webpChunks(data)
	if len(chunks) == 0 {
		return nil, corruptf("webp", "no chunks")
	}
	orient := 1
	var anmf []riffChunk
	cw, ch := 0, 0
	if chunks[0].id == "VP8X" && len(chunks[0].data) >= 10 {
		x := chunks[0].data
		cw, ch = int(le24(x[4:]))+1, int(le24(x[7:]))+1
		for _, c := range chunks {
			switch c.id {
			case "EXIF":
				if orient == 1 {
					orient = exifOrientation(c.data)
				}
			case "ANMF":
				anmf = append(anmf, c)
			}
		}
	}
	if len(anmf) == 0 {
		img, err := decodeWebPImage(chunks, l)
		if err != nil {
			return nil, err
		}
		pic := still(img, 1, cut)
		pic.Orientation = orient
		return pic, nil
	}
	if err := l.fits("webp", cw, ch); err != nil {
		return nil, err
	}
	canvas := image.NewNRGBA(image.Rect(0, 0, cw, ch))
	pic := &Picture{Scale: 1, Orientation: orient, Truncated: cut}
	costs := make([]int64, len(anmf))
	for i, c := range anmf {
		if len(c.data) >= 12 {
			costs[i] = int64(le24(c.data[6:])+1) * int64(le24(c.data[9:])+1)
		}
	}
	if m := l.affordable(costs); m < len(anmf) {
		anmf, pic.Truncated = anmf[:m], true
	}
	if len(anmf) == 0 {
		return nil, fmt.Errorf("%w: webp: first frame is beyond the work budget", ErrTooManyPixels)
	}
	delays := make([]int, len(anmf))
	for i, c := range anmf {
		if len(c.data) >= 15 {
			delays[i] = int(le24(c.data[12:])) // milliseconds
		}
	}
	keep := sampleFramesTimed(delays, l.frameQuota(int64(cw)*int64(ch)))
	for i, c := range anmf {
		b := c.data
		if len(b) < 16 {
			pic.Truncated = true
			break
		}
		x, y := 2*int(le24(b)), 2*int(le24(b[3:]))
		fw, fh := int(le24(b[6:]))+1, int(le24(b[9:]))+1
		flags := b[15]
		sub, _ := webpChunksAt(b, 16)
		img, err := decodeWebPImage(sub, l)
		if err != nil {
			if len(pic.Frames) == 0 && i == 0 {
				return nil, err
			}
			pic.Truncated = true
			break
		}
		fr := toNRGBA(img)
		// Place the frame at its offset; only the declared frame area counts.
		fr = &image.NRGBA{Pix: fr.Pix, Stride: fr.Stride, Rect: fr.Rect.Add(image.Pt(x, y))}
		area := image.Rect(x, y, x+fw, y+fh)
		fr = fr.SubImage(area).(*image.NRGBA)
		compose(canvas, fr, flags&0x02 == 0)
		if keep[i] {
			pic.Frames = append(pic.Frames, cloneNRGBA(canvas))
			pic.FrameIndex = append(pic.FrameIndex, i)
		}
		if flags&0x01 != 0 {
			clearRect(canvas, area)
		}
	}
	if len(pic.Frames) == 0 {
		return nil, corruptf("webp", "no frame decoded")
	}
	return pic, nil
}
