package picture

import (
	"encoding/binary"
	"image/color"
	"testing"
)

// solidRGBA8 is a zlib stream of w×h pixels of one RGBA colour.
func solidRGBA8(w, h int, c color.NRGBA) []byte {
	var raw []byte
	for y := 0; y < h; y++ {
		raw = append(raw, 0)
		for x := 0; x < w; x++ {
			raw = append(raw, c.R, c.G, c.B, c.A)
		}
	}
	return zlibBytes(raw)
}

type apngFrameSpec struct {
	w, h, x, y     int
	dispose, blend byte
	c              color.NRGBA
}

func fcTL(seq int, f apngFrameSpec) []byte {
	b := make([]byte, 26)
	binary.BigEndian.PutUint32(b, uint32(seq))
	binary.BigEndian.PutUint32(b[4:], uint32(f.w))
	binary.BigEndian.PutUint32(b[8:], uint32(f.h))
	binary.BigEndian.PutUint32(b[12:], uint32(f.x))
	binary.BigEndian.PutUint32(b[16:], uint32(f.y))
	binary.BigEndian.PutUint16(b[20:], 1)
	binary.BigEndian.PutUint16(b[22:], 10)
	b[24], b[25] = f.dispose, f.blend
	return pngChunk("fcTL", b)
}

// buildAPNG writes an APNG of RGBA frames. With idatInAnim the first frame
// is the IDAT image; otherwise def (full canvas) is the IDAT default image
// and frames all go in fdAT chunks.
func buildAPNG(w, h int, frames []apngFrameSpec, idatInAnim bool, def color.NRGBA) []byte {
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, ihdr(w, h, 8, pngRGBA, false)...)
	actl := make([]byte, 8)
	binary.BigEndian.PutUint32(actl, uint32(len(frames)))
	out = append(out, pngChunk("acTL", actl)...)
	seq := 0
	for i, f := range frames {
		if i == 0 && idatInAnim {
			out = append(out, fcTL(seq, f)...)
			seq++
			out = append(out, pngChunk("IDAT", solidRGBA8(f.w, f.h, f.c))...)
			continue
		}
		if i == 0 {
			out = append(out, pngChunk("IDAT", solidRGBA8(w, h, def))...)
		}
		out = append(out, fcTL(seq, f)...)
		seq++
		d := make([]byte, 4)
		binary.BigEndian.PutUint32(d, uint32(seq))
		seq++
		out = append(out, pngChunk("fdAT", append(d, solidRGBA8(f.w, f.h, f.c)...))...)
	}
	return append(out, pngChunk("IEND", nil)...)
}

var (
	red    = color.NRGBA{255, 0, 0, 255}
	green  = color.NRGBA{0, 255, 0, 255}
	white  = color.NRGBA{255, 255, 255, 255}
	black  = color.NRGBA{0, 0, 0, 255}
	clear0 = color.NRGBA{}
)

func TestAPNGCompositing(t *testing.T) {
	frames := []apngFrameSpec{
		{w: 20, h: 20, c: red},
		{w: 10, h: 10, x: 5, y: 5, dispose: 1, blend: 1, c: color.NRGBA{0, 0, 255, 128}},
		{w: 10, h: 10, dispose: 2, blend: 0, c: green},
		{w: 4, h: 4, x: 16, y: 16, c: white},
	}
	pic := decodeBytes1(t, buildAPNG(20, 20, frames, true, color.NRGBA{}), Options{})
	if len(pic.Frames) != 4 || pic.FrameIndex[0] != 0 || pic.FrameIndex[3] != 3 {
		t.Fatalf("frames %d indices %v", len(pic.Frames), pic.FrameIndex)
	}
	blended := color.NRGBA{127, 0, 128, 255}
	checks := []struct {
		frame, x, y int
		want        color.NRGBA
	}{
		{0, 10, 10, red},
		{1, 10, 10, blended}, // blue at half alpha over red
		{1, 2, 2, red},
		{2, 2, 2, green},    // source blend overwrote
		{2, 12, 12, clear0}, // frame 1's area was disposed to background
		{2, 17, 17, red},
		{3, 2, 2, red}, // frame 2 disposed to previous: red again
		{3, 12, 12, clear0},
		{3, 17, 17, white},
	}
	for _, c := range checks {
		got := at(pic.Frames[c.frame], c.x, c.y)
		if d := abs(int(got.R)-int(c.want.R)) + abs(int(got.G)-int(c.want.G)) + abs(int(got.B)-int(c.want.B)) + abs(int(got.A)-int(c.want.A)); d > 3 {
			t.Errorf("frame %d (%d,%d): %v want %v", c.frame, c.x, c.y, got, c.want)
		}
	}
}

func TestAPNGDefaultImageNotInAnimation(t *testing.T) {
	frames := []apngFrameSpec{
		{w: 8, h: 8, c: red},
		{w: 4, h: 4, c: green, blend: 1},
	}
	pic := decodeBytes1(t, buildAPNG(8, 8, frames, false, black), Options{})
	if len(pic.Frames) != 3 || pic.FrameIndex[0] != -1 || pic.FrameIndex[1] != 0 || pic.FrameIndex[2] != 1 {
		t.Fatalf("frames %d indices %v", len(pic.Frames), pic.FrameIndex)
	}
	if at(pic.Frames[0], 1, 1) != black || at(pic.Frames[1], 1, 1) != red || at(pic.Frames[2], 1, 1) != green || at(pic.Frames[2], 6, 6) != red {
		t.Fatal("wrong frame content")
	}
}

func TestAPNGSampling(t *testing.T) {
	var frames []apngFrameSpec
	for i := 0; i < 40; i++ {
		frames = append(frames, apngFrameSpec{w: 4, h: 4, c: color.NRGBA{uint8(i), 0, 0, 255}})
	}
	pic := decodeBytes1(t, buildAPNG(4, 4, frames, true, color.NRGBA{}), Options{MaxFrames: 5})
	want := []int{0, 10, 20, 29, 39}
	if len(pic.FrameIndex) != len(want) {
		t.Fatalf("indices %v", pic.FrameIndex)
	}
	for i, fi := range pic.FrameIndex {
		if fi != want[i] || int(at(pic.Frames[i], 0, 0).R) != fi {
			t.Fatalf("indices %v, frame %d shows %v", pic.FrameIndex, i, at(pic.Frames[i], 0, 0))
		}
	}
	// The total-pixel budget also bounds the frame count.
	pic = decodeBytes1(t, buildAPNG(4, 4, frames, true, color.NRGBA{}), Options{MaxPixels: 16, MaxTotalPixels: 48})
	if len(pic.Frames) != 3 {
		t.Fatalf("%d frames under a 3-frame pixel budget", len(pic.Frames))
	}
}

func TestAPNGReducedScale(t *testing.T) {
	frames := []apngFrameSpec{
		{w: 40, h: 40, c: red},
		{w: 20, h: 20, x: 20, y: 20, c: green},
	}
	pic := decodeBytes1(t, buildAPNG(40, 40, frames, true, color.NRGBA{}), Options{MaxPixels: 400})
	if pic.Scale != 2 || pic.Frames[1].Bounds().Dx() != 20 {
		t.Fatalf("scale %d bounds %v", pic.Scale, pic.Frames[1].Bounds())
	}
	if at(pic.Frames[1], 5, 5) != red || at(pic.Frames[1], 15, 15) != green {
		t.Fatal("wrong content at reduced scale")
	}
}

func TestAPNGFrameOutsideCanvas(t *testing.T) {
	frames := []apngFrameSpec{
		{w: 8, h: 8, c: red},
		{w: 8, h: 8, x: 4, c: green}, // past the right edge: libpng stops here
	}
	pic := decodeBytes1(t, buildAPNG(8, 8, frames, true, color.NRGBA{}), Options{})
	if len(pic.Frames) != 1 || !pic.Truncated {
		t.Fatalf("%d frames, truncated %v", len(pic.Frames), pic.Truncated)
	}
}
