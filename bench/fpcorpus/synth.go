package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"

	"github.com/mediaguard/mediaguard/internal/testimg"
)

// synthFamilies are the kinds of synthetic picture, each standing for
// something people post that the packages have little of: flat graphics
// (gradients, shapes, checkerboards), documents and screenshots (text-like
// strokes), textures (noise) and photos (plasma, discs). Graphics are
// encoded as PNG, the rest as JPEG, as they would be uploaded.
var synthFamilies = []struct {
	name string
	draw func(r *rand.Rand, w, h int) image.Image
	jpeg bool
}{
	{"gradient", drawGradient, false},
	{"noise", drawNoise, true},
	{"shapes", drawShapes, false},
	{"checker", drawChecker, false},
	{"text", drawText, false},
	{"plasma", drawPlasma, true},
	{"discs", func(r *rand.Rand, w, h int) image.Image { return testimg.Photo(int(r.Int32N(1<<30)), w, h) }, true},
}

// synthetic returns n deterministic pictures: picture i depends only on
// seed and i, so a run can be repeated bit for bit. Sides are drawn
// between minSide and maxSide.
func synthetic(n int, seed uint64, minSide, maxSide int) []candidate {
	cands := make([]candidate, 0, n)
	for i := range n {
		fam := synthFamilies[i%len(synthFamilies)]
		r := rand.New(rand.NewPCG(seed, uint64(i)))
		w := minSide + r.IntN(maxSide-minSide+1)
		h := minSide + r.IntN(maxSide-minSide+1)
		img := fam.draw(r, w, h)
		var buf bytes.Buffer
		name := fmt.Sprintf("%s-%04d", fam.name, i)
		if fam.jpeg {
			jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80 + r.IntN(16)})
			name += ".jpg"
		} else {
			(&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, img)
			name += ".png"
		}
		cands = append(cands, newCandidate("synthetic", name, buf.Bytes()))
	}
	return cands
}

func randColour(r *rand.Rand) [3]float64 {
	return [3]float64{r.Float64() * 255, r.Float64() * 255, r.Float64() * 255}
}

func mix(a, b [3]float64, t float64) [3]float64 {
	return [3]float64{a[0] + (b[0]-a[0])*t, a[1] + (b[1]-a[1])*t, a[2] + (b[2]-a[2])*t}
}

func rgba(c [3]float64) color.RGBA {
	cl := func(v float64) uint8 { return uint8(math.Max(0, math.Min(255, math.Round(v)))) }
	return color.RGBA{cl(c[0]), cl(c[1]), cl(c[2]), 255}
}

// palette maps t in [0,1] through k random colour stops.
func palette(r *rand.Rand, k int) func(t float64) [3]float64 {
	stops := make([][3]float64, k)
	for i := range stops {
		stops[i] = randColour(r)
	}
	return func(t float64) [3]float64 {
		t = math.Max(0, math.Min(1, t)) * float64(k-1)
		i := min(int(t), k-2)
		return mix(stops[i], stops[i+1], t-float64(i))
	}
}

func fill(w, h int, f func(x, y int) [3]float64) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, rgba(f(x, y)))
		}
	}
	return img
}

// drawGradient: a linear (at any angle) or radial gradient through 2-4
// colours.
func drawGradient(r *rand.Rand, w, h int) image.Image {
	pal := palette(r, 2+r.IntN(3))
	if r.IntN(2) == 0 {
		th := r.Float64() * 2 * math.Pi
		dx, dy := math.Cos(th), math.Sin(th)
		span := math.Abs(dx)*float64(w) + math.Abs(dy)*float64(h)
		return fill(w, h, func(x, y int) [3]float64 {
			p := (float64(x)-float64(w)/2)*dx + (float64(y)-float64(h)/2)*dy
			return pal(p/span + 0.5)
		})
	}
	cx, cy := r.Float64()*float64(w), r.Float64()*float64(h)
	rad := (0.3 + r.Float64()) * float64(max(w, h))
	return fill(w, h, func(x, y int) [3]float64 {
		return pal(math.Hypot(float64(x)-cx, float64(y)-cy) / rad)
	})
}

// valueNoise returns smooth noise in [0,1] on a grid of cells×cells
// lattice points, bilinearly interpolated with a smoothstep.
func valueNoise(r *rand.Rand, cells int) func(u, v float64) float64 {
	n := cells + 1
	g := make([]float64, n*n)
	for i := range g {
		g[i] = r.Float64()
	}
	return func(u, v float64) float64 {
		x, y := u*float64(cells), v*float64(cells)
		x0, y0 := min(int(x), cells-1), min(int(y), cells-1)
		fx, fy := x-float64(x0), y-float64(y0)
		fx, fy = fx*fx*(3-2*fx), fy*fy*(3-2*fy)
		a := g[y0*n+x0] + (g[y0*n+x0+1]-g[y0*n+x0])*fx
		b := g[(y0+1)*n+x0] + (g[(y0+1)*n+x0+1]-g[(y0+1)*n+x0])*fx
		return a + (b-a)*fy
	}
}

// drawNoise: grain, coloured, over a faint coarse blotch (a texture).
func drawNoise(r *rand.Rand, w, h int) image.Image {
	base := valueNoise(r, 2+r.IntN(6))
	pal := palette(r, 2)
	amp := 40 + r.Float64()*120
	return fill(w, h, func(x, y int) [3]float64 {
		c := pal(base(float64(x)/float64(w), float64(y)/float64(h)))
		n := (r.Float64() - 0.5) * amp
		return [3]float64{c[0] + n, c[1] + n, c[2] + n}
	})
}

// drawPlasma: fractal noise through a palette, which PDQ sees much as it
// sees a landscape photo.
func drawPlasma(r *rand.Rand, w, h int) image.Image {
	octaves := 4 + r.IntN(3)
	layers := make([]func(u, v float64) float64, octaves)
	for i := range layers {
		layers[i] = valueNoise(r, 2<<i)
	}
	pal := palette(r, 3+r.IntN(3))
	return fill(w, h, func(x, y int) [3]float64 {
		u, v := float64(x)/float64(w), float64(y)/float64(h)
		s, a, tot := 0.0, 1.0, 0.0
		for _, l := range layers {
			s += a * l(u, v)
			tot += a
			a *= 0.55
		}
		return pal(s / tot)
	})
}

// drawShapes: rectangles, ellipses and triangles on a plain background
// (a logo, a diagram, a cartoon).
func drawShapes(r *rand.Rand, w, h int) image.Image {
	img := fill(w, h, func(int, int) [3]float64 { return [3]float64{} })
	bg := rgba(randColour(r))
	for i := range img.Pix {
		img.Pix[i] = [4]uint8{bg.R, bg.G, bg.B, 255}[i%4]
	}
	for range 3 + r.IntN(25) {
		c := rgba(randColour(r))
		cx, cy := r.Float64()*float64(w), r.Float64()*float64(h)
		rx, ry := (0.03+0.3*r.Float64())*float64(w), (0.03+0.3*r.Float64())*float64(h)
		kind := r.IntN(3)
		// A triangle is the half of its box under a random diagonal.
		flip := r.IntN(2) == 0
		for y := max(0, int(cy-ry)); y < min(h, int(cy+ry)); y++ {
			for x := max(0, int(cx-rx)); x < min(w, int(cx+rx)); x++ {
				u, v := (float64(x)-cx)/rx, (float64(y)-cy)/ry
				in := true
				switch kind {
				case 1:
					in = u*u+v*v <= 1
				case 2:
					if flip {
						in = u <= v
					} else {
						in = u >= -v
					}
				}
				if in {
					img.SetRGBA(x, y, c)
				}
			}
		}
	}
	return img
}

// drawChecker: a checkerboard or stripes, possibly turned, in two
// colours.
func drawChecker(r *rand.Rand, w, h int) image.Image {
	a, b := randColour(r), randColour(r)
	cell := 4 + r.Float64()*float64(min(w, h))/4
	th := 0.0
	if r.IntN(2) == 0 {
		th = r.Float64() * math.Pi / 2
	}
	stripes := r.IntN(3) == 0
	cs, sn := math.Cos(th), math.Sin(th)
	return fill(w, h, func(x, y int) [3]float64 {
		u := (float64(x)*cs + float64(y)*sn) / cell
		v := (-float64(x)*sn + float64(y)*cs) / cell
		k := int(math.Floor(u))
		if !stripes {
			k += int(math.Floor(v))
		}
		if k&1 == 0 {
			return a
		}
		return b
	})
}

// drawText: lines of short dark strokes on a light page, with margins
// and sometimes a title bar, which is how PDQ sees a document or a chat
// screenshot.
func drawText(r *rand.Rand, w, h int) image.Image {
	paper := [3]float64{225 + r.Float64()*30, 225 + r.Float64()*30, 225 + r.Float64()*30}
	if r.IntN(4) == 0 { // dark mode
		paper = [3]float64{r.Float64() * 40, r.Float64() * 40, r.Float64() * 45}
	}
	ink := [3]float64{255 - paper[0], 255 - paper[1], 255 - paper[2]}
	img := fill(w, h, func(int, int) [3]float64 { return paper })
	set := func(x0, y0, x1, y1 int, c [3]float64) {
		col := rgba(c)
		for y := max(0, y0); y < min(h, y1); y++ {
			for x := max(0, x0); x < min(w, x1); x++ {
				img.SetRGBA(x, y, col)
			}
		}
	}
	top := 0
	if r.IntN(2) == 0 {
		top = 16 + r.IntN(h/6+1)
		set(0, 0, w, top, randColour(r))
	}
	size := 6 + r.IntN(14) // x-height in pixels
	lead := size + 2 + r.IntN(size)
	margin := r.IntN(w/8 + 1)
	// Columns: one, or two like a newspaper or a chat with avatars.
	cols := 1 + r.IntN(2)
	colW := (w - 2*margin) / cols
	for c := range cols {
		x0 := margin + c*colW
		for y := top + lead; y+size < h-margin/2; y += lead {
			if r.IntN(9) == 0 { // paragraph break
				continue
			}
			end := x0 + colW - size
			if r.IntN(4) == 0 {
				end = x0 + r.IntN(colW+1)
			}
			for x := x0; x < end; {
				wordLen := 2 + r.IntN(8)
				for range wordLen {
					gw := size/2 + r.IntN(size/2+1)
					// A letter: a vertical stroke, sometimes with an
					// ascender or a bowl.
					asc := 0
					if r.IntN(4) == 0 {
						asc = size / 2
					}
					set(x, y-asc, x+max(1, size/6), y+size, ink)
					if r.IntN(2) == 0 {
						set(x, y+size-max(1, size/6), x+gw-1, y+size, ink)
					}
					x += gw
				}
				x += size / 2
			}
		}
	}
	return img
}
