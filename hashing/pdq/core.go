// Package pdq computes Meta's PDQ perceptual hash exactly as the C++
// reference does (facebook/ThreatExchange pdq/cpp), bit for bit: float32
// luma, two Jarosz (box-filter) passes, decimation to 64×64, a 16×16 DCT,
// and a median threshold. It also computes the quality metric and the eight
// dihedral variants from the same DCT.
//
// Every float32 product is wrapped in an explicit float32(...) conversion:
// the Go spec lets a compiler fuse x*y+z into one rounding unless a
// conversion forces the intermediate, and the reference rounds each step.
package pdq

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
)

const (
	// MinDim is the smallest side the reference hashes; smaller images hash
	// to all zeros with quality 0.
	MinDim = 5
	// numJaroszPasses is the reference's PDQ_NUM_JAROSZ_XY_PASSES.
	numJaroszPasses = 2
	// Luma coefficients (ITU-R BT.601), float32 as in the reference.
	lumaR float32 = 0.299
	lumaG float32 = 0.587
	lumaB float32 = 0.114
)

// dct is the 16×64 DCT-II matrix without the DC row: frequencies 1..16.
var dct = func() (d [16][64]float32) {
	scale := float64(float32(math.Sqrt(2.0 / 64.0)))
	for i := range 16 {
		for j := range 64 {
			d[i][j] = float32(scale * math.Cos(math.Pi/2/64.0*float64(i+1)*float64(2*j+1)))
		}
	}
	return d
}()

// Result is a PDQ hash with its quality and, when asked for, the eight
// dihedral variants in the reference's order (see DihedralNames).
type Result struct {
	Hash    Hash
	Quality int
	// Dihedral is nil unless Options.Dihedral was set.
	Dihedral *[8]Hash
	// Forms are the other ways the picture is shown (other animation
	// frames, the picture with its orientation applied, transparency
	// composited), each hashed like Hash. Set only by callers that hash
	// what a viewer sees; the reference convention is Hash alone.
	Forms []Form
}

// Form is one more way a picture is shown, with its PDQ hash.
type Form struct {
	// Name says which form: "frame 3", "displayed" (orientation
	// applied), "on white", "frame 3 on black", ...
	Name string
	// Variant is the kind of form (VariantFrame, VariantTrimmed, ...):
	// one of a closed set, unlike Name.
	Variant string
	Hash    Hash
	Quality int
}

// DihedralNames names the variants in the order the reference prints them.
var DihedralNames = [8]string{"original", "rotate90", "rotate180", "rotate270", "flipX", "flipY", "flipPlus1", "flipMinus1"}

// parallelMinPixels is the image size above which the filter passes are
// split across cores; below it a goroutine hand-off costs more than it saves.
const parallelMinPixels = 128 * 1024

// scratch holds the two full-size float buffers the Jarosz filter ping-pongs
// between; one is kept for the next image so steady-state hashing does not
// allocate megabytes.
type scratch struct {
	a, b []float32
}

// spareScratch is that one kept scratch. Not a sync.Pool: its per-P private
// slots kept one 25 MB scratch per P although callers hash one image at a
// time (mediaproxy bounds concurrency itself); a single slot any thread can
// take holds at most one.
var spareScratch atomic.Pointer[scratch]

func getScratch() *scratch {
	if s := spareScratch.Swap(nil); s != nil {
		return s
	}
	return new(scratch)
}

func putScratch(s *scratch) {
	if cap(s.a) <= maxPooledFloats {
		spareScratch.CompareAndSwap(nil, s)
	}
}

func (s *scratch) grow(n int) {
	if cap(s.a) < n {
		s.a = make([]float32, n)
		s.b = make([]float32, n)
	}
	s.a, s.b = s.a[:n], s.b[:n]
}

// maxPooledFloats stops large images from pinning their buffers in the
// pool: up to 4 MP (a phone photo at Matrix clients' usual upload size),
// 32 MB per pooled scratch; anything larger is allocated for the one image
// and given back to the collector.
const maxPooledFloats = 2048 * 2048

// hashLuma hashes a rows×cols float32 luma buffer (row-major). The buffer is
// used as scratch and overwritten.
func hashLuma(luma, tmp []float32, rows, cols int, dihedral bool, workers int) Result {
	if rows < MinDim || cols < MinDim {
		r := Result{}
		if dihedral {
			r.Dihedral = new([8]Hash)
		}
		return r
	}
	wRows := jaroszWindow(cols)
	wCols := jaroszWindow(rows)
	for range numJaroszPasses {
		boxRows(luma, tmp, rows, cols, wRows, workers)
		boxCols(tmp, luma, rows, cols, wCols, workers)
	}
	var buf [64][64]float32
	decimate(luma, rows, cols, &buf)
	var coef [16][16]float32
	dct64To16(&buf, &coef)
	res := Result{Hash: threshold(&coef), Quality: quality(&buf)}
	if dihedral {
		res.Dihedral = dihedrals(&coef)
	}
	return res
}

// jaroszWindow is the reference's computeJaroszFilterWindowSize(dim, 64):
// ceil(dim / 128).
func jaroszWindow(dim int) int { return (dim + 2*64 - 1) / (2 * 64) }

// box1D is the reference's box1DFloat: a running-sum box filter whose window
// shrinks at the edges. The float32 running sum (add the entering sample,
// then subtract the leaving one) is reproduced step by step because its
// rounding is part of the expected hashes.
func box1D(in, out []float32, n, w int) {
	half := (w + 2) / 2
	p1 := half - 1
	p2 := w - half + 1
	p3 := n - w
	p4 := half - 1
	var sum float32
	cur := 0
	ri, li, oi := 0, 0, 0
	in = in[:n]
	out = out[:n]
	for range p1 {
		sum += in[ri]
		cur++
		ri++
	}
	for range p2 {
		sum += in[ri]
		cur++
		out[oi] = sum / float32(cur)
		ri++
		oi++
	}
	fc := float32(cur)
	for range p3 {
		sum += in[ri]
		sum -= in[li]
		out[oi] = sum / fc
		li++
		ri++
		oi++
	}
	for range p4 {
		sum -= in[li]
		cur--
		out[oi] = sum / float32(cur)
		li++
		oi++
	}
}

// box4 runs box1D over four rows at once. Each row's running sum is a serial
// chain of dependent float additions; interleaving four independent chains
// lets the CPU overlap them, which is most of the row pass's speed.
func box4(in0, in1, in2, in3, out0, out1, out2, out3 []float32, n, w int) {
	half := (w + 2) / 2
	p1 := half - 1
	p2 := w - half + 1
	p3 := n - w
	p4 := half - 1
	var s0, s1, s2, s3 float32
	cur := 0
	ri, li, oi := 0, 0, 0
	in0, in1, in2, in3 = in0[:n], in1[:n], in2[:n], in3[:n]
	out0, out1, out2, out3 = out0[:n], out1[:n], out2[:n], out3[:n]
	for range p1 {
		s0 += in0[ri]
		s1 += in1[ri]
		s2 += in2[ri]
		s3 += in3[ri]
		cur++
		ri++
	}
	for range p2 {
		s0 += in0[ri]
		s1 += in1[ri]
		s2 += in2[ri]
		s3 += in3[ri]
		cur++
		fc := float32(cur)
		out0[oi] = s0 / fc
		out1[oi] = s1 / fc
		out2[oi] = s2 / fc
		out3[oi] = s3 / fc
		ri++
		oi++
	}
	fc := float32(cur)
	for range p3 {
		s0 += in0[ri]
		s1 += in1[ri]
		s2 += in2[ri]
		s3 += in3[ri]
		s0 -= in0[li]
		s1 -= in1[li]
		s2 -= in2[li]
		s3 -= in3[li]
		out0[oi] = s0 / fc
		out1[oi] = s1 / fc
		out2[oi] = s2 / fc
		out3[oi] = s3 / fc
		li++
		ri++
		oi++
	}
	for range p4 {
		s0 -= in0[li]
		s1 -= in1[li]
		s2 -= in2[li]
		s3 -= in3[li]
		cur--
		fc := float32(cur)
		out0[oi] = s0 / fc
		out1[oi] = s1 / fc
		out2[oi] = s2 / fc
		out3[oi] = s3 / fc
		li++
		oi++
	}
}

// boxRows filters every row (window w along the row).
func boxRows(in, out []float32, rows, cols, w, workers int) {
	parallel(rows, workers, func(r0, r1 int) {
		r := r0
		for ; r+4 <= r1; r += 4 {
			box4(in[r*cols:], in[(r+1)*cols:], in[(r+2)*cols:], in[(r+3)*cols:],
				out[r*cols:], out[(r+1)*cols:], out[(r+2)*cols:], out[(r+3)*cols:], cols, w)
		}
		for ; r < r1; r++ {
			box1D(in[r*cols:], out[r*cols:], cols, w)
		}
	})
}

// boxCols filters every column (window w down the column). It walks the
// image a row at a time with one running sum per column, which performs the
// same float operations in the same order as the reference's strided
// per-column loop while reading memory sequentially.
func boxCols(in, out []float32, rows, cols, w, workers int) {
	parallel(cols, workers, func(c0, c1 int) {
		nc := c1 - c0
		sum := make([]float32, nc)
		half := (w + 2) / 2
		p1 := half - 1
		p2 := w - half + 1
		p3 := rows - w
		p4 := half - 1
		cur := 0
		ri, li, oi := 0, 0, 0
		for range p1 {
			src := in[ri*cols+c0 : ri*cols+c1]
			for c := range sum {
				sum[c] += src[c]
			}
			cur++
			ri++
		}
		for range p2 {
			src := in[ri*cols+c0 : ri*cols+c1]
			dst := out[oi*cols+c0 : oi*cols+c1]
			cur++
			fc := float32(cur)
			for c := range sum {
				s := sum[c] + src[c]
				sum[c] = s
				dst[c] = s / fc
			}
			ri++
			oi++
		}
		fc := float32(cur)
		for range p3 {
			add := in[ri*cols+c0 : ri*cols+c1]
			sub := in[li*cols+c0 : li*cols+c1]
			dst := out[oi*cols+c0 : oi*cols+c1]
			sub = sub[:len(add)]
			dst = dst[:len(add)]
			s := sum[:len(add)]
			for c := range s {
				v := s[c] + add[c]
				v -= sub[c]
				s[c] = v
				dst[c] = v / fc
			}
			li++
			ri++
			oi++
		}
		for range p4 {
			sub := in[li*cols+c0 : li*cols+c1]
			dst := out[oi*cols+c0 : oi*cols+c1]
			cur--
			fc := float32(cur)
			for c := range sum {
				s := sum[c] - sub[c]
				sum[c] = s
				dst[c] = s / fc
			}
			li++
			oi++
		}
	})
}

// parallel splits [0,n) into one contiguous range per worker.
func parallel(n, workers int, f func(lo, hi int)) {
	if workers <= 1 || n < 2*workers {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	step := (n + workers - 1) / workers
	for lo := step; lo < n; lo += step {
		wg.Add(1)
		go func(lo int) {
			defer wg.Done()
			f(lo, min(lo+step, n))
		}(lo)
	}
	f(0, min(step, n))
	wg.Wait()
}

// decimate samples the filtered image at the centres of a 64×64 grid; the
// index arithmetic is float64 as in the reference.
func decimate(in []float32, rows, cols int, out *[64][64]float32) {
	var colIdx [64]int
	for j := range 64 {
		colIdx[j] = int((float64(j) + 0.5) * float64(cols) / 64)
	}
	for i := range 64 {
		ri := int((float64(i) + 0.5) * float64(rows) / 64)
		row := in[ri*cols : (ri+1)*cols]
		for j := range 64 {
			out[i][j] = row[colIdx[j]]
		}
	}
}

// quality is the reference's image-domain quality metric: the sum of
// truncated, scaled gradients between neighbours, /90, capped at 100.
func quality(b *[64][64]float32) int {
	sum := 0
	for i := range 63 {
		for j := range 64 {
			sum += absInt(gradient(b[i][j], b[i+1][j]))
		}
	}
	for i := range 64 {
		for j := range 63 {
			sum += absInt(gradient(b[i][j], b[i][j+1]))
		}
	}
	return min(sum/90, 100)
}

func gradient(u, v float32) int {
	return int(float32(float32(u-v)*100) / 255)
}

func absInt(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// dct64To16 computes B = D·A·Dᵀ, each dot product summed in float32 in the
// reference's k order (the order changes the rounding, hence the bits).
func dct64To16(a *[64][64]float32, b *[16][16]float32) {
	var t [16][64]float32
	for i := range 16 {
		ti := &t[i]
		di := &dct[i]
		// k outermost so the inner loop runs along a row of A; every
		// t[i][j] still accumulates its products in k order 0..63.
		for k := range 64 {
			dik := di[k]
			ak := &a[k]
			for j := range 64 {
				ti[j] += float32(dik * ak[j])
			}
		}
	}
	for i := range 16 {
		for j := range 16 {
			var s float32
			ti, dj := &t[i], &dct[j]
			for k := range 64 {
				s += float32(ti[k] * dj[k])
			}
			b[i][j] = s
		}
	}
}

// median returns the 128th smallest coefficient (the lower median, which is
// what the reference's Torben method yields for 256 values).
func median(c *[16][16]float32) float32 {
	var v [256]float32
	for i := range 16 {
		copy(v[i*16:], c[i][:])
	}
	s := v[:]
	slices.Sort(s)
	return s[127]
}

// threshold sets bit i*16+j where the coefficient exceeds the median.
func threshold(c *[16][16]float32) Hash {
	m := median(c)
	var h Hash
	for i := range 16 {
		for j := range 16 {
			if c[i][j] > m {
				h.setBit(i*16 + j)
			}
		}
	}
	return h
}

// dihedrals derives the eight orientations from the DCT: transposing and
// negating odd-frequency coefficients is the DCT of the rotated or mirrored
// image, so no pixels are touched again.
func dihedrals(a *[16][16]float32) *[8]Hash {
	var out [8]Hash
	var b [16][16]float32
	for n := range 8 {
		dihedralCoef(n, a, &b)
		out[n] = threshold(&b)
	}
	return &out
}

// dihedralCoef writes variant n of the coefficients a into b. Indices are
// 0-based, so an odd index is an even frequency (i+1): mirroring an axis
// negates the odd frequencies along it, and a quarter turn also transposes.
func dihedralCoef(n int, a, b *[16][16]float32) {
	for i := range 16 {
		for j := range 16 {
			v := a[i][j]
			iOdd, jOdd := i&1 == 1, j&1 == 1
			switch n {
			case 0: // original
				b[i][j] = v
			case 1: // rotate90
				if !jOdd {
					v = -v
				}
				b[j][i] = v
			case 2: // rotate180
				if iOdd != jOdd {
					v = -v
				}
				b[i][j] = v
			case 3: // rotate270
				if !iOdd {
					v = -v
				}
				b[j][i] = v
			case 4: // flipX
				if !iOdd {
					v = -v
				}
				b[i][j] = v
			case 5: // flipY
				if !jOdd {
					v = -v
				}
				b[i][j] = v
			case 6: // flipPlus1: transpose
				b[j][i] = v
			case 7: // flipMinus1
				if iOdd != jOdd {
					v = -v
				}
				b[j][i] = v
			}
		}
	}
}
