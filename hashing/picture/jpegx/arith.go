package jpegx

// Arithmetic entropy decoding: the QM-coder decoder of T.81 Annex D.2 and
// the DC/AC decoding procedures of F.2.4 (sequential) and G.2 / G.1.3
// (progressive), with the statistics-bin layout of Tables F.4 and F.5.

// qeTable is T.81 Table D.2: Qe, Next_Index_LPS, Next_Index_MPS,
// Switch_MPS for each of the 113 states; state 113 is a fixed 0.5
// estimate used for sign and refinement decisions (it never adapts).
var qeTable = [114]struct {
	qe         uint32
	nlps, nmps uint8
	sw         bool
}{
	{0x5a1d, 1, 1, true}, {0x2586, 14, 2, false}, {0x1114, 16, 3, false}, {0x080b, 18, 4, false},
	{0x03d8, 20, 5, false}, {0x01da, 23, 6, false}, {0x00e5, 25, 7, false}, {0x006f, 28, 8, false},
	{0x0036, 30, 9, false}, {0x001a, 33, 10, false}, {0x000d, 35, 11, false}, {0x0006, 9, 12, false},
	{0x0003, 10, 13, false}, {0x0001, 12, 13, false}, {0x5a7f, 15, 15, true}, {0x3f25, 36, 16, false},
	{0x2cf2, 38, 17, false}, {0x207c, 39, 18, false}, {0x17b9, 40, 19, false}, {0x1182, 42, 20, false},
	{0x0cef, 43, 21, false}, {0x09a1, 45, 22, false}, {0x072f, 46, 23, false}, {0x055c, 48, 24, false},
	{0x0406, 49, 25, false}, {0x0303, 51, 26, false}, {0x0240, 52, 27, false}, {0x01b1, 54, 28, false},
	{0x0144, 56, 29, false}, {0x00f5, 57, 30, false}, {0x00b7, 59, 31, false}, {0x008a, 60, 32, false},
	{0x0068, 62, 33, false}, {0x004e, 63, 34, false}, {0x003b, 32, 35, false}, {0x002c, 33, 9, false},
	{0x5ae1, 37, 37, true}, {0x484c, 64, 38, false}, {0x3a0d, 65, 39, false}, {0x2ef1, 67, 40, false},
	{0x261f, 68, 41, false}, {0x1f33, 69, 42, false}, {0x19a8, 70, 43, false}, {0x1518, 72, 44, false},
	{0x1177, 73, 45, false}, {0x0e74, 74, 46, false}, {0x0bfb, 75, 47, false}, {0x09f8, 77, 48, false},
	{0x0861, 78, 49, false}, {0x0706, 79, 50, false}, {0x05cd, 48, 51, false}, {0x04de, 50, 52, false},
	{0x040f, 50, 53, false}, {0x0363, 51, 54, false}, {0x02d4, 52, 55, false}, {0x025c, 53, 56, false},
	{0x01f8, 54, 57, false}, {0x01a4, 55, 58, false}, {0x0160, 56, 59, false}, {0x0125, 57, 60, false},
	{0x00f6, 58, 61, false}, {0x00cb, 59, 62, false}, {0x00ab, 61, 63, false}, {0x008f, 61, 32, false},
	{0x5b12, 65, 65, true}, {0x4d04, 80, 66, false}, {0x412c, 81, 67, false}, {0x37d8, 82, 68, false},
	{0x2fe8, 83, 69, false}, {0x293c, 84, 70, false}, {0x2379, 86, 71, false}, {0x1edf, 87, 72, false},
	{0x1aa9, 87, 73, false}, {0x174e, 72, 74, false}, {0x1424, 72, 75, false}, {0x119c, 74, 76, false},
	{0x0f6b, 74, 77, false}, {0x0d51, 75, 78, false}, {0x0bb6, 77, 79, false}, {0x0a40, 77, 48, false},
	{0x5832, 80, 81, true}, {0x4d1c, 88, 82, false}, {0x438e, 89, 83, false}, {0x3bdd, 90, 84, false},
	{0x34ee, 91, 85, false}, {0x2eae, 92, 86, false}, {0x299a, 93, 87, false}, {0x2516, 86, 71, false},
	{0x5570, 88, 89, true}, {0x4ca9, 95, 90, false}, {0x44d9, 96, 91, false}, {0x3e22, 97, 92, false},
	{0x3824, 99, 93, false}, {0x32b4, 99, 94, false}, {0x2e17, 93, 86, false}, {0x56a8, 95, 96, true},
	{0x4f46, 101, 97, false}, {0x47e5, 102, 98, false}, {0x41cf, 103, 99, false}, {0x3c3d, 104, 100, false},
	{0x375e, 99, 93, false}, {0x5231, 105, 102, false}, {0x4c0f, 106, 103, false}, {0x4639, 107, 104, false},
	{0x415e, 103, 99, false}, {0x5627, 105, 106, true}, {0x50e7, 108, 107, false}, {0x4b85, 109, 103, false},
	{0x5597, 110, 109, false}, {0x504f, 111, 107, false}, {0x5a10, 110, 111, true}, {0x5522, 112, 109, false},
	{0x59eb, 112, 111, true},
	{0x5a1d, 113, 113, false}, // fixed estimate
}

// A statistics bin: state index in the low 7 bits, MPS in the top bit.
type bin = uint8

const fixedBin = 113 // a bin value that stays at the fixed state

// arithDecoder is the QM-coder decoder (T.81 Figures D.19-D.22), with C
// holding Cx in its upper 16 bits.
type arithDecoder struct {
	data []byte
	pos  int
	c, a uint32
	ct   int
	pad  int  // zero bytes fed after the data stopped
	stop bool // reached a marker or the end
}

// arithPadLimit: past this many zero bytes fed in, the data is taken to
// have run out. A few are normal (the encoder may drop trailing zeros).
const arithPadLimit = 16

func (r *arithDecoder) reset(data []byte, pos int) {
	*r = arithDecoder{data: data, pos: pos}
	// INITDEC: two bytes into Cx.
	r.byteIn()
	r.c <<= 8
	r.byteIn()
	r.c <<= 8
	r.ct = 0
	r.a = 0x10000
}

func (r *arithDecoder) exhausted() bool { return r.pad > arithPadLimit }

// byteIn reads the next byte into bits 8..15 of C, undoing 0xFF 0x00
// stuffing; at a marker or the end it feeds zeros.
func (r *arithDecoder) byteIn() {
	if !r.stop && r.pos < len(r.data) {
		b := r.data[r.pos]
		if b != 0xFF {
			r.pos++
			r.c += uint32(b) << 8
			return
		}
		q := r.pos + 1
		for q < len(r.data) && r.data[q] == 0xFF {
			q++
		}
		if q < len(r.data) && r.data[q] == 0 {
			r.pos = q + 1
			r.c += 0xFF << 8
			return
		}
		if q < len(r.data) {
			r.pos = q - 1
		} else {
			r.pos = len(r.data)
		}
	}
	r.stop = true
	r.pad++
}

func (r *arithDecoder) unreadPos() int { return r.pos }

// decode decodes one binary decision with statistics bin *s.
func (r *arithDecoder) decode(s *bin) int {
	st := &qeTable[*s&0x7F]
	mps := int(*s >> 7)
	qe := st.qe
	r.a -= qe
	var d int
	if r.c>>16 < r.a {
		if r.a >= 0x8000 {
			return mps
		}
		// Conditional MPS exchange.
		if r.a < qe {
			d = 1 - mps
			r.lps(s, st, mps)
		} else {
			d = mps
			*s = uint8(mps<<7) | st.nmps
		}
	} else {
		// Conditional LPS exchange.
		r.c -= r.a << 16
		if r.a < qe {
			d = mps
			*s = uint8(mps<<7) | st.nmps
		} else {
			d = 1 - mps
			r.lps(s, st, mps)
		}
		r.a = qe
	}
	for r.a < 0x8000 {
		if r.ct == 0 {
			r.byteIn()
			r.ct = 8
		}
		r.a <<= 1
		r.c <<= 1
		r.ct--
	}
	return d
}

func (r *arithDecoder) lps(s *bin, st *struct {
	qe         uint32
	nlps, nmps uint8
	sw         bool
}, mps int) {
	if st.sw {
		mps = 1 - mps
	}
	if *s&0x7F == fixedBin {
		return // the fixed estimate never moves
	}
	*s = uint8(mps<<7) | st.nlps
}

// arithState is the per-scan statistics (Tables F.4, F.5) and DC context.
type arithState struct {
	dc    [4][64]bin
	ac    [4][256]bin
	fixed bin
	dcCtx [maxComponents]int
}

func (d *decoder) arithResetStats(sc *scanInfo) {
	if d.as == nil {
		d.as = &arithState{}
	}
	*d.as = arithState{fixed: fixedBin}
	for _, ci := range sc.comps {
		d.comps[ci].pred = 0
	}
}

// arithDC decodes a DC difference (F.2.4.1, Figures F.19-F.24).
func (d *decoder) arithDC(ci, tbl int) int32 {
	ar, as := &d.ar, d.as
	stats := &as.dc[tbl]
	s0 := as.dcCtx[ci]
	if ar.decode(&stats[s0]) == 0 {
		as.dcCtx[ci] = 0
		return 0
	}
	sign := ar.decode(&stats[s0+1])
	st := s0 + 2 + sign
	m := 0
	if ar.decode(&stats[st]) != 0 {
		m = 1
		st = 20 // X1
		for ar.decode(&stats[st]) != 0 {
			m <<= 1
			if m == 0x8000 || st >= 20+14 {
				ar.pad = arithPadLimit + 1 // corrupt: stop this interval
				return 0
			}
			st++
		}
	}
	// Conditioning category for the next difference (F.1.4.4.1.2).
	switch {
	case m < (1<<d.arithL[tbl])>>1:
		as.dcCtx[ci] = 0
	case m > (1<<d.arithU[tbl])>>1:
		as.dcCtx[ci] = 12 + 4*sign
	default:
		as.dcCtx[ci] = 4 + 4*sign
	}
	v := m
	st += 14 // magnitude bits bin M
	for m >>= 1; m != 0; m >>= 1 {
		if ar.decode(&stats[st]) != 0 {
			v |= m
		}
	}
	v++
	if sign != 0 {
		v = -v
	}
	return int32(v)
}

// arithACValue decodes the sign, magnitude category and bits of a nonzero
// AC coefficient at zig-zag k (F.2.4.2, Figures F.21-F.24).
func (d *decoder) arithACValue(stats *[256]bin, st, k, tbl int) (int, bool) {
	ar := d.ar.decode
	sign := ar(&d.as.fixed)
	st += 2
	m := 0
	if ar(&stats[st]) != 0 {
		m = 1
		if ar(&stats[st]) != 0 {
			m = 2
			st = 217
			if k <= int(d.arithK[tbl]) {
				st = 189
			}
			for ar(&stats[st]) != 0 {
				m <<= 1
				if m == 0x8000 || st >= 255-14 {
					return 0, false
				}
				st++
			}
		}
	}
	v := m
	st += 14
	for m >>= 1; m != 0; m >>= 1 {
		if ar(&stats[st]) != 0 {
			v |= m
		}
	}
	v++
	if sign != 0 {
		v = -v
	}
	return v, true
}

func (d *decoder) arithBlock(c *component, bi int, blk []int16, sc *scanInfo) {
	ci := -1
	si := 0
	for i, x := range sc.comps {
		if &d.comps[x] == c {
			ci, si = x, i
		}
	}
	ar, as := &d.ar, d.as
	K := len(blk)
	zm := d.zmap
	var mask *uint64
	if c.mask != nil {
		mask = &c.mask[bi]
	}
	fail := func() { ar.pad = arithPadLimit + 1 }
	ss, se, al := sc.ss, sc.se, sc.al
	if !d.progressive {
		ss, se, al = 0, 63, 0
	}
	if ss == 0 {
		if d.progressive && sc.ah != 0 {
			// DC refinement: one fixed-estimate decision.
			if ar.decode(&as.fixed) != 0 {
				blk[0] |= 1 << uint(al)
			}
			return
		}
		c.pred += d.arithDC(ci, sc.td[si])
		// libjpeg keeps the predictor modulo 2^16.
		c.pred = int32(int16(c.pred))
		blk[0] = int16(c.pred << uint(al))
		if d.progressive {
			return
		}
		ss = 1
	}
	tbl := sc.ta[si]
	stats := &as.ac[tbl]
	if !d.progressive || sc.ah == 0 {
		for k := ss; k <= se; k++ {
			st := 3 * (k - 1)
			if ar.decode(&stats[st]) != 0 {
				break // EOB
			}
			for ar.decode(&stats[st+1]) == 0 {
				st += 3
				k++
				if k > se {
					fail()
					return
				}
			}
			v, ok := d.arithACValue(stats, st, k, tbl)
			if !ok {
				fail()
				return
			}
			if k < K {
				blk[zm[k]] = int16(v << uint(al))
			}
			if mask != nil {
				*mask |= 1 << uint(k)
			}
		}
		return
	}
	// AC refinement (G.1.3.3).
	nonzero := func(k int) bool {
		if k < K {
			return blk[zm[k]] != 0
		}
		return mask != nil && *mask>>uint(k)&1 != 0
	}
	p1 := int16(1) << uint(al)
	m1 := int16(-1) << uint(al)
	kex := se
	for ; kex > 0; kex-- {
		if nonzero(kex) {
			break
		}
	}
	for k := ss; k <= se; k++ {
		st := 3 * (k - 1)
		if k > kex && ar.decode(&stats[st]) != 0 {
			break // EOB
		}
		for {
			if nonzero(k) {
				if ar.decode(&stats[st+2]) != 0 && k < K {
					if v := blk[zm[k]]; v < 0 {
						blk[zm[k]] = v + m1
					} else {
						blk[zm[k]] = v + p1
					}
				}
				break
			}
			if ar.decode(&stats[st+1]) != 0 {
				v := p1
				if ar.decode(&as.fixed) != 0 {
					v = m1
				}
				if k < K {
					blk[zm[k]] = v
				}
				if mask != nil {
					*mask |= 1 << uint(k)
				}
				break
			}
			st += 3
			k++
			if k > se {
				fail()
				return
			}
		}
	}
}
