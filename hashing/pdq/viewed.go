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
func HashViewed(v Viewed, opt Options) Result {
	var res Result
	seen := map[Hash]bool{}
	add := func(name, variant string, r Result) {
		if seen[r.Hash] {
			return
		}
		seen[r.Hash] = true
		res.Forms = append(res.Forms, Form{Name: name, Variant: variant, Hash: r.Hash, Quality: r.Quality})
	}
	orient := v.Orientation > 1 && v.Orientation <= 8
	for i, f := range v.Frames {
		prefix := ""
		if i > 0 {
			n := i
			if i < len(v.FrameIndex) {
				n = v.FrameIndex[i]
			}
			prefix = "frame " + strconv.Itoa(n+1)
		}
		fo := opt
		fo.Dihedral = i == 0 && opt.Dihedral
		stored := FromImage(f, fo)
		if i == 0 {
			res.Hash, res.Quality = stored.Hash, stored.Quality
			seen[stored.Hash] = true
			if opt.Dihedral {
				res.Dihedral = stored.Dihedral
			}
		} else {
			add(prefix, VariantFrame, Result{Hash: stored.Hash, Quality: stored.Quality})
		}
		if orient {
			add(join(prefix, "displayed"), VariantDisplayed, fromImageOriented(f, v.Orientation, opt))
		}
		if i < len(v.Managed) && v.Managed[i] != nil {
			if orient {
				add(join(prefix, "displayed colour-managed"), VariantColourManaged, fromImageOriented(v.Managed[i], v.Orientation, opt))
			} else {
				add(join(prefix, "colour-managed"), VariantColourManaged, FromImage(v.Managed[i], opt))
			}
		}
		if !hasAlpha(f) {
			continue
		}
		for _, bg := range [...]struct {
			name string
			v    uint8
		}{{"on white", 0xff}, {"on black", 0}} {
			c := composite(f, bg.v)
			if orient {
				add(join(prefix, "displayed "+bg.name), VariantComposited, fromImageOriented(c, v.Orientation, opt))
			} else {
				add(join(prefix, bg.name), VariantComposited, FromImage(c, opt))
			}
		}
	}
	return res
}

// fromImageOriented hashes img as displayed under EXIF orientation o:
// exactly the hash of the re-oriented pixels (the dihedral variants PDQ
// derives from the DCT are not, for non-square pictures, since its filter
// windows follow the sides), at the cost of re-orienting the luma plane
// rather than the pixels.
func fromImageOriented(img image.Image, o int, opt Options) Result {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w < MinDim || h < MinDim {
		return hashLuma(nil, nil, h, w, false, 1)
	}
	s := getScratch()
	s.grow(w * h)
	workers := opt.workers(h, w)
	fillLuma(img, s.a, h, w, min(workers, 2))
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	src, dst := s.a, s.b
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
	res := hashLuma(dst, src, oh, ow, false, workers)
	putScratch(s)
	return res
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
