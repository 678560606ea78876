package pdq

import (
	"image"
	"image/color"
	"strconv"
)

// Viewed is a decoded picture as a viewer is shown it: its frames as
// stored (alpha kept) and the orientation the viewer applies. It is what
// hashing/picture decodes; pdq only hashes it.
type Viewed struct {
	// Frames are the displayed frames, the default image first.
	Frames []image.Image
	// FrameIndex is each frame's number in the animation (0-based);
	// nil means 0, 1, 2, ...
	FrameIndex []int
	// FrameNames, where set, name the frames instead ("video frame at
	// 3.0s"): what a moderator can find the frame by.
	FrameNames []string
	// Orientation is the EXIF orientation (1..8) a viewer applies; 0 or 1
	// means none.
	Orientation int
	// Managed are the frames with the embedded ICC profile applied, as
	// colour-managed viewers (browsers, phones) show them; nil without a
	// profile that changes anything. A profile can turn a stored negative
	// back into the picture.
	Managed []image.Image
}

// HashViewed hashes every form a viewer may be shown. Hash and Quality
// are the first frame as stored (orientation ignored, alpha dropped: the
// reference convention lists are built with), Dihedral its variants when
// asked; Forms are the rest: each further frame, each frame with its
// orientation applied ("displayed"), and frames with transparency
// composited on white and on black, as a page or a dark-mode client
// shows them. A form whose hash equals one already taken is left out.
//
// With opt.Search, each frame as displayed (oriented, colour-managed, on
// white) also yields the variants that undo cheap edits: see Search. Their
// pixels count against a budget of one and a half times the pixels the
// plain forms hashed (plus a fixed allowance for the deep search), frame
// by frame, so variants at most double the hashing whatever the upload.
func HashViewed(v Viewed, opt Options) Result {
	var res Result
	vs := variantSet{seen: map[Hash]int{}}
	add := func(name, variant string, r Result) {
		if _, ok := vs.seen[r.Hash]; ok {
			return
		}
		vs.seen[r.Hash] = r.Quality
		res.Forms = append(res.Forms, Form{Name: name, Variant: variant, Hash: r.Hash, Quality: r.Quality})
	}
	search := opt.Search
	opt.Search = SearchOff
	if search == SearchDeep {
		vs.budget = deepAllowance
	}
	orient := v.Orientation > 1 && v.Orientation <= 8
	o := 1
	if orient {
		o = v.Orientation
	}
	for i, f := range v.Frames {
		prefix := ""
		if i > 0 {
			n := i
			if i < len(v.FrameIndex) {
				n = v.FrameIndex[i]
			}
			prefix = "frame " + strconv.Itoa(n+1)
			if i < len(v.FrameNames) && v.FrameNames[i] != "" {
				prefix = v.FrameNames[i]
			}
		}
		var managed image.Image
		if i < len(v.Managed) {
			managed = v.Managed[i]
		}
		alpha := hasAlpha(f)
		// The variants are cut from what a viewer sees of this frame: the
		// last of stored, displayed, colour-managed, on white that applies.
		wantPlane := search != SearchOff
		var base *plane
		var baseRes Result
		keep := func(r Result, p *plane) {
			if p != nil {
				base, baseRes = p, r
			}
		}
		fo := opt
		fo.Dihedral = i == 0 && opt.Dihedral
		stored, p := hashKeep(f, 1, fo, wantPlane && !orient && managed == nil && !alpha)
		keep(stored, p)
		vs.budget += variantBudget(pixels(f))
		if i == 0 {
			res.Hash, res.Quality = stored.Hash, stored.Quality
			vs.seen[stored.Hash] = stored.Quality
			if opt.Dihedral {
				res.Dihedral = stored.Dihedral
			}
		} else {
			add(prefix, VariantFrame, Result{Hash: stored.Hash, Quality: stored.Quality})
		}
		if orient {
			r, p := hashKeep(f, o, opt, wantPlane && managed == nil && !alpha)
			keep(r, p)
			add(join(prefix, "displayed"), VariantDisplayed, r)
			vs.budget += variantBudget(pixels(f))
		}
		if managed != nil {
			name := "colour-managed"
			if orient {
				name = "displayed colour-managed"
			}
			r, p := hashKeep(managed, o, opt, wantPlane && !alpha)
			keep(r, p)
			add(join(prefix, name), VariantColourManaged, r)
			vs.budget += variantBudget(pixels(f))
		}
		if alpha {
			for _, bg := range [...]struct {
				name string
				v    uint8
			}{{"on white", 0xff}, {"on black", 0}} {
				c := composite(f, bg.v)
				name := bg.name
				if orient {
					name = "displayed " + name
				}
				r, p := hashKeep(c, o, opt, wantPlane && bg.v == 0xff)
				keep(r, p)
				add(join(prefix, name), VariantComposited, r)
				vs.budget += variantBudget(pixels(f))
			}
		}
		if base == nil {
			continue
		}
		vs.forms = vs.forms[:0]
		defaultVariants(&vs, base, baseRes, prefix)
		if search == SearchDeep {
			deepVariants(&vs, base, prefix)
		}
		res.Forms = append(res.Forms, vs.forms...)
	}
	return res
}

// variantBudget is the variant pixels n plain pixels pay for: one and a
// half times as many. A variant pixel costs about 0.7 of a plain one (no
// decoding, no colour conversion), so a picture made to set off every
// variant stays under twice the plain hash (BenchmarkHashViewedSearch's
// every-edit case).
func variantBudget(n int) int { return n * 3 / 2 }

// deepAllowance is the pixels the deep search may hash beyond the plain
// forms' own: its 49 windows and 30 turns of one deepSide picture, with
// room to spare.
const deepAllowance = 96 * deepSide * deepSide

func pixels(img image.Image) int {
	b := img.Bounds()
	return b.Dx() * b.Dy()
}

// fromImageOriented hashes img as displayed under EXIF orientation o:
// exactly the hash of the re-oriented pixels (the dihedral variants PDQ
// derives from the DCT are not, for non-square pictures, since its filter
// windows follow the sides), at the cost of re-orienting the luma plane
// rather than the pixels.
func fromImageOriented(img image.Image, o int, opt Options) Result {
	opt.Dihedral = false
	res, _ := hashKeep(img, o, opt, false)
	return res
}

// hashKeep hashes img as shown under EXIF orientation o (1 or 0: as
// stored) and, with keep, also returns the displayed luma downscaled to
// workSide for the variants: taken from the luma the hash computes, so
// the picture's pixels are converted once.
func hashKeep(img image.Image, o int, opt Options, keep bool) (Result, *plane) {
	if o < 1 || o > 8 {
		o = 1
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w < MinDim || h < MinDim {
		return hashLuma(nil, nil, h, w, opt.Dihedral && o == 1, 1), nil
	}
	if o == 1 && (!keep || opt.Resize512) {
		res := FromImage(img, opt)
		if !keep {
			return res, nil
		}
		// The reference CLI's pre-resize samples pixels; the variants
		// want the picture averaged, as a viewer's scaler does.
		opt.Resize512 = false
		_, p := hashKeep(img, 1, Options{Workers: opt.Workers}, true)
		return res, p
	}
	s := getScratch()
	s.grow(w * h)
	workers := opt.workers(h, w)
	fillLuma(img, s.a, h, w, min(workers, 2))
	var p *plane
	if keep {
		p = downscale(s.a, h, w, workSide).orient(o)
	}
	var res Result
	if o == 1 {
		res = hashLuma(s.a, s.b, h, w, opt.Dihedral, workers)
	} else {
		ow, oh := orientLuma(s.a, s.b, w, h, o)
		res = hashLuma(s.b, s.a, oh, ow, false, workers)
	}
	putScratch(s)
	return res, p
}

// orientLuma writes the w×h luma src into dst as shown under EXIF
// orientation o (2..8) and returns the shown size.
func orientLuma(src, dst []float32, w, h, o int) (ow, oh int) {
	ow, oh = w, h
	if o >= 5 {
		ow, oh = h, w
	}
	for y := 0; y < h; y++ {
		row := src[y*w : (y+1)*w]
		for x, v := range row {
			var dx, dy int
			switch o {
			case 2:
				dx, dy = w-1-x, y
			case 3:
				dx, dy = w-1-x, h-1-y
			case 4:
				dx, dy = x, h-1-y
			case 5:
				dx, dy = y, x
			case 6:
				dx, dy = h-1-y, x
			case 7:
				dx, dy = h-1-y, w-1-x
			case 8:
				dx, dy = y, w-1-x
			default:
				dx, dy = x, y
			}
			dst[dy*ow+dx] = v
		}
	}
	return ow, oh
}

func join(prefix, s string) string {
	if prefix == "" {
		return s
	}
	return prefix + " " + s
}

// hasAlpha reports whether any pixel of img is not fully opaque.
func hasAlpha(img image.Image) bool {
	if o, ok := img.(interface{ Opaque() bool }); ok {
		return !o.Opaque()
	}
	return false
}

// composite returns img over a uniform grey background bg, as NRGBA.
func composite(img image.Image, bg uint8) *image.NRGBA {
	b := img.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	over := func(c, a uint32) uint8 { // c, a: 8-bit straight colour and alpha
		return uint8((c*a + uint32(bg)*(255-a) + 127) / 255)
	}
	if m, ok := img.(*image.NRGBA); ok {
		for y := 0; y < b.Dy(); y++ {
			src := m.Pix[(y+b.Min.Y-m.Rect.Min.Y)*m.Stride+(b.Min.X-m.Rect.Min.X)*4:]
			dst := out.Pix[y*out.Stride:]
			for x := 0; x < b.Dx(); x++ {
				s, d := src[x*4:x*4+4], dst[x*4:x*4+4]
				a := uint32(s[3])
				d[0], d[1], d[2], d[3] = over(uint32(s[0]), a), over(uint32(s[1]), a), over(uint32(s[2]), a), 0xff
			}
		}
		return out
	}
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			a := uint32(c.A)
			out.SetNRGBA(x, y, color.NRGBA{over(uint32(c.R), a), over(uint32(c.G), a), over(uint32(c.B), a), 0xff})
		}
	}
	return out
}
