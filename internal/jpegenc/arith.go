package jpegenc

// Test-only QM-coder encoder (T.81 Annex D.1) and the arithmetic scan
// encoding procedures (F.1.4, G.1.3), to feed the arithmetic decoder
// files of every shape. Cross-checked locally against libjpeg-turbo's
// cjpeg -arithmetic / djpeg while being written.

type qmEncoder struct {
	out   []byte
	c     uint64
	a     uint32
	ct    int
	stack int // 0xFF bytes held back for a possible carry
	buf   int // byte held back; -1 before the first real byte
}

func newQM() *qmEncoder { return &qmEncoder{a: 0x10000, ct: 11, buf: -1} }

func (e *qmEncoder) write(b byte) {
	e.out = append(e.out, b)
	if b == 0xFF {
		e.out = append(e.out, 0)
	}
}

// release writes the held byte (plus carry) and the held 0xFFs.
func (e *qmEncoder) release(carry int) {
	if e.buf >= 0 {
		e.write(byte(e.buf + carry))
	}
	for ; e.stack > 0; e.stack-- {
		if carry != 0 {
			e.write(0x00)
		} else {
			e.write(0xFF)
		}
	}
}

func (e *qmEncoder) byteOut() {
	t := int(e.c >> 19)
	switch {
	case t > 0xFF:
		e.release(1)
		e.buf = t & 0xFF
	case t == 0xFF:
		e.stack++
	default:
		e.release(0)
		e.buf = t
	}
	e.c &= 0x7FFFF
}

func (e *qmEncoder) code(s *bin, bit int) {
	st := &qeTable[*s&0x7F]
	mps := int(*s >> 7)
	e.a -= st.qe
	if bit == mps {
		if e.a >= 0x8000 {
			return
		}
		if e.a < st.qe {
			e.c += uint64(e.a)
			e.a = st.qe
		}
		*s = uint8(mps<<7) | st.nmps
	} else {
		if e.a >= st.qe {
			e.c += uint64(e.a)
			e.a = st.qe
		}
		if st.sw {
			mps = 1 - mps
		}
		if *s&0x7F != fixedBin {
			*s = uint8(mps<<7) | st.nlps
		}
	}
	for e.a < 0x8000 {
		e.a <<= 1
		e.c <<= 1
		e.ct--
		if e.ct == 0 {
			e.byteOut()
			e.ct = 8
		}
	}
}

func (e *qmEncoder) flush() []byte {
	t := (e.c + uint64(e.a) - 1) &^ 0xFFFF
	if t < e.c {
		t += 0x8000
	}
	e.c = t << uint(e.ct)
	e.byteOut()
	e.c <<= 8
	e.byteOut()
	e.release(0)
	return e.out
}

type arithScanEnc struct {
	qm    *qmEncoder
	dc    [4][64]bin
	ac    [4][256]bin
	fixed bin
	ctx   [4]int
	L, U  int
	K     int
}

func newArithScanEnc(o Options) *arithScanEnc {
	e := &arithScanEnc{qm: newQM(), fixed: fixedBin, L: 0, U: 1, K: 5}
	if o.DAC {
		e.L, e.U, e.K = o.DACL, o.DACU, o.DACK
	}
	return e
}

func (e *arithScanEnc) dcDiff(ci, v int) {
	stats := &e.dc[0]
	s0 := e.ctx[ci]
	if v == 0 {
		e.qm.code(&stats[s0], 0)
		e.ctx[ci] = 0
		return
	}
	e.qm.code(&stats[s0], 1)
	sign := 0
	if v < 0 {
		sign = 1
		v = -v
	}
	e.qm.code(&stats[s0+1], sign)
	st := s0 + 2 + sign
	a := v - 1
	m := 0
	if a == 0 {
		e.qm.code(&stats[st], 0)
	} else {
		e.qm.code(&stats[st], 1)
		m = 1
		st = 20
		for a >= m<<1 {
			e.qm.code(&stats[st], 1)
			m <<= 1
			st++
		}
		e.qm.code(&stats[st], 0)
	}
	switch {
	case m < (1<<e.L)>>1:
		e.ctx[ci] = 0
	case m > (1<<e.U)>>1:
		e.ctx[ci] = 12 + 4*sign
	default:
		e.ctx[ci] = 4 + 4*sign
	}
	st += 14
	for bit := m >> 1; bit != 0; bit >>= 1 {
		e.qm.code(&stats[st], b2i(a&bit != 0))
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (e *arithScanEnc) acValue(st, k, v int) {
	stats := &e.ac[0]
	sign := 0
	if v < 0 {
		sign, v = 1, -v
	}
	e.qm.code(&e.fixed, sign)
	st += 2
	a := v - 1
	m := 0
	if a == 0 {
		e.qm.code(&stats[st], 0)
	} else {
		e.qm.code(&stats[st], 1)
		m = 1
		if a < 2 {
			e.qm.code(&stats[st], 0)
		} else {
			e.qm.code(&stats[st], 1)
			m = 2
			st = 217
			if k <= e.K {
				st = 189
			}
			for a >= m<<1 {
				e.qm.code(&stats[st], 1)
				m <<= 1
				st++
			}
			e.qm.code(&stats[st], 0)
		}
	}
	st += 14
	for bit := m >> 1; bit != 0; bit >>= 1 {
		e.qm.code(&stats[st], b2i(a&bit != 0))
	}
}

// acBand codes coefficients ss..se of b (already point-transformed).
func (e *arithScanEnc) acBand(b []int, ss, se int) {
	stats := &e.ac[0]
	eob := 0
	for k := ss; k <= se; k++ {
		if b[k] != 0 {
			eob = k
		}
	}
	for k := ss; k <= se; k++ {
		st := 3 * (k - 1)
		if k > eob {
			e.qm.code(&stats[st], 1)
			return
		}
		e.qm.code(&stats[st], 0)
		for b[k] == 0 {
			e.qm.code(&stats[st+1], 0)
			st += 3
			k++
		}
		e.qm.code(&stats[st+1], 1)
		e.acValue(st, k, b[k])
	}
}

func (e *arithScanEnc) acRefine(b *[64]int, ss, se, al int) {
	stats := &e.ac[0]
	abs := func(k int) int {
		v := b[k]
		if v < 0 {
			v = -v
		}
		return v
	}
	kex := 0
	for k := se; k > 0; k-- {
		if abs(k)>>uint(al+1) != 0 {
			kex = k
			break
		}
	}
	eob := 0
	for k := ss; k <= se; k++ {
		if abs(k)>>uint(al) != 0 {
			eob = k
		}
	}
	for k := ss; k <= se; k++ {
		st := 3 * (k - 1)
		if k > kex {
			if k > eob {
				e.qm.code(&stats[st], 1)
				return
			}
			e.qm.code(&stats[st], 0)
		}
		for {
			if abs(k)>>uint(al+1) != 0 {
				e.qm.code(&stats[st+2], (abs(k)>>uint(al))&1)
				break
			}
			if abs(k)>>uint(al) != 0 {
				e.qm.code(&stats[st+1], 1)
				e.qm.code(&e.fixed, b2i(b[k] < 0))
				break
			}
			e.qm.code(&stats[st+1], 0)
			st += 3
			k++
		}
	}
}

// arithEncodeBlock codes one block of scan sc.
func (e *arithScanEnc) block(ci int, b *[64]int, sc Scan, progressive bool, preds []int) {
	if !progressive {
		diff := b[0] - preds[ci]
		preds[ci] = b[0]
		e.dcDiff(ci, diff)
		e.acBand(b[:], 1, 63)
		return
	}
	switch {
	case sc.Ss == 0 && sc.Ah == 0:
		v := b[0] >> uint(sc.Al)
		e.dcDiff(ci, v-preds[ci])
		preds[ci] = v
	case sc.Ss == 0:
		e.qm.code(&e.fixed, (b[0]>>uint(sc.Al))&1)
	case sc.Ah == 0:
		var t [64]int
		for k := sc.Ss; k <= sc.Se; k++ {
			t[k] = pointT(b[k], sc.Al)
		}
		e.acBand(t[:], sc.Ss, sc.Se)
	default:
		e.acRefine(b, sc.Ss, sc.Se, sc.Al)
	}
}
