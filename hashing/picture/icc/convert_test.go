package icc

import (
	"bytes"
	"image"
	"image/color"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// slowNRGBA is the reference reading of any image: color.NRGBAModel on At.
func slowNRGBA(img image.Image) *image.NRGBA {
	b := img.Bounds()
	dst := image.NewNRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			dst.Set(x, y, color.NRGBAModel.Convert(img.At(x, y)))
		}
	}
	return dst
}

func randomYCbCr(rng *rand.Rand, r image.Rectangle, ratio image.YCbCrSubsampleRatio) *image.YCbCr {
	img := image.NewYCbCr(r, ratio)
	for _, p := range [][]uint8{img.Y, img.Cb, img.Cr} {
		rng.Read(p)
	}
	return img
}

// Every fast input path gives exactly what the NRGBA path gives for the
// same pixels read through At, for a matrix and a sampled-LUT profile,
// with bounds not at the origin.
func TestInputTypesMatchTheReference(t *testing.T) {
	profiles := map[string][]byte{}
	for _, tc := range convCases() {
		switch tc.name {
		case "INVERTING curv, 4096 entries, v2", "INVERTING mAB, PCS Lab, 16-bit CLUT":
			profiles[tc.name] = tc.profile
		}
	}
	rng := rand.New(rand.NewSource(7))
	r := image.Rect(3, 5, 3+37, 5+23)
	sub := image.Rect(4, 7, 31, 26)
	inputs := map[string]image.Image{}
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410} {
		y := randomYCbCr(rng, r, ratio)
		inputs["YCbCr "+ratio.String()] = y
		inputs["YCbCr sub-image "+ratio.String()] = y.SubImage(sub)
		a := image.NewNYCbCrA(r, ratio)
		a.YCbCr = *randomYCbCr(rng, r, ratio)
		rng.Read(a.A)
		inputs["NYCbCrA "+ratio.String()] = a
	}
	nrgba := image.NewNRGBA(r)
	rng.Read(nrgba.Pix)
	inputs["NRGBA"] = nrgba
	inputs["NRGBA sub-image"] = nrgba.SubImage(sub)
	rgba := image.NewRGBA(r)
	rng.Read(rgba.Pix)
	for i := 0; i < len(rgba.Pix); i += 4 { // valid premultiplied pixels
		a := rgba.Pix[i+3]
		if i%12 == 0 {
			a = 255
		}
		rgba.Pix[i+3] = a
		for c := 0; c < 3; c++ {
			rgba.Pix[i+c] = uint8(int(rgba.Pix[i+c]) * int(a) / 255)
		}
	}
	inputs["RGBA"] = rgba
	inputs["RGBA sub-image"] = rgba.SubImage(sub)
	gray := image.NewGray(r)
	rng.Read(gray.Pix)
	inputs["Gray (RGB profile on a gray JPEG)"] = gray
	pal := image.NewPaletted(r, nil)
	for i := 0; i < 200; i++ {
		pal.Palette = append(pal.Palette, color.NRGBA{uint8(rng.Intn(256)), uint8(rng.Intn(256)), uint8(rng.Intn(256)), uint8(rng.Intn(256))})
	}
	rng.Read(pal.Pix) // indices past the palette included
	for i, v := range pal.Pix {
		if v >= 200 {
			pal.Pix[i] = uint8(i % 200)
		}
	}
	inputs["Paletted"] = pal
	n64 := image.NewNRGBA64(r)
	rng.Read(n64.Pix)
	inputs["NRGBA64 (slow path)"] = n64

	for pname, b := range profiles {
		p, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		for name, img := range inputs {
			got, ok := p.ToSRGB(img).(*image.NRGBA)
			if !ok {
				t.Fatalf("%s / %s: got %T", pname, name, p.ToSRGB(img))
			}
			ref := slowNRGBA(img)
			if a, ok := img.(*image.NYCbCrA); ok {
				// At premultiplies and NRGBAModel divides again, losing
				// low bits; the colour is the YCbCr's, the alpha the plane's.
				ref = slowNRGBA(&a.YCbCr)
				for i := range a.A {
					ref.Pix[4*i+3] = a.A[i]
				}
			}
			want := p.ToSRGB(ref).(*image.NRGBA)
			if got.Rect != img.Bounds() {
				t.Errorf("%s / %s: bounds %v, want %v", pname, name, got.Rect, img.Bounds())
			}
			if !bytes.Equal(got.Pix, want.Pix) {
				t.Errorf("%s / %s: pixels differ from the At reference", pname, name)
			}
		}
	}
}

// Profiles apply to the pixels viewers apply them to, and an ill-fitting
// profile leaves the image as it is.
func TestProfileMustFitThePixels(t *testing.T) {
	grayInv, _ := Parse(buildProfile(2, "mntr", "GRAY", "XYZ ", tag{"kTRC", curvFunc(1024, invert(decode))}))
	rgbInv, _ := Parse(matrixProfile(2, curvFunc(4096, invert(decode))))
	cmyk, err := Parse(convCases()[len(convCases())-1].profile)
	if err != nil || grayInv == nil || rgbInv == nil {
		t.Fatal("profiles", err)
	}
	colour := photo(20, 10)
	neutral := image.NewNRGBA(colour.Rect) // a gray+alpha PNG as image/png decodes it
	for i := 0; i < len(neutral.Pix); i += 4 {
		v := colour.Pix[i]
		neutral.Pix[i], neutral.Pix[i+1], neutral.Pix[i+2], neutral.Pix[i+3] = v, v, v, uint8(i)
	}
	cmykImg := cmykOf(colour)

	same := func(name string, got, img image.Image) {
		t.Helper()
		if got != img {
			t.Errorf("%s: converted; a viewer ignores this profile", name)
		}
	}
	same("Gray profile on a colour image", grayInv.ToSRGB(colour), colour)
	same("Gray profile on CMYK", grayInv.ToSRGB(cmykImg), cmykImg)
	same("RGB profile on CMYK", rgbInv.ToSRGB(cmykImg), cmykImg)
	same("CMYK profile on RGB", cmyk.ToSRGB(colour), colour)
	if rgbInv.ToSRGB(nil) != nil {
		t.Error("nil image")
	}

	got, ok := grayInv.ToSRGB(neutral).(*image.NRGBA)
	if !ok {
		t.Fatalf("Gray profile on gray+alpha: %T", grayInv.ToSRGB(neutral))
	}
	for i := 0; i < len(got.Pix); i += 4 {
		want := 255 - neutral.Pix[i]
		if d := int(got.Pix[i]) - int(want); d < -1 || d > 1 || got.Pix[i+1] != got.Pix[i] || got.Pix[i+3] != neutral.Pix[i+3] {
			t.Fatalf("gray+alpha pixel %d: %v, want %d with alpha %d", i/4, got.Pix[i:i+4], want, neutral.Pix[i+3])
		}
	}
	g16 := image.NewGray16(colour.Rect)
	for i := range g16.Pix {
		g16.Pix[i] = uint8(i * 7)
	}
	g, ok := grayInv.ToSRGB(g16).(*image.Gray)
	if !ok {
		t.Fatalf("Gray16: %T", grayInv.ToSRGB(g16))
	}
	for i, v := range g.Pix {
		if d := int(v) - (255 - int(g16.Pix[2*i])); d < -1 || d > 1 {
			t.Fatalf("Gray16 pixel %d: %d from %d", i, v, g16.Pix[2*i])
		}
	}
	pg := image.NewPaletted(colour.Rect, color.Palette{color.Gray{10}, color.Gray{200}})
	pg.Pix[3] = 1
	if out, ok := grayInv.ToSRGB(pg).(*image.NRGBA); !ok || out.Pix[0] < 240 || out.Pix[12] > 60 {
		t.Errorf("Gray profile on a gray palette: %T", grayInv.ToSRGB(pg))
	}
}

// Real profiles, when the machine has them (Debian's icc-profiles-free,
// colord-data, ghostscript). Each must parse or be refused with an error,
// convert without trouble, and every sRGB profile must be the identity.
func TestRealProfiles(t *testing.T) {
	var files []string
	filepath.WalkDir("/usr/share/color/icc", func(p string, d os.DirEntry, err error) error {
		ext := strings.ToLower(filepath.Ext(p))
		if err == nil && !d.IsDir() && (ext == ".icc" || ext == ".icm") {
			files = append(files, p)
		}
		return nil
	})
	if len(files) == 0 {
		t.Skip("SKIPPED: no ICC profiles under /usr/share/color/icc; apt-get install icc-profiles-free colord-data to test real profiles")
	}
	parsed := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse(b)
		if err != nil {
			t.Logf("%s: %v", f, err)
			continue
		}
		parsed++
		var img image.Image
		switch p.ColorSpace() {
		case "CMYK":
			img = cmykOf(photo(32, 16))
		case "GRAY":
			img = grayOf(photo(32, 16))
		default:
			img = photo(32, 16)
		}
		out := p.ToSRGB(img)
		if out == img {
			t.Errorf("%s: not converted", f)
		}
		t.Logf("%s: %v, identity %v", f, p, p.IsIdentity())
		if strings.EqualFold(filepath.Base(f), "srgb.icc") && !p.IsIdentity() {
			t.Errorf("%s: an sRGB profile is not the identity", f)
		}
	}
	if parsed == 0 {
		t.Error("no real profile parsed")
	}
}
