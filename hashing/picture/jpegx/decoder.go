package jpegx

import (
	"bytes"
	"fmt"
)

// Marker codes (the byte after 0xFF), T.81 Table B.1.
const (
	mSOF0  = 0xC0 // baseline
	mSOF1  = 0xC1 // extended sequential, Huffman
	mSOF2  = 0xC2 // progressive, Huffman
	mSOF3  = 0xC3 // lossless, Huffman
	mDHT   = 0xC4
	mSOF9  = 0xC9 // extended sequential, arithmetic
	mSOF10 = 0xCA // progressive, arithmetic
	mSOF11 = 0xCB // lossless, arithmetic
	mDAC   = 0xCC
	mRST0  = 0xD0
	mRST7  = 0xD7
	mSOI   = 0xD8
	mEOI   = 0xD9
	mSOS   = 0xDA
	mDQT   = 0xDB
	mDNL   = 0xDC
	mDRI   = 0xDD
	mAPP0  = 0xE0
	mAPP14 = 0xEE
)

// Limits applied before anything is allocated.
const (
	maxComponents = 4
	// maxScans bounds how many scan headers are looked at at all; the
	// work budget below bounds what they cost.
	maxScans = 4096
)

// colour spaces, decided as libjpeg-turbo's jdapimin.c does.
const (
	csGray = iota
	csYCbCr
	csRGB
	csCMYK
	csYCCK
)

type component struct {
	id     int
	h, v   int
	tq     int
	bw, bh int // blocks in the MCU-padded grid
	// cbw, cbh: blocks that cover the component itself, the extent of a
	// non-interleaved scan (T.81 A.2.2).
	cbw, cbh int
	coef     []int16 // bw*bh blocks of K zig-zag coefficients
	// mask: per block, which zig-zag coefficients are nonzero
	// (progressive AC scans): refinement walks it, and at a reduced
	// scale it is the only record of coefficients not stored.
	mask []uint64
	// needMask: a reduced-scale decode must keep decoding AC scans past
	// the stored prefix, because a refinement scan straddles it.
	needMask bool
	q        [64]uint16 // quantisation table latched at the component's first scan
	latched  bool
	scanned  bool // some scan carried this component
	dcSeen   bool
	pred     int32
	rowOff   int // first block row held in coef (streaming decode)
	// lossless: decoded samples (full resolution, bw*8 wide)
}

type scanInfo struct {
	comps          []int // indexes into decoder.comps
	td, ta         []int // table selectors per scan component
	ss, se, ah, al int
}

type decoder struct {
	data       []byte
	pos        int
	maxPixels  int
	headerOnly bool

	qt        [4][64]uint16
	qtDefined [4]bool
	dcTab     [4]*huffTable
	acTab     [4]*huffTable
	// arithmetic conditioning (DAC), T.81 F.1.4.4.1.4 defaults
	arithL, arithU [4]uint8
	arithK         [4]uint8

	restartInterval int
	jfif            bool
	adobe           bool
	adobeTransform  int

	// frame
	frame       bool
	sof         byte
	progressive bool
	arithmetic  bool
	lossless    bool
	precision   int
	width       int
	height      int
	comps       []component
	hmax, vmax  int
	mcusX       int
	mcusY       int
	scale       int
	kstore      int // coefficients stored per block (zig-zag prefix)
	colorSpace  int
	scansPlan   []scanInfo // all scan headers, found ahead by prescan
	scansSeen   int

	// zmap maps zig-zag index to storage index: natural order at full
	// scale (what idct8 reads), zig-zag prefix when reduced.
	zmap *[64]int
	// streaming: a single-scan sequential file is transformed one MCU
	// row at a time into planes, so no whole-image coefficient store.
	streaming  bool
	streamDone bool
	planes     [][]byte
	strides    []int
	idctT      []*idctTables

	br     bitReader
	ar     arithDecoder
	as     *arithState
	ll     []llComp // lossless state
	eobrun int
	// rstRenumbered: this scan's restart markers have not followed
	// their numbering, so the numbers are no guide.
	rstRenumbered bool
	mkPos         int  // position of the next marker found by restart, -1 if unknown
	mk            byte // and its code
	truncated     bool
	stopped       bool        // work budget spent
	badTab        [2][4]error // the last DHT for the class and id could not be built
	ambiguous     error       // a block no decoder agrees on (checkRange)
	checkOnly     bool        // CheckSamples: entropy-decode and check, no pixels
	work          int64
	budget        int64
	anyScan       bool
	sawEOI        bool

	// Luma-blocks mode (LumaBlocks): no pixels, the luma's blocks go to
	// lumaRow once lumaStart has been told the geometry.
	lumaStart func(LumaInfo) func(by int, blocks []float32, rows []uint8)
	lumaRow   func(by int, blocks []float32, rows []uint8)
	lumaBuf   []float32
	lumaRows  []uint8
	clip      clipState
}

func (d *decoder) decode() (Result, error) {
	data := d.data
	if len(data) < 3 || data[0] != 0xFF || data[1] != mSOI {
		return Result{}, ErrNotJPEG
	}
	d.pos = 2
	for i := range d.arithL {
		d.arithL[i], d.arithU[i], d.arithK[i] = 0, 1, 5
	}
markers:
	for !d.stopped {
		m, ok := d.nextMarker()
		if !ok {
			break
		}
		if m == mEOI {
			d.sawEOI = true
			break
		}
		if m == mSOI || (m >= mRST0 && m <= mRST7) || m == 0x01 {
			continue // stray standalone markers are ignored, as libjpeg does
		}
		if d.pos+2 > len(data) {
			break
		}
		n := int(data[d.pos])<<8 | int(data[d.pos+1])
		if n < 2 {
			if !d.anyScan {
				return Result{}, corrupt("bad segment length")
			}
			d.truncated = true
			break
		}
		end := d.pos + n
		if end > len(data) {
			if d.frame && (d.anyScan || m == mSOS) {
				// The data ends inside a segment: what was decoded stands.
				d.truncated = true
				break
			}
			return Result{}, corrupt("segment runs past the end of the data")
		}
		seg := data[d.pos+2 : end]
		d.pos = end
		var err error
		switch m {
		case mDHT:
			err = d.parseDHT(seg)
		case mDQT:
			err = d.parseDQT(seg)
		case mDRI:
			if len(seg) >= 2 {
				d.restartInterval = int(seg[0])<<8 | int(seg[1])
			}
		case mDAC:
			d.parseDAC(seg)
		case mAPP0:
			// libjpeg wants the full 14-byte JFIF header.
			if !d.anyScan && len(seg) >= 14 && bytes.HasPrefix(seg, []byte("JFIF\x00")) {
				d.jfif = true
			}
		case mAPP14:
			if !d.anyScan && len(seg) >= 12 && bytes.HasPrefix(seg, []byte("Adobe")) {
				d.adobe = true
				d.adobeTransform = int(seg[11])
			}
		case mSOF0, mSOF1, mSOF2, mSOF3, mSOF9, mSOF10, mSOF11:
			if d.frame {
				if d.anyScan {
					d.truncated = true // libjpeg-turbo stops here too
					break markers
				}
				return Result{}, corrupt("second frame header")
			}
			err = d.parseSOF(m, seg)
			if err == nil && d.headerOnly {
				return Result{}, nil
			}
		case 0xC5, 0xC6, 0xC7, 0xCD, 0xCE, 0xCF:
			return Result{}, unsupported("hierarchical JPEG (SOF%d)", m-0xC0)
		case mSOS:
			if !d.frame {
				return Result{}, corrupt("scan before frame header")
			}
			err = d.processScan(seg)
		}
		if err != nil {
			if d.anyScan {
				// What was decoded so far stands, as libjpeg's
				// warnings-and-go-on would show it.
				d.truncated = true
				break
			}
			return Result{}, err
		}
	}
	if !d.frame {
		return Result{}, corrupt("no frame header")
	}
	if d.ambiguous != nil {
		return Result{}, d.ambiguous
	}
	if d.stopped {
		return Result{}, fmt.Errorf("%w after %d scans, %d block visits for a %d-visit budget", ErrWorkBound, d.scansSeen, d.work, d.budget)
	}
	if d.headerOnly {
		return Result{}, nil
	}
	if !d.anyScan {
		if d.sawEOI || d.comps[0].coef == nil && d.planes == nil && d.ll == nil {
			return Result{}, corrupt("no scan data")
		}
		// The data ended before the first scan: libjpeg-turbo shows an
		// all-grey picture, and so do we.
		d.truncated = true
	}
	if !d.sawEOI && d.progressive {
		// Later refinement scans may be missing; nothing says they are not.
		d.truncated = true
	}
	if !d.streaming {
		for i := range d.comps {
			c := &d.comps[i]
			if err := d.checkRange(i, c.coef, c.bw*c.bh); err != nil {
				return Result{}, err
			}
		}
	}
	if d.checkOnly {
		return Result{Truncated: d.truncated}, nil
	}
	if d.lumaStart != nil {
		return d.finishLuma()
	}
	for i := range d.comps {
		if !d.comps[i].scanned || (d.progressive && !d.comps[i].dcSeen) {
			d.truncated = true
		}
	}
	img := d.assemble()
	return Result{Image: img, Scale: d.scale, Truncated: d.truncated}, nil
}

// nextMarker skips to the next marker, past any garbage and fill bytes as
// libjpeg's next_marker does, and returns its code with d.pos after it.
func (d *decoder) nextMarker() (byte, bool) {
	data := d.data
	for {
		i := bytes.IndexByte(data[d.pos:], 0xFF)
		if i < 0 {
			d.pos = len(data)
			return 0, false
		}
		p := d.pos + i
		for p+1 < len(data) && data[p+1] == 0xFF {
			p++
		}
		if p+1 >= len(data) {
			d.pos = len(data)
			return 0, false
		}
		m := data[p+1]
		d.pos = p + 2
		if m != 0 {
			return m, true
		}
	}
}

func (d *decoder) parseDQT(seg []byte) error {
	for len(seg) > 0 {
		pq, tq := seg[0]>>4, seg[0]&15
		if tq > 3 {
			return corrupt("DQT table id %d", tq)
		}
		seg = seg[1:]
		t := &d.qt[tq]
		switch pq {
		case 0:
			if len(seg) < 64 {
				return corrupt("short DQT")
			}
			for i := range 64 {
				t[i] = uint16(seg[i])
			}
			seg = seg[64:]
		case 1:
			if len(seg) < 128 {
				return corrupt("short DQT")
			}
			for i := range 64 {
				t[i] = uint16(seg[2*i])<<8 | uint16(seg[2*i+1])
			}
			seg = seg[128:]
		default:
			return corrupt("DQT precision %d", pq)
		}
		d.qtDefined[tq] = true
	}
	return nil
}

func (d *decoder) parseDHT(seg []byte) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return corrupt("short DHT")
		}
		tc, th := seg[0]>>4, seg[0]&15
		if tc > 1 || th > 3 {
			return corrupt("DHT class %d id %d", tc, th)
		}
		var counts [17]int
		total := 0
		for i := 1; i <= 16; i++ {
			counts[i] = int(seg[i])
			total += counts[i]
		}
		seg = seg[17:]
		if total > 256 || len(seg) < total {
			return corrupt("bad DHT counts")
		}
		// A table that cannot be built is an error only for a scan that
		// uses it, as in libjpeg-turbo, which builds tables at each
		// scan's start: an unused bad table followed by a good one is a
		// file browsers show.
		t, err := buildHuff(counts, seg[:total])
		d.badTab[tc][th] = err
		seg = seg[total:]
		if tc == 0 {
			d.dcTab[th] = t
		} else {
			d.acTab[th] = t
		}
	}
	return nil
}

func (d *decoder) parseDAC(seg []byte) {
	for len(seg) >= 2 {
		tc, tb, v := seg[0]>>4, seg[0]&15, seg[1]
		seg = seg[2:]
		if tb > 3 {
			continue
		}
		if tc == 0 {
			d.arithL[tb], d.arithU[tb] = v&15, v>>4
			if d.arithL[tb] > d.arithU[tb] {
				d.arithL[tb] = d.arithU[tb] // as libjpeg's sanity fix-up allows
			}
		} else if v >= 1 && v <= 63 {
			d.arithK[tb] = v
		}
	}
}

func (d *decoder) parseSOF(m byte, seg []byte) error {
	if len(seg) < 6 {
		return corrupt("short SOF")
	}
	d.sof = m
	d.progressive = m == mSOF2 || m == mSOF10
	d.arithmetic = m >= mSOF9
	d.lossless = m == mSOF3 || m == mSOF11
	d.precision = int(seg[0])
	d.height = int(seg[1])<<8 | int(seg[2])
	d.width = int(seg[3])<<8 | int(seg[4])
	nc := int(seg[5])
	switch {
	case d.lossless:
		if d.precision < 2 || d.precision > 16 {
			return unsupported("lossless precision %d", d.precision)
		}
	case d.precision == 8, d.precision == 12:
	default:
		return unsupported("precision %d", d.precision)
	}
	if nc != 1 && nc != 3 && nc != 4 {
		return unsupported("%d components", nc)
	}
	if len(seg) < 6+3*nc {
		return corrupt("short SOF")
	}
	if d.width == 0 {
		return corrupt("zero width")
	}
	d.comps = make([]component, nc)
	d.hmax, d.vmax = 1, 1
	for i := range nc {
		c := &d.comps[i]
		p := seg[6+3*i:]
		c.id = int(p[0])
		c.h, c.v = int(p[1]>>4), int(p[1]&15)
		c.tq = int(p[2])
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 {
			return corrupt("sampling factors %dx%d", c.h, c.v)
		}
		if c.tq > 3 {
			return corrupt("quant table %d", c.tq)
		}
		// libjpeg-turbo's rule for a duplicate ID: make it one more
		// than the largest ID so far, so scans can still name it.
		for j := range i {
			if d.comps[j].id == c.id {
				mx := d.comps[0].id
				for k := 1; k < i; k++ {
					mx = max(mx, d.comps[k].id)
				}
				c.id = mx + 1
				break
			}
		}
		d.hmax = max(d.hmax, c.h)
		d.vmax = max(d.vmax, c.v)
	}
	d.frame = true
	d.prescan()
	if d.height == 0 {
		return corrupt("zero height and no DNL")
	}
	if d.headerOnly {
		return nil
	}
	return d.setupFrame()
}

// prescan walks the rest of the file's segments without decoding: it
// collects every scan header (so progressive decoding at a reduced scale
// knows which scans it may skip) and a DNL segment's height.
func (d *decoder) prescan() {
	save := d.pos
	defer func() { d.pos = save }()
	dnlDone := d.height != 0
	for len(d.scansPlan) < maxScans {
		m, ok := d.nextMarker()
		if !ok || m == mEOI {
			return
		}
		if (m >= mRST0 && m <= mRST7) || m == mSOI || m == 0x01 {
			continue
		}
		if d.pos+2 > len(d.data) {
			return
		}
		n := int(d.data[d.pos])<<8 | int(d.data[d.pos+1])
		if n < 2 || d.pos+n > len(d.data) {
			return
		}
		seg := d.data[d.pos+2 : d.pos+n]
		d.pos += n
		switch m {
		case mDNL:
			if !dnlDone && len(seg) >= 2 {
				d.height = int(seg[0])<<8 | int(seg[1])
				dnlDone = true
			}
		case mSOS:
			if sc, err := d.parseSOSHeader(seg); err == nil {
				d.scansPlan = append(d.scansPlan, sc)
			}
		}
	}
}

func (d *decoder) parseSOSHeader(seg []byte) (scanInfo, error) {
	var sc scanInfo
	if len(seg) < 1 {
		return sc, corrupt("short SOS")
	}
	ns := int(seg[0])
	if ns < 1 || ns > maxComponents || len(seg) < 1+2*ns+3 {
		return sc, corrupt("bad SOS")
	}
	ids := make([]int, ns)
	for i := range ns {
		cc := int(seg[1+2*i])
		// libjpeg-turbo: an ID repeated within a scan becomes one more
		// than the largest ID named before it, so IDs that are all the
		// same match the frame's components by order.
		for j := range i {
			if ids[j] == cc {
				cc = ids[0]
				for k := 1; k < i; k++ {
					cc = max(cc, ids[k])
				}
				cc++
				break
			}
		}
		ids[i] = cc
		ci := -1
		for k := range d.comps {
			if d.comps[k].id == cc {
				ci = k
				break
			}
		}
		if ci < 0 {
			return sc, corrupt("scan names unknown component %d", cc)
		}
		for _, prev := range sc.comps {
			if prev == ci {
				return sc, corrupt("component twice in a scan")
			}
		}
		sc.comps = append(sc.comps, ci)
		sc.td = append(sc.td, int(seg[2+2*i]>>4))
		sc.ta = append(sc.ta, int(seg[2+2*i]&15))
	}
	p := seg[1+2*ns:]
	sc.ss, sc.se, sc.ah, sc.al = int(p[0]), int(p[1]), int(p[2]>>4), int(p[2]&15)
	return sc, nil
}

// setupFrame picks the scale, decides the colour space and allocates the
// coefficient store, after checking that nothing in it is absurd.
func (d *decoder) setupFrame() error {
	w, h := d.width, d.height
	d.scale = 0
	for _, s := range []int{1, 2, 4, 8} {
		ow, oh := (w+s-1)/s, (h+s-1)/s
		if int64(ow)*int64(oh) <= int64(d.maxPixels) {
			d.scale = s
			break
		}
	}
	if d.scale == 0 {
		return fmt.Errorf("%w: %dx%d", ErrTooBig, w, h)
	}
	switch d.scale {
	case 1:
		d.kstore = 64
	case 2:
		d.kstore = 25 // zig-zag 24 is (3,3), the last of the 4x4 corner
	case 4:
		d.kstore = 5 // zig-zag 4 is (1,1)
	case 8:
		d.kstore = 1
	}
	if d.lumaStart != nil && (d.lossless || d.precision != 8) {
		return unsupported("luma blocks of a %d-bit or lossless JPEG", d.precision)
	}
	if d.lossless {
		// One sample per data unit; reduced scales are box averages.
		d.mcusX = (w + d.hmax - 1) / d.hmax
		d.mcusY = (h + d.vmax - 1) / d.vmax
		d.setupLossless()
		return nil
	}
	d.mcusX = (w + 8*d.hmax - 1) / (8 * d.hmax)
	d.mcusY = (h + 8*d.vmax - 1) / (8 * d.vmax)
	var bytesNeeded, blocks int64
	for i := range d.comps {
		c := &d.comps[i]
		c.bw, c.bh = d.mcusX*c.h, d.mcusY*c.v
		cw := (w*c.h + d.hmax - 1) / d.hmax
		ch := (h*c.v + d.vmax - 1) / d.vmax
		c.cbw, c.cbh = (cw+7)/8, (ch+7)/8
		nb := int64(c.bw) * int64(c.bh)
		blocks += nb
		bytesNeeded += nb * int64(d.kstore) * 2
	}
	// The coefficients of a frame that fits maxPixels at the chosen scale
	// need at most ~8 bytes per output pixel; anything far beyond is a
	// crafted header (extreme padding), refused before allocating.
	limit := 24*int64(d.maxPixels) + 64<<20
	if bytesNeeded > limit {
		return fmt.Errorf("%w: %d bytes of coefficients", ErrTooBig, bytesNeeded)
	}
	// Entropy-decoding work (blocks visited, summed over scans) is bounded
	// by a multiple of the frame's blocks: a progressive file of thousands
	// of near-empty scans stops there and is reported truncated.
	d.budget = 64*blocks + 1<<16
	d.planMasks()
	d.zmap = &identity64
	if d.kstore == 64 {
		d.zmap = &unzig
	}
	// libjpeg-turbo (and so every browser) reads a sequential file whose
	// first scan carries every component as a one-scan file: it shows
	// that scan and stops at the next SOS. Decoding the later scans too
	// would hash a second picture appended to the one shown.
	d.streaming = !d.progressive && len(d.scansPlan) >= 1 && len(d.scansPlan[0].comps) == len(d.comps)
	if d.checkOnly && d.streaming && d.scale != 1 {
		// The check needs every coefficient, which a reduced scale does
		// not keep; streamed, they cost one MCU row at full scale.
		d.scale, d.kstore, d.zmap = 1, 64, &unzig
	}
	if d.streaming {
		d.planes = make([][]byte, len(d.comps))
		d.strides = make([]int, len(d.comps))
		d.idctT = make([]*idctTables, len(d.comps))
	}
	for i := range d.comps {
		c := &d.comps[i]
		if d.streaming {
			if d.lumaStart == nil && !d.checkOnly {
				d.planes[i], d.strides[i] = d.newPlane(c)
			}
			c.coef = make([]int16, c.bw*d.streamRows(c)*d.kstore)
		} else {
			c.coef = make([]int16, c.bw*c.bh*d.kstore)
		}
	}
	return nil
}

var identity64 = func() (z [64]int) {
	for i := range z {
		z[i] = i
	}
	return z
}()

// streamRows is how many block rows of c one MCU row holds.
func (d *decoder) streamRows(c *component) int {
	if len(d.comps) == 1 {
		return 1 // a one-component scan is non-interleaved: MCU = block
	}
	return c.v
}

// decideColorSpace follows libjpeg-turbo's default_decompress_parms, on
// the JFIF and Adobe markers seen before the first scan (wherever they
// stand relative to the frame header).
func (d *decoder) decideColorSpace() {
	switch len(d.comps) {
	case 1:
		d.colorSpace = csGray
	case 3:
		switch {
		case d.jfif:
			d.colorSpace = csYCbCr
		case d.adobe:
			if d.adobeTransform == 0 {
				d.colorSpace = csRGB
			} else {
				d.colorSpace = csYCbCr
			}
		case d.comps[0].id == 'R' && d.comps[1].id == 'G' && d.comps[2].id == 'B':
			d.colorSpace = csRGB
		default:
			d.colorSpace = csYCbCr
		}
	case 4:
		if d.adobe && d.adobeTransform != 0 {
			d.colorSpace = csYCCK
		} else {
			d.colorSpace = csCMYK
		}
	}
}

// planMasks decides, per component, whether a reduced-scale progressive
// decode may skip AC scans that lie wholly past the stored prefix: not
// when some AC refinement scan straddles the prefix, since refinement
// decoding depends on the nonzero history those scans build.
func (d *decoder) planMasks() {
	if !d.progressive || d.kstore == 64 {
		return
	}
	for _, sc := range d.scansPlan {
		if sc.ss > 0 && sc.ah != 0 && sc.ss < d.kstore && sc.se >= d.kstore && len(sc.comps) == 1 {
			d.comps[sc.comps[0]].needMask = true
		}
	}
}
