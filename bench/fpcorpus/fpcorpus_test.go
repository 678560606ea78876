package main

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/hashing/picture"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// defaultKinds are the variant kinds SearchDefault adds.
var defaultKinds = []string{pdq.VariantTrimmed, pdq.VariantPeeled, pdq.VariantDegapped, pdq.VariantQuadrant, pdq.VariantNegative, pdq.VariantStretched}

func quickConfig(t *testing.T) config {
	n := 140
	if testing.Short() {
		n = 42
	}
	return config{
		Quick: true, Synthetic: n, SynthSides: [2]int{96, 320}, Seed: 13,
		Search: pdq.SearchDefault, Threshold: matcher.DefaultPDQThreshold, MinQuality: matcher.DefaultMinPDQQuality,
		MaxPixels: mediaproxy.DefaultMaxPixels, Workers: runtime.GOMAXPROCS(0), Log: testLog{t},
	}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// TestQuickCorpus is `make test`'s share of the false-positive benchmark:
// Go's test images and synthetic pictures, no packages, at the default
// settings.
func TestQuickCorpus(t *testing.T) {
	cfg := quickConfig(t)
	r, err := run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var rep bytes.Buffer
	r.report(&rep)
	t.Logf("\n%s", rep.String())

	if min := cfg.Synthetic / 2; len(r.Kept) < min {
		t.Fatalf("%d pictures kept after de-duplication, want at least %d", len(r.Kept), min)
	}
	// The de-duplication holds: no two kept pictures within the
	// threshold in any form a viewer is shown.
	for i := range r.Kept {
		for j := range i {
			for _, x := range r.Kept[i].Shown {
				for _, y := range r.Kept[j].Shown {
					if d := pdq.Distance(x, y); d <= cfg.Threshold {
						t.Fatalf("kept %s and %s are %d apart", r.Kept[i].id(), r.Kept[j].id(), d)
					}
				}
			}
		}
	}
	if len(r.A)+len(r.B) != len(r.Kept) || len(r.A)-len(r.B) > 1 || len(r.B) == 0 {
		t.Fatalf("split %d+%d of %d", len(r.A), len(r.B), len(r.Kept))
	}
	if r.Eval.Failed > 0 {
		t.Errorf("%d queries failed to hash", r.Eval.Failed)
	}
	for _, m := range r.Eval.Matches {
		t.Errorf("false positive: %s form %q (%s) is %d from banked %s", m.Query, m.Form, m.Kind, m.Distance, m.Bank)
	}

	// The variants are there: every query of usable quality has a
	// negative, and the corpus has forms of each default kind but
	// degapped (which needs a gap no picture here has).
	t.Run("variants", func(t *testing.T) {
		seen := map[string]int{}
		for _, k := range r.Eval.Kinds {
			seen[k.Kind] = k.Forms
		}
		n := 0
		for _, k := range defaultKinds {
			n += seen[k]
		}
		if n == 0 {
			t.Fatal("no search variants: pdq.HashViewed returned no trimmed/peeled/quadrant/negative/stretched forms at SearchDefault")
		}
		usable := 0
		for _, h := range r.B {
			if h.Quality >= cfg.MinQuality {
				usable++
			}
		}
		if seen[pdq.VariantNegative] < usable {
			t.Errorf("%d negative forms for %d queries of usable quality", seen[pdq.VariantNegative], usable)
		}
		for _, k := range []string{pdq.VariantTrimmed, pdq.VariantQuadrant, pdq.VariantStretched} {
			if seen[k] == 0 {
				t.Errorf("no %s form in %d queries", k, len(r.B))
			}
		}
		if seen[pdq.VariantQuadrant] < usable {
			t.Errorf("%d quadrant forms for %d queries of usable quality", seen[pdq.VariantQuadrant], usable)
		}
	})

	// The bench can see a match: banking some queries themselves, and
	// a bordered copy of a banked picture, must match.
	t.Run("planted", func(t *testing.T) {
		bank := append(slices.Clone(r.A), r.B[:3]...)
		queries := slices.Clone(r.B)
		bordered, ok := borderedCopy(t, r.A, cfg)
		if ok {
			queries = append(queries, bordered)
		}
		ev, err := evaluate(bank, queries, cfg.Search, cfg.Threshold, cfg.MinQuality, cfg.MaxPixels, cfg.Workers)
		if err != nil {
			t.Fatal(err)
		}
		stored := 0
		var trimmed bool
		for _, m := range ev.Matches {
			t.Logf("planted match: %s form %q (%s) is %d from banked %s", m.Query, m.Form, m.Kind, m.Distance, m.Bank)
			if m.Kind == pdq.VariantStored {
				stored++
			}
			if m.Query == bordered.id() && m.Kind != pdq.VariantStored {
				trimmed = true
			}
		}
		usable := 0
		for _, h := range r.B[:3] {
			if h.Quality >= cfg.MinQuality && !h.Hash.IsZero() {
				usable++
			}
		}
		if stored < usable {
			t.Errorf("%d stored matches, want the %d banked queries of usable quality", stored, usable)
		}
		if ev.Verdicts < usable {
			t.Errorf("matcher.Local matched %d queries, want at least %d", ev.Verdicts, usable)
		}
		hasVariants := false
		for _, k := range ev.Kinds {
			hasVariants = hasVariants || slices.Contains(defaultKinds, k.Kind)
		}
		if ok && hasVariants && !trimmed {
			t.Errorf("the bordered copy of %s matched no variant: %+v", bordered.Name, ev.Matches)
		}
	})
}

// borderedCopy returns a banked picture of quality 100 inside a wide
// uniform border, whose stored hash is out of reach of the original's:
// the trimmed variant must bring it back.
func borderedCopy(t *testing.T, bank []hashed, cfg config) (hashed, bool) {
	for _, h := range bank {
		if h.Source != "synthetic" || h.Quality < 90 || !strings.HasPrefix(h.Name, "plasma") {
			continue
		}
		pic, err := picture.DecodeBytes(h.Data, picture.Options{})
		if err != nil {
			t.Fatal(err)
		}
		src := pic.Frames[0]
		b := src.Bounds()
		canvas := image.NewRGBA(image.Rect(0, 0, b.Dx()*2, b.Dy()*2))
		draw.Draw(canvas, canvas.Bounds(), image.NewUniform(color.RGBA{250, 250, 250, 255}), image.Point{}, draw.Src)
		draw.Draw(canvas, b.Add(image.Pt(b.Dx()/4, b.Dy()/3)), src, b.Min, draw.Src)
		var buf bytes.Buffer
		if err := png.Encode(&buf, canvas); err != nil {
			t.Fatal(err)
		}
		c := newCandidate("planted", "bordered "+h.Name, buf.Bytes())
		hs, _, _ := hashStored([]candidate{c}, cfg.MaxPixels, 1)
		if len(hs) != 1 || pdq.Distance(hs[0].Hash, h.Hash) <= cfg.Threshold {
			continue
		}
		return hs[0], true
	}
	t.Log("no plasma picture to border in the bank half")
	return hashed{}, false
}
