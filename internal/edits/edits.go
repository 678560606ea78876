// Package edits makes the cheap edits people use to slip a listed picture
// past hash lists: borders, letterboxing, caption
// bars, a gap, collages and tilings, a busy canvas, the colour negative,
// washed-out contrast and small rotations. The bypass corpus and the
// variant tests apply them to listed and clean pictures alike.
package edits

import (
	"image"
	"image/color"
	"image/draw"
	"math"

	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// White and Black are the usual border and bar colours.
var (
	White = color.NRGBA{255, 255, 255, 255}
	Black = color.NRGBA{0, 0, 0, 255}
)

// canvas returns a w×h picture filled with c.
func canvas(w, h int, c color.Color) *image.NRGBA {
	out := image.NewNRGBA(image.Rect(0, 0, w, h))
	draw.Draw(out, out.Bounds(), image.NewUniform(c), image.Point{}, draw.Src)
	return out
}

// Scale resizes img to w×h as an editor does (Catmull-Rom).
func Scale(img image.Image, w, h int) *image.NRGBA {
	out := image.NewNRGBA(image.Rect(0, 0, w, h))
	xdraw.CatmullRom.Scale(out, out.Bounds(), img, img.Bounds(), draw.Src, nil)
	return out
}

// paste draws img onto dst with its top left corner at (x, y).
func paste(dst *image.NRGBA, img image.Image, x, y int) {
	b := img.Bounds()
	draw.Draw(dst, image.Rect(x, y, x+b.Dx(), y+b.Dy()), img, b.Min, draw.Src)
}

// Border surrounds img with a uniform border frac of its width (left and
// right) and height (top and bottom) on each side.
func Border(img image.Image, frac float64, c color.Color) *image.NRGBA {
	b := img.Bounds()
	bx, by := int(frac*float64(b.Dx())), int(frac*float64(b.Dy()))
	out := canvas(b.Dx()+2*bx, b.Dy()+2*by, c)
	paste(out, img, bx, by)
	return out
}

// GradientFrame surrounds img with a frame frac of its size on each side
// that is a diagonal colour gradient: no row or column of it is uniform.
func GradientFrame(img image.Image, frac float64) *image.NRGBA {
	b := img.Bounds()
	bx, by := int(frac*float64(b.Dx())), int(frac*float64(b.Dy()))
	w, h := b.Dx()+2*bx, b.Dy()+2*by
	out := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			v := uint8((x + y) * 255 / (w + h))
			out.SetNRGBA(x, y, color.NRGBA{v, 255 - v, 128, 255})
		}
	}
	paste(out, img, bx, by)
	return out
}

// Letterbox centres img on a black square.
func Letterbox(img image.Image) *image.NRGBA {
	b := img.Bounds()
	s := max(b.Dx(), b.Dy())
	out := canvas(s, s, Black)
	paste(out, img, (s-b.Dx())/2, (s-b.Dy())/2)
	return out
}

// OnCanvas puts img at half size on a canvas of its own size: a blank one
// (bg non-nil) or a busy picture (bg nil, busy given), at (x, y) as
// fractions of the free space.
func OnCanvas(img image.Image, bg color.Color, busy image.Image, fx, fy float64) *image.NRGBA {
	b := img.Bounds()
	var out *image.NRGBA
	if busy != nil {
		out = Scale(busy, b.Dx(), b.Dy())
	} else {
		out = canvas(b.Dx(), b.Dy(), bg)
	}
	half := Scale(img, b.Dx()/2, b.Dy()/2)
	paste(out, half, int(fx*float64(b.Dx()-b.Dx()/2)), int(fy*float64(b.Dy()-b.Dy()/2)))
	return out
}

// Caption adds a white bar with black text above and below, as meme
// generators do.
func Caption(img image.Image, top, bottom string) *image.NRGBA {
	b := img.Bounds()
	bar := b.Dy() / 5
	out := canvas(b.Dx(), b.Dy()+2*bar, White)
	paste(out, img, 0, bar)
	text(out, top, image.Rect(0, 0, b.Dx(), bar))
	text(out, bottom, image.Rect(0, bar+b.Dy(), b.Dx(), 2*bar+b.Dy()))
	return out
}

// text writes s in black, scaled up to fill most of r's height, centred.
func text(dst *image.NRGBA, s string, r image.Rectangle) {
	face := basicfont.Face7x13
	w := font.MeasureString(face, s).Ceil()
	small := canvas(w+2, 15, White)
	d := font.Drawer{Dst: small, Src: image.NewUniform(Black), Face: face, Dot: fixed.P(1, 12)}
	d.DrawString(s)
	k := float64(r.Dy()) * 0.7 / 15
	tw, th := int(float64(small.Bounds().Dx())*k), int(15*k)
	if tw > r.Dx()*9/10 {
		k = float64(r.Dx()) * 0.9 / float64(small.Bounds().Dx())
		tw, th = int(float64(small.Bounds().Dx())*k), int(15*k)
	}
	big := Scale(small, tw, th)
	paste(dst, big, r.Min.X+(r.Dx()-tw)/2, r.Min.Y+(r.Dy()-th)/2)
}

// Gap cuts img into left and right halves with a white gap frac of its
// width between them.
func Gap(img image.Image, frac float64) *image.NRGBA {
	b := img.Bounds()
	g := int(frac * float64(b.Dx()))
	mid := b.Dx() / 2
	out := canvas(b.Dx()+g, b.Dy(), White)
	draw.Draw(out, image.Rect(0, 0, mid, b.Dy()), img, b.Min, draw.Src)
	draw.Draw(out, image.Rect(mid+g, 0, b.Dx()+g, b.Dy()), img, b.Min.Add(image.Pt(mid, 0)), draw.Src)
	return out
}

// Collage puts the four tiles, each scaled to half of img's size, in a
// 2×2 grid of img's size, with a white gap of gap pixels between them.
func Collage(tiles [4]image.Image, w, h, gap int) *image.NRGBA {
	tw, th := (w-gap)/2, (h-gap)/2
	out := canvas(w, h, White)
	for i, t := range tiles {
		x, y := (i%2)*(tw+gap), (i/2)*(th+gap)
		paste(out, Scale(t, tw, th), x, y)
	}
	return out
}

// Tile repeats img 2×2 at half size.
func Tile(img image.Image) *image.NRGBA {
	b := img.Bounds()
	return Collage([4]image.Image{img, img, img, img}, b.Dx(), b.Dy(), 0)
}

// Negative inverts every colour.
func Negative(img image.Image) *image.NRGBA {
	out := toNRGBA(img)
	for i := 0; i < len(out.Pix); i += 4 {
		out.Pix[i], out.Pix[i+1], out.Pix[i+2] = 255-out.Pix[i], 255-out.Pix[i+1], 255-out.Pix[i+2]
	}
	return out
}

// Squeeze maps the colour range onto [lo, hi] (fractions of full scale):
// the washed-out copy.
func Squeeze(img image.Image, lo, hi float64) *image.NRGBA {
	out := toNRGBA(img)
	for i := 0; i < len(out.Pix); i++ {
		if i%4 == 3 {
			continue
		}
		out.Pix[i] = uint8(math.Round(255 * (lo + (hi-lo)*float64(out.Pix[i])/255)))
	}
	return out
}

// Rotate turns img by deg degrees counter-clockwise onto a canvas that
// holds all of it, with corners of colour fill (bilinear).
func Rotate(img image.Image, deg float64, fill color.NRGBA) *image.NRGBA {
	src := toNRGBA(img)
	w, h := float64(src.Rect.Dx()), float64(src.Rect.Dy())
	sin, cos := math.Sincos(deg * math.Pi / 180)
	ow := int(math.Ceil(math.Abs(w*cos) + math.Abs(h*sin)))
	oh := int(math.Ceil(math.Abs(w*sin) + math.Abs(h*cos)))
	out := canvas(ow, oh, fill)
	cx, cy := (w-1)/2, (h-1)/2
	ocx, ocy := float64(ow-1)/2, float64(oh-1)/2
	for y := range oh {
		for x := range ow {
			dx, dy := float64(x)-ocx, float64(y)-ocy
			sx := cos*dx - sin*dy + cx
			sy := sin*dx + cos*dy + cy
			if sx < 0 || sy < 0 || sx > w-1 || sy > h-1 {
				continue
			}
			x0, y0 := int(sx), int(sy)
			x1, y1 := min(x0+1, int(w)-1), min(y0+1, int(h)-1)
			fx, fy := sx-float64(x0), sy-float64(y0)
			var px [4]uint8
			for c := range 3 {
				at := func(x, y int) float64 { return float64(src.Pix[y*src.Stride+x*4+c]) }
				a := at(x0, y0)*(1-fx) + at(x1, y0)*fx
				b := at(x0, y1)*(1-fx) + at(x1, y1)*fx
				px[c] = uint8(math.Round(a*(1-fy) + b*fy))
			}
			px[3] = 255
			copy(out.Pix[y*out.Stride+x*4:], px[:])
		}
	}
	return out
}

func toNRGBA(img image.Image) *image.NRGBA {
	b := img.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Bounds(), img, b.Min, draw.Src)
	return out
}
