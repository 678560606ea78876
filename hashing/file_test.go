package hashing

import (
	"bytes"
	"image"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/hashing/worker"
	"github.com/mediaguard/mediaguard/internal/testimg"
)

// The CLI hashes as the proxy does: an animation's later frames are
// listed as forms; --reference (Viewed off) keeps to the first frame.
func TestHashFileForms(t *testing.T) {
	var frames []*image.Paletted
	for seed := range 2 {
		img := testimg.Photo(seed+30, 96, 96)
		pm := image.NewPaletted(img.Bounds(), palette.Plan9)
		draw.Draw(pm, img.Bounds(), img, image.Point{}, draw.Src)
		frames = append(frames, pm)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, &gif.GIF{Image: frames, Delay: []int{10, 10}}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "anim.gif")
	os.WriteFile(path, b.Bytes(), 0o600)
	viewed, err := HashFile(path, FileOptions{Decode: pdq.DecodeOptions{Viewed: true}})
	if err != nil || len(viewed.Forms) != 1 || viewed.Forms[0].Name != "frame 2" || viewed.Forms[0].Variant != pdq.VariantFrame {
		t.Fatalf("viewed: %+v %v", viewed, err)
	}
	ref, err := HashFile(path, FileOptions{})
	if err != nil || ref.PDQ != viewed.PDQ || len(ref.Forms) != 0 {
		t.Fatalf("reference: %+v %v (viewed pdq %s)", ref, err, viewed.PDQ)
	}
}

// Variants lists the stored picture first, then every form with its
// kind; a file without a PDQ hash has none.
func TestReportVariants(t *testing.T) {
	r := Report{File: "a.png", PDQ: "aa", PDQQuality: 90, Forms: []FormReport{
		{Name: "quadrant 1", Variant: pdq.VariantQuadrant, PDQ: "bb", PDQQuality: 80},
		{Name: "negative", Variant: pdq.VariantNegative, PDQ: "cc", PDQQuality: 90},
	}}
	want := []VariantReport{
		{File: "a.png", Variant: "stored", PDQ: "aa", PDQQuality: 90},
		{File: "a.png", Name: "quadrant 1", Variant: "quadrant", PDQ: "bb", PDQQuality: 80},
		{File: "a.png", Name: "negative", Variant: "negative", PDQ: "cc", PDQQuality: 90},
	}
	if got := r.Variants(); !slices.Equal(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if got := (Report{File: "x", Error: "not an image"}).Variants(); got != nil {
		t.Fatalf("no pdq, yet %+v", got)
	}
}

// HashFile hashes at the search level asked, as the proxy does.
func TestHashFileSearch(t *testing.T) {
	img := testimg.PNG(testimg.Photo(40, 120, 90))
	path := filepath.Join(t.TempDir(), "a.png")
	os.WriteFile(path, img, 0o600)
	for _, search := range []pdq.Search{pdq.SearchOff, pdq.SearchDefault, pdq.SearchDeep} {
		opt := FileOptions{PDQ: pdq.Options{Search: search}, Decode: pdq.DecodeOptions{Viewed: true}}
		rep, err := HashFile(path, opt)
		if err != nil {
			t.Fatal(err)
		}
		want, _, err := worker.HashViewed(bytes.NewReader(img), opt.Decode, pdq.Options{Search: search})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Forms) != len(want.Forms) {
			t.Fatalf("search %v: %d forms, want %d", search, len(rep.Forms), len(want.Forms))
		}
		for i, f := range want.Forms {
			if g := rep.Forms[i]; g.Name != f.Name || g.Variant != f.Variant || g.PDQ != f.Hash.String() {
				t.Fatalf("search %v: form %d is %+v, want %+v", search, i, g, f)
			}
		}
	}
}
