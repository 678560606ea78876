package pdq

import (
	"image"
	"math"
	"slices"
	"strconv"
)

// The variants undo the cheap edits people make to slip a listed picture
// past hash lists, each measured to bring PDQ's distance back from
// 68-254 to a few bits: borders and letterboxing (trim), caption bars
// (peel), a gap between halves (degap), collages and tilings (quadrants),
// colour negatives (complemented hash) and washed-out contrast (stretch).
// The deep search adds half-size windows (a picture pasted on a busy
// canvas) and a counter-rotation sweep.

const (
	// uniformRange is the largest luma spread (of 255) a row or column
	// may have and still count as border: the working plane is already
	// area-averaged, so this absorbs JPEG ringing but not picture detail.
	uniformRange = 16
	// peelTolerance is how near the bar colour a pixel must be to count
	// toward peelShare.
	peelTolerance = 12
	// peelShare is the share of a row or column in the bar colour that
	// makes it caption bar rather than picture (text covers the rest).
	peelShare = 0.4
	// barEdgeShare is the share of a side's outermost line that must be
	// one colour for the side to be a bar at all.
	barEdgeShare = 0.9
	// minVariantSide is the smallest side, at working resolution, a
	// trimmed or cut-out part must keep to be hashed: smaller parts
	// hash to noise and only add chances of an accidental match.
	minVariantSide = 24
	// squeezedRange is the 1st-99th percentile luma spread under which a
	// picture counts as washed out and is stretched.
	squeezedRange = 160
)

// variantSet collects variant forms, leaving out any whose hash is
// already present with at least its quality (a stretched picture hashes
// the same as the washed-out one, but only its quality can be matched).
type variantSet struct {
	forms []Form
	seen  map[Hash]int // hash → best quality present
	// budget is the pixels still allowed to be hashed for variants.
	budget int
}

func (vs *variantSet) add(f Form) {
	if q, ok := vs.seen[f.Hash]; ok && q >= f.Quality {
		return
	}
	vs.seen[f.Hash] = f.Quality
	vs.forms = append(vs.forms, f)
}

// spend takes n pixels from the budget, reporting whether they were there.
func (vs *variantSet) spend(n int) bool {
	if n > vs.budget {
		return false
	}
	vs.budget -= n
	return true
}

// hashPart hashes rectangle r of p as a variant, within the budget.
func (vs *variantSet) hashPart(p *plane, r image.Rectangle, name, variant string) {
	if r.Dx() < minVariantSide || r.Dy() < minVariantSide || !vs.spend(r.Dx()*r.Dy()) {
		return
	}
	res := p.hash(r)
	vs.add(Form{Name: name, Variant: variant, Hash: res.Hash, Quality: res.Quality})
}

// defaultVariants adds the default variants of the displayed picture p
// (whose hash is base) to vs; prefix names the frame ("" for the first).
func defaultVariants(vs *variantSet, p *plane, base Result, prefix string) {
	if p.w < minVariantSide || p.h < minVariantSide {
		// No part of it could be hashed; only the negative is free.
		p = nil
	}
	if !base.Hash.IsZero() {
		// PDQ thresholds its DCT at the median, and a negative negates
		// every coefficient, so its hash is the complement (but for the
		// median coefficient itself): no pixel needs touching.
		neg := base.Hash
		for i := range neg {
			neg[i] = ^neg[i]
		}
		vs.add(Form{Name: join(prefix, "negative"), Variant: VariantNegative, Hash: neg, Quality: base.Quality})
	}
	if p == nil {
		return
	}
	full := p.bounds()
	if lo, hi := percentiles(p); hi-lo < squeezedRange && hi-lo >= 4 {
		if vs.spend(p.w * p.h) {
			q := stretch(p, lo, hi)
			res := q.hash(full)
			vs.add(Form{Name: join(prefix, "stretched"), Variant: VariantStretched, Hash: res.Hash, Quality: res.Quality})
		}
	}
	trimmed, peeled := trim(p, full), peel(p, full)
	cut := trimmed // what the quadrants are cut from
	if peeled != trimmed && peeled.In(trimmed) && 10*area(trimmed) >= 9*area(full) {
		// Peeling went on past a thin uniform edge (a caption bar's
		// padding): the trimmed picture is half-way, still captioned,
		// and a tenth of the budget better spent on the quadrants.
		cut = peeled
	} else if trimmed != full {
		vs.hashPart(p, trimmed, join(prefix, "trimmed"), VariantTrimmed)
	}
	if peeled != trimmed && peeled != full {
		vs.hashPart(p, peeled, join(prefix, "peeled"), VariantPeeled)
	}
	if g, ok := degap(p); ok {
		vs.hashPart(g, g.bounds(), join(prefix, "degapped"), VariantDegapped)
	}
	for i, q := range quadrants(cut) {
		vs.hashPart(p, trim(p, q), join(prefix, "quadrant "+strconv.Itoa(i+1)), VariantQuadrant)
	}
}

func area(r image.Rectangle) int { return r.Dx() * r.Dy() }

// deepVariants adds the pasted-picture windows and the rotation sweep.
func deepVariants(vs *variantSet, p *plane, prefix string) {
	if p.w < minVariantSide || p.h < minVariantSide {
		return
	}
	// A picture pasted on a busy canvas: PDQ does not survive a window
	// that is off by even 2% of its side (measured: 38 bits at 1.6%), so
	// a grid of windows only finds pictures pasted where the grid happens
	// to be. The paste leaves straight edges; the windows are the
	// rectangles those edges bound.
	for i, r := range pastedRects(p, maxWindows) {
		vs.hashPart(p, r, join(prefix, "window "+strconv.Itoa(i+1)), VariantWindow)
	}
	if max(p.w, p.h) > deepSide {
		p = downscale(p.pix, p.h, p.w, deepSide)
	}
	fill := cornerColour(p)
	for a := 1; a <= 15; a++ {
		for _, deg := range [2]int{a, -a} {
			// The turn costs about what hashing it does.
			if !vs.spend(p.w * p.h) {
				return
			}
			q := rotate(p, float64(deg), fill)
			vs.hashPart(q, trim(q, q.bounds()), join(prefix, "rotated "+strconv.Itoa(deg)+"°"), VariantRotated)
		}
	}
}

const (
	// maxWindows bounds the pasted-picture windows hashed per picture.
	maxWindows = 6
	// edgeStep is the smallest luma step across a boundary that can be a
	// paste's edge; it must also be a local maximum across the boundary,
	// so a smooth gradient is no edge however steep.
	edgeStep = 8
	// minSupport is the share of a rectangle's perimeter that must be
	// edge for it to count as pasted (where picture and canvas happen to
	// have the same luma the edge vanishes).
	minSupport = 0.6
)

// edgeMap marks the paste-like edges of p: at the boundary before row
// (or column, with cols) i, position j along it. sum[i] holds running
// counts so the edge along any stretch of a boundary is O(1).
type edgeMap struct {
	along int
	sum   [][]int32 // sum[i][j] = edges at boundary i before position j
	best  []int     // longest gap-tolerant run per boundary
	runs  [][2]int  // that run's ends
}

func newEdgeMap(p *plane, cols bool) *edgeMap {
	n, along := p.h, p.w
	if cols {
		n, along = p.w, p.h
	}
	at := func(i, j int) float32 { // i across the boundaries, j along
		if cols {
			return p.pix[j*p.w+i]
		}
		return p.pix[i*p.w+j]
	}
	abs := func(v float32) float32 { return max(v, -v) }
	m := &edgeMap{along: along, sum: make([][]int32, n), best: make([]int, n), runs: make([][2]int, n)}
	gap := along / 16
	for i := 2; i+1 < n; i++ {
		sum := make([]int32, along+1)
		start, last := -1, -1
		for j := range along {
			sum[j+1] = sum[j]
			s := abs(at(i, j) - at(i-1, j))
			if s < edgeStep || s < abs(at(i-1, j)-at(i-2, j)) || s <= abs(at(i+1, j)-at(i, j)) {
				continue
			}
			sum[j+1]++
			if start < 0 || j-last > gap {
				start = j
			}
			last = j
			if last+1-start > m.best[i] {
				m.best[i], m.runs[i] = last+1-start, [2]int{start, last + 1}
			}
		}
		m.sum[i] = sum
	}
	return m
}

// support counts the edges at boundary i from a to b.
func (m *edgeMap) support(i, a, b int) int {
	// Boundaries 0 and n are the picture's own edges: nothing is pasted
	// across them.
	if i <= 0 || i >= len(m.sum) || m.sum[i] == nil {
		return 0
	}
	return int(m.sum[i][b] - m.sum[i][a])
}

// lines are the boundaries most likely to be a paste's sides: those with
// the longest straight runs, plus where the other direction's runs end.
func (m *edgeMap) lines(other *edgeMap) []int {
	type l struct{ at, n int }
	var ls []l
	for i, n := range m.best {
		// No suppression of neighbours: a paste between two rows of the
		// working plane splits its edge over both, and which one carries
		// the longer run is chance; the rectangles' support decides.
		if n >= m.along/8 {
			ls = append(ls, l{i, n})
		}
	}
	slices.SortStableFunc(ls, func(a, b l) int { return b.n - a.n })
	var out []int
	for _, x := range ls[:min(len(ls), 20)] {
		out = append(out, x.at)
	}
	type o struct{ at, n int }
	var ends []o
	for i, n := range other.best {
		if n >= other.along/8 {
			ends = append(ends, o{other.runs[i][0], n}, o{other.runs[i][1], n})
		}
	}
	slices.SortFunc(ends, func(a, b o) int { return b.n - a.n })
	for _, e := range ends[:min(len(ends), 16)] {
		out = append(out, e.at)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// pastedRects returns up to n rectangles whose perimeter is mostly
// straight edge, best supported first: pictures pasted onto a canvas.
// Each pair of candidate columns is checked against every row boundary
// (and each pair of candidate rows against every column boundary), so
// one side found is enough to find the other exactly.
func pastedRects(p *plane, n int) []image.Rectangle {
	rows, cols := newEdgeMap(p, false), newEdgeMap(p, true)
	type cand struct {
		r       image.Rectangle
		support float64
	}
	var cands []cand
	try := func(x0, y0, x1, y1 int) {
		if x1-x0 < minVariantSide || y1-y0 < minVariantSide || (x1-x0)*(y1-y0) > p.w*p.h*9/10 {
			return
		}
		top, bottom := rows.support(y0, x0, x1), rows.support(y1, x0, x1)
		left, right := cols.support(x0, y0, y1), cols.support(x1, y0, y1)
		w, h := float64(x1-x0), float64(y1-y0)
		// Every side must carry edge, not just two long ones.
		if float64(min(top, bottom)) < 0.3*w || float64(min(left, right)) < 0.3*h {
			return
		}
		if s := float64(top+bottom+left+right) / (2 * (w + h)); s >= minSupport {
			cands = append(cands, cand{image.Rect(x0, y0, x1, y1), s})
		}
	}
	// across returns the boundaries of m carrying edge along at least
	// half of [a,b), best first, at most 12.
	across := func(m *edgeMap, a, b int) []int {
		type l struct{ at, n int }
		var ls []l
		for i := 1; i < len(m.sum); i++ {
			if k := m.support(i, a, b); 2*k >= b-a {
				ls = append(ls, l{i, k})
			}
		}
		slices.SortStableFunc(ls, func(x, y l) int { return y.n - x.n })
		out := make([]int, 0, 12)
		for _, x := range ls[:min(len(ls), 12)] {
			out = append(out, x.at)
		}
		slices.Sort(out)
		return out
	}
	xs, ys := cols.lines(rows), rows.lines(cols)
	for i, x0 := range xs {
		for _, x1 := range xs[i+1:] {
			if x1-x0 < minVariantSide {
				continue
			}
			found := across(rows, x0, x1)
			for j, y0 := range found {
				for _, y1 := range found[j+1:] {
					try(x0, y0, x1, y1)
				}
			}
		}
	}
	for i, y0 := range ys {
		for _, y1 := range ys[i+1:] {
			if y1-y0 < minVariantSide {
				continue
			}
			found := across(cols, y0, y1)
			for j, x0 := range found {
				for _, x1 := range found[j+1:] {
					try(x0, y0, x1, y1)
				}
			}
		}
	}
	slices.SortStableFunc(cands, func(a, b cand) int {
		switch {
		case a.support > b.support:
			return -1
		case a.support < b.support:
			return 1
		}
		return 0
	})
	var out []image.Rectangle
	for _, c := range cands {
		if len(out) == n {
			break
		}
		if !slices.Contains(out, c.r) {
			out = append(out, c.r)
		}
	}
	return out
}

// uniform reports whether vals spread over at most uniformRange.
func uniform(vals []float32) bool {
	if len(vals) == 0 {
		return true
	}
	lo, hi := vals[0], vals[0]
	for _, v := range vals[1:] {
		lo, hi = min(lo, v), max(hi, v)
		if hi-lo > uniformRange {
			return false
		}
	}
	return true
}

// col copies column x of rows [y0,y1) of p into buf.
func (p *plane) col(x, y0, y1 int, buf []float32) []float32 {
	buf = buf[:0]
	for y := y0; y < y1; y++ {
		buf = append(buf, p.pix[y*p.w+x])
	}
	return buf
}

// trim shrinks r past its uniform edge rows and columns (borders,
// letterboxing, a blank canvas); each side may have its own colour.
func trim(p *plane, r image.Rectangle) image.Rectangle {
	buf := make([]float32, 0, p.h)
	for range 2 { // columns trimmed can leave rows uniform that were not
		for r.Dy() > minVariantSide && uniform(p.row(r.Min.Y)[r.Min.X:r.Max.X]) {
			r.Min.Y++
		}
		for r.Dy() > minVariantSide && uniform(p.row(r.Max.Y - 1)[r.Min.X:r.Max.X]) {
			r.Max.Y--
		}
		for r.Dx() > minVariantSide && uniform(p.col(r.Min.X, r.Min.Y, r.Max.Y, buf)) {
			r.Min.X++
		}
		for r.Dx() > minVariantSide && uniform(p.col(r.Max.X-1, r.Min.Y, r.Max.Y, buf)) {
			r.Max.X--
		}
	}
	return r
}

// peel shrinks r past edge bars that are mostly one colour: caption bars
// whose text keeps them from being uniform. A side is a bar only if its
// outermost line is nearly all one colour (a bar's padding; a picture's
// own edge seldom is), and it is peeled while at least peelShare of a
// line is that colour, at most to 40% of the picture, so a picture that
// is mostly sky keeps its middle.
func peel(p *plane, r image.Rectangle) image.Rectangle {
	buf := make([]float32, 0, p.h)
	share := func(vals []float32, c float32) float32 {
		n := 0
		for _, v := range vals {
			if v-c <= peelTolerance && c-v <= peelTolerance {
				n++
			}
		}
		return float32(n) / float32(len(vals))
	}
	// side peels lines line(0), line(1), ... while they are bar.
	side := func(limit int, line func(k int) []float32) int {
		first := line(0)
		c := median32(first)
		if share(first, c) < barEdgeShare {
			return 0
		}
		k := 0
		for k < limit && share(line(k), c) >= peelShare {
			k++
		}
		return k
	}
	maxY, maxX := r.Dy()*2/5, r.Dx()*2/5
	r0 := r
	r.Min.Y += side(maxY, func(k int) []float32 { return p.row(r0.Min.Y + k)[r0.Min.X:r0.Max.X] })
	r.Max.Y -= side(maxY, func(k int) []float32 { return p.row(r0.Max.Y - 1 - k)[r0.Min.X:r0.Max.X] })
	r1 := r
	r.Min.X += side(maxX, func(k int) []float32 { return p.col(r1.Min.X+k, r1.Min.Y, r1.Max.Y, buf) })
	r.Max.X -= side(maxX, func(k int) []float32 { return p.col(r1.Max.X-1-k, r1.Min.Y, r1.Max.Y, buf) })
	return r
}

// degap returns p without any uniform row or column, when some of them
// split the picture one way into parts of at least a fifth each (the gap
// between two halves; not the blank line between two lines of a caption,
// nor a border, which trim handles).
func degap(p *plane) (*plane, bool) {
	var rows, cols []int
	lo := slices.Clone(p.row(0))
	hi := slices.Clone(lo)
	for y := range p.h {
		row := p.row(y)
		if !uniform(row) {
			rows = append(rows, y)
		}
		for x, v := range row {
			lo[x], hi[x] = min(lo[x], v), max(hi[x], v)
		}
	}
	for x := range p.w {
		if hi[x]-lo[x] > uniformRange {
			cols = append(cols, x)
		}
	}
	// Gaps both ways are a grid of tiles, which the quadrants cut apart;
	// closing the gaps would only spend their budget.
	if len(rows) < minVariantSide || len(cols) < minVariantSide || splits(rows) == splits(cols) {
		return nil, false
	}
	q := &plane{w: len(cols), h: len(rows), pix: make([]float32, 0, len(cols)*len(rows))}
	for _, y := range rows {
		src := p.row(y)
		for _, x := range cols {
			q.pix = append(q.pix, src[x])
		}
	}
	return q, true
}

// splits reports whether the kept indices have a gap with at least a
// fifth of them on each side.
func splits(kept []int) bool {
	n := len(kept)
	for k := max(1, n/5); k <= n-n/5 && k < n; k++ {
		if kept[k] != kept[k-1]+1 {
			return true
		}
	}
	return false
}

// quadrants splits r at its middle.
func quadrants(r image.Rectangle) [4]image.Rectangle {
	mx, my := (r.Min.X+r.Max.X)/2, (r.Min.Y+r.Max.Y)/2
	return [4]image.Rectangle{
		image.Rect(r.Min.X, r.Min.Y, mx, my), image.Rect(mx, r.Min.Y, r.Max.X, my),
		image.Rect(r.Min.X, my, mx, r.Max.Y), image.Rect(mx, my, r.Max.X, r.Max.Y),
	}
}

// percentiles returns the 1st and 99th percentile luma of p.
func percentiles(p *plane) (lo, hi float32) {
	var hist [256]int
	for _, v := range p.pix {
		hist[min(max(int(v), 0), 255)]++
	}
	n := len(p.pix)
	cut := n / 100
	acc := 0
	l, h := 0, 255
	for i, c := range hist {
		acc += c
		if acc > cut {
			l = i
			break
		}
	}
	acc = 0
	for i := 255; i >= 0; i-- {
		acc += hist[i]
		if acc > cut {
			h = i
			break
		}
	}
	return float32(l), float32(h + 1)
}

// stretch maps [lo,hi] onto [0,255].
func stretch(p *plane, lo, hi float32) *plane {
	q := &plane{w: p.w, h: p.h, pix: make([]float32, len(p.pix))}
	k := 255 / (hi - lo)
	for i, v := range p.pix {
		q.pix[i] = min(max((v-lo)*k, 0), 255)
	}
	return q
}

// cornerColour is the mean of p's four corners: the fill a rotated copy
// was most likely put on.
func cornerColour(p *plane) float32 {
	return (p.pix[0] + p.pix[p.w-1] + p.pix[(p.h-1)*p.w] + p.pix[p.h*p.w-1]) / 4
}

// rotate turns p by deg degrees about its centre (bilinear), keeping its
// size; what comes from outside p is fill.
func rotate(p *plane, deg float64, fill float32) *plane {
	q := &plane{w: p.w, h: p.h, pix: make([]float32, len(p.pix))}
	sin, cos := math.Sincos(deg * math.Pi / 180)
	cx, cy := float64(p.w-1)/2, float64(p.h-1)/2
	for y := range q.h {
		dy := float64(y) - cy
		out := q.row(y)
		for x := range out {
			dx := float64(x) - cx
			sx := cos*dx - sin*dy + cx
			sy := sin*dx + cos*dy + cy
			x0, y0 := math.Floor(sx), math.Floor(sy)
			ix, iy := int(x0), int(y0)
			if ix < 0 || iy < 0 || ix+1 >= p.w || iy+1 >= p.h {
				out[x] = fill
				continue
			}
			fx, fy := float32(sx-x0), float32(sy-y0)
			i := iy*p.w + ix
			a := p.pix[i] + (p.pix[i+1]-p.pix[i])*fx
			b := p.pix[i+p.w] + (p.pix[i+p.w+1]-p.pix[i+p.w])*fx
			out[x] = a + (b-a)*fy
		}
	}
	return q
}

func median32(vals []float32) float32 {
	s := slices.Clone(vals)
	slices.Sort(s)
	return s[len(s)/2]
}
