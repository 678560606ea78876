package picture

import (
	"bytes"
	"image"
	"image/color"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"testing"
)

// gifOf quantizes src to Plan 9's palette (index 255 made transparent when
// transparent is set: pixels of src with alpha 0 map to it).
func gifOf(src image.Image, r image.Rectangle, transparent bool) *image.Paletted {
	pal := append(color.Palette(nil), palette.Plan9...)
	if transparent {
		pal[255] = color.NRGBA{}
	}
	m := image.NewPaletted(r, pal)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := color.NRGBAModel.Convert(src.At(x, y)).(color.NRGBA)
			if transparent && c.A == 0 {
				m.SetColorIndex(x, y, 255)
				continue
			}
			m.SetColorIndex(x, y, uint8(pal[:255].Index(c)))
		}
	}
	return m
}

// referenceComposite composites image/gif's frames the plain way.
func referenceComposite(g *gif.GIF) []*image.NRGBA {
	canvas := image.NewNRGBA(image.Rect(0, 0, g.Config.Width, g.Config.Height))
	var out []*image.NRGBA
	for i, fr := range g.Image {
		before := cloneNRGBA(canvas)
		draw.Draw(canvas, fr.Rect, fr, fr.Rect.Min, draw.Over)
		out = append(out, cloneNRGBA(canvas))
		switch g.Disposal[i] {
		case gif.DisposalBackground:
			draw.Draw(canvas, fr.Rect, image.Transparent, image.Point{}, draw.Src)
		case gif.DisposalPrevious:
			canvas = before
		}
	}
	return out
}

func testGIF(t *testing.T, interlace bool) ([]byte, *gif.GIF) {
	t.Helper()
	src := photo(60, 40)
	holes := image.NewNRGBA(image.Rect(0, 0, 60, 40))
	draw.Draw(holes, holes.Rect, src, image.Point{}, draw.Src)
	for y := 10; y < 30; y++ {
		for x := 10; x < 50; x++ {
			if (x+y)%3 == 0 {
				holes.SetNRGBA(x, y, color.NRGBA{})
			}
		}
	}
	inv := image.NewNRGBA(src.Rect)
	for i := range inv.Pix {
		inv.Pix[i] = 255 - src.Pix[i]
		if i%4 == 3 {
			inv.Pix[i] = 255
		}
	}
	g := &gif.GIF{
		Image: []*image.Paletted{
			gifOf(src, src.Rect, false),
			gifOf(holes, image.Rect(10, 10, 50, 30), true),
			gifOf(inv, image.Rect(0, 0, 30, 20), false),
			gifOf(inv, image.Rect(30, 20, 60, 40), true),
			gifOf(src, image.Rect(5, 5, 25, 25), false),
		},
		Delay:    []int{10, 10, 10, 10, 10},
		Disposal: []byte{gif.DisposalNone, gif.DisposalBackground, gif.DisposalPrevious, gif.DisposalNone, gif.DisposalNone},
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, g); err != nil {
		t.Fatal(err)
	}
	data := b.Bytes()
	if interlace {
		data = interlaceGIF(t, data)
	}
	dec, err := gif.DecodeAll(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return data, dec
}

// interlaceGIF re-encodes every frame of data with interlaced row order
// (image/gif cannot write it).
func interlaceGIF(t *testing.T, data []byte) []byte {
	g, err := gif.DecodeAll(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var rows []int
	for i, m := range g.Image {
		h := m.Rect.Dy()
		rows = rows[:0]
		for _, p := range [][2]int{{0, 8}, {4, 8}, {2, 4}, {1, 2}} {
			for y := p[0]; y < h; y += p[1] {
				rows = append(rows, y)
			}
		}
		n := image.NewPaletted(m.Rect, m.Palette)
		for k, y := range rows {
			copy(n.Pix[k*n.Stride:(k+1)*n.Stride], m.Pix[y*m.Stride:(y+1)*m.Stride])
		}
		g.Image[i] = n
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, g); err != nil {
		t.Fatal(err)
	}
	out := b.Bytes()
	// Set the interlace flag of every image descriptor.
	p := 13
	if out[10]&0x80 != 0 {
		p += 3 << ((out[10] & 7) + 1)
	}
	for p < len(out) && out[p] != 0x3B {
		switch out[p] {
		case 0x21:
			p, _ = skipSubBlocks(out, p+2)
		case 0x2C:
			out[p+9] |= 0x40
			q := p + 10
			if out[p+9]&0x80 != 0 {
				q += 3 << ((out[p+9] & 7) + 1)
			}
			p, _ = skipSubBlocks(out, q+1)
		}
	}
	return out
}

func TestGIFMatchesReferenceComposite(t *testing.T) {
	for _, interlace := range []bool{false, true} {
		data, g := testGIF(t, interlace)
		if interlace {
			// image/gif de-interlaces: compare with the plain file's frames.
			plain, _ := testGIF(t, false)
			g, _ = gif.DecodeAll(bytes.NewReader(plain))
		}
		want := referenceComposite(g)
		pic := decodeBytes1(t, data, Options{})
		if len(pic.Frames) != len(want) || pic.Truncated {
			t.Fatalf("interlace %v: %d frames (want %d), truncated %v", interlace, len(pic.Frames), len(want), pic.Truncated)
		}
		for i := range want {
			samePixels(t, pic.Frames[i], want[i])
			if pic.FrameIndex[i] != i {
				t.Fatalf("FrameIndex %v", pic.FrameIndex)
			}
		}
	}
}

func TestGIFTolerance(t *testing.T) {
	data, g := testGIF(t, false)
	want := referenceComposite(g)

	t.Run("0x0 logical screen", func(t *testing.T) {
		d := append([]byte(nil), data...)
		d[6], d[7], d[8], d[9] = 0, 0, 0, 0
		if _, err := gif.DecodeAll(bytes.NewReader(d)); err == nil {
			t.Log("image/gif accepts it too")
		}
		pic := decodeBytes1(t, d, Options{})
		samePixels(t, pic.Frames[0], want[0])
		samePixels(t, pic.Frames[4], want[4])
	})
	t.Run("1x1 logical screen", func(t *testing.T) {
		d := append([]byte(nil), data...)
		d[6], d[7], d[8], d[9] = 1, 0, 1, 0
		pic := decodeBytes1(t, d, Options{})
		samePixels(t, pic.Frames[4], want[4])
	})
	t.Run("truncated in the third frame", func(t *testing.T) {
		f, _ := parseGIF(data)
		third := f.frames[2]
		cut := len(data) - len(data[bytes.Index(data, third.data):]) + len(third.data)/2
		pic := decodeBytes1(t, data[:cut], Options{})
		if !pic.Truncated || len(pic.Frames) != 3 {
			t.Fatalf("truncated %v, %d frames", pic.Truncated, len(pic.Frames))
		}
		samePixels(t, pic.Frames[1], want[1])
		// The third frame is drawn as far as its data goes: its top rows.
		if at(pic.Frames[2], 3, 1) != at(want[2], 3, 1) {
			t.Fatalf("partial frame: %v want %v", at(pic.Frames[2], 3, 1), at(want[2], 3, 1))
		}
	})
	t.Run("no trailer", func(t *testing.T) {
		pic := decodeBytes1(t, data[:len(data)-1], Options{})
		samePixels(t, pic.Frames[4], want[4])
	})
	t.Run("index outside a small palette", func(t *testing.T) {
		// One frame, 2-entry global palette, pixels using indices 0..3.
		m := image.NewPaletted(image.Rect(0, 0, 8, 8), color.Palette{black, white, red, green})
		for i := range m.Pix {
			m.Pix[i] = uint8(i % 4)
		}
		var b bytes.Buffer
		if err := gif.Encode(&b, m, nil); err != nil {
			t.Fatal(err)
		}
		d := b.Bytes()
		d[10] = d[10]&^7 | 0 // global table declared as 2 entries
		// Cut the table to 2 entries: drop 6 bytes after the first 6.
		d = append(d[:13+6], d[13+12:]...)
		if _, err := gif.Decode(bytes.NewReader(d)); err == nil {
			t.Fatal("image/gif accepted it; the test proves nothing")
		}
		pic := decodeBytes1(t, d, Options{})
		f := pic.Frames[0]
		if at(f, 0, 0) != black || at(f, 1, 0) != white || at(f, 2, 0).A != 0 {
			t.Fatalf("got %v %v %v", at(f, 0, 0), at(f, 1, 0), at(f, 2, 0))
		}
	})
	t.Run("surplus LZW data", func(t *testing.T) {
		m := gifOf(photo(16, 16), image.Rect(0, 0, 16, 16), false)
		var b bytes.Buffer
		gif.Encode(&b, m, nil)
		d := b.Bytes()
		// Declare the frame one row shorter than its data: image/gif
		// refuses "too much image data", browsers ignore the rest.
		f, _ := parseGIF(d)
		i := bytes.Index(d, f.frames[0].data) - 1 - 10
		d[i+7] = 15
		if _, err := gif.Decode(bytes.NewReader(d)); err == nil {
			t.Fatal("image/gif accepted it")
		}
		pic := decodeBytes1(t, d, Options{})
		if at(pic.Frames[0], 3, 3) != at(m, 3, 3) {
			t.Fatal("wrong pixels")
		}
	})
}

func TestGIFReducedScale(t *testing.T) {
	data, g := testGIF(t, false)
	want := referenceComposite(g)
	pic := decodeBytes1(t, data, Options{MaxPixels: 60 * 40 / 4, MaxTotalPixels: 1 << 20})
	if pic.Scale != 2 || pic.Frames[0].Bounds() != image.Rect(0, 0, 30, 20) {
		t.Fatalf("scale %d bounds %v", pic.Scale, pic.Frames[0].Bounds())
	}
	for i := range want {
		for y := 0; y < 20; y++ {
			for x := 0; x < 30; x++ {
				if at(pic.Frames[i], x, y) != at(want[i], 2*x, 2*y) {
					t.Fatalf("frame %d (%d,%d): %v want %v", i, x, y, at(pic.Frames[i], x, y), at(want[i], 2*x, 2*y))
				}
			}
		}
	}
}

func TestGIFSampling(t *testing.T) {
	g := &gif.GIF{}
	for i := 0; i < 20; i++ {
		m := image.NewPaletted(image.Rect(0, 0, 4, 4), palette.Plan9)
		for j := range m.Pix {
			m.Pix[j] = uint8(i)
		}
		g.Image = append(g.Image, m)
		g.Delay = append(g.Delay, 5)
	}
	var b bytes.Buffer
	gif.EncodeAll(&b, g)
	pic := decodeBytes1(t, b.Bytes(), Options{MaxFrames: 4})
	want := []int{0, 6, 13, 19}
	for i, fi := range pic.FrameIndex {
		if fi != want[i] || at(pic.Frames[i], 1, 1) != at(g.Image[fi], 1, 1) {
			t.Fatalf("indices %v", pic.FrameIndex)
		}
	}
}
