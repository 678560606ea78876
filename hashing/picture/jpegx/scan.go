package jpegx

import "math/bits"

// Scan decoding: the MCU walk, restart handling and the Huffman block
// decoders for sequential (T.81 F.2) and progressive (G.1.2) scans.

func (d *decoder) processScan(seg []byte) error {
	if d.streamDone {
		return nil // the one planned scan was already transformed
	}
	sc, err := d.parseSOSHeader(seg)
	if err != nil {
		return err
	}
	d.scansSeen++
	if d.scansSeen > maxScans {
		d.stopped = true
		return nil
	}
	if d.lossless {
		return d.losslessScan(&sc)
	}
	if d.progressive {
		bad := sc.ss > sc.se || sc.se > 63 || sc.al > 13 || sc.ah > 13 ||
			(sc.ss == 0 && sc.se != 0) || (sc.ss > 0 && len(sc.comps) != 1) ||
			(sc.ah != 0 && sc.ah-1 != sc.al)
		if bad {
			// libjpeg-turbo gives up here; skipping the one scan keeps
			// what the others carry. Its data is skipped by nextMarker.
			return nil
		}
		if sc.ss > 0 && sc.ss >= d.kstore && !d.comps[sc.comps[0]].needMask {
			// Only coefficients a reduced-scale decode never uses, and
			// no later refinement needs their history.
			return nil
		}
	}
	// Tables must exist before anything is marked as scanned.
	dcT := make([]*huffTable, len(sc.comps))
	acT := make([]*huffTable, len(sc.comps))
	for i, ci := range sc.comps {
		c := &d.comps[ci]
		if !c.latched {
			if !d.qtDefined[c.tq] {
				return corrupt("component %d uses undefined quantisation table %d", c.id, c.tq)
			}
			c.q = d.qt[c.tq]
			c.latched = true
		}
		if d.arithmetic {
			// Selectors past 3 name no conditioning table; libjpeg-turbo
			// still decodes such files, so they are folded into 0..3.
			sc.td[i] &= 3
			sc.ta[i] &= 3
			continue
		}
		needDC := !d.progressive || (sc.ss == 0 && sc.ah == 0)
		needAC := !d.progressive || sc.ss > 0
		if needDC {
			if dcT[i], err = d.huffFor(0, sc.td[i]); err != nil {
				return err
			}
		}
		if needAC {
			if acT[i], err = d.huffFor(1, sc.ta[i]); err != nil {
				return err
			}
		}
	}
	if d.lumaStart != nil && d.lumaRow == nil {
		if err := d.lumaEligible(); err != nil {
			return err
		}
	}
	d.anyScan = true
	for _, ci := range sc.comps {
		c := &d.comps[ci]
		c.scanned = true
		if sc.ss == 0 {
			c.dcSeen = true
		}
		if d.progressive && sc.ss > 0 && c.mask == nil {
			// Every coefficient's nonzero history, as bits: refinement
			// scans walk it instead of testing 63 coefficients a block.
			c.mask = make([]uint64, c.bw*c.bh)
		}
	}
	if d.streaming {
		if len(sc.comps) != len(d.comps) {
			return nil // not the scan planned for (prescan cut short)
		}
		for _, ci := range sc.comps {
			d.idctT[ci] = d.idctTablesFor(&d.comps[ci])
		}
	}
	d.decodeScan(&sc, dcT, acT)
	if d.streaming {
		d.streamDone = true
	}
	return nil
}

func (d *decoder) huffFor(class, id int) (*huffTable, error) {
	if id > 3 {
		return nil, corrupt("Huffman table id %d", id)
	}
	if err := d.badTab[class][id]; err != nil {
		return nil, err
	}
	t := d.dcTab[id]
	if class == 1 {
		t = d.acTab[id]
	}
	if t != nil {
		return t, nil
	}
	if id < 2 {
		return stdTables[class][id], nil
	}
	return nil, corrupt("undefined Huffman table %d", id)
}

// decodeScan walks the scan's MCUs from d.pos and leaves d.pos after the
// data it used.
func (d *decoder) decodeScan(sc *scanInfo, dcT, acT []*huffTable) {
	if d.arithmetic {
		d.ar.reset(d.data, d.pos)
		d.arithResetStats(sc)
	} else {
		d.br.reset(d.data, d.pos)
	}
	ns := len(sc.comps)
	var mw, total, perMCU int
	if ns == 1 {
		c := &d.comps[sc.comps[0]]
		mw, total, perMCU = c.cbw, c.cbw*c.cbh, 1
	} else {
		mw, total = d.mcusX, d.mcusX*d.mcusY
		for _, ci := range sc.comps {
			perMCU += d.comps[ci].h * d.comps[ci].v
		}
	}
	for _, ci := range sc.comps {
		d.comps[ci].pred = 0
	}
	d.eobrun = 0
	d.rstRenumbered = false
	d.mkPos = -1
	ri := d.restartInterval
	left := ri
	expect := 0 // number of the RST marker due at the next restart
	mx, my := 0, 0
	for m := 0; m < total; m++ {
		if ri > 0 && left == 0 {
			d.restart(&expect, sc)
			left = ri
		}
		left--
		if d.dataExhausted() {
			d.truncated = true
			if ri == 0 {
				break
			}
			// Nothing more until the next restart marker: those MCUs stay
			// zero (mid-grey), as libjpeg-turbo leaves them. The skip
			// stops at the end of the MCU row, which may need flushing.
			skip := min(left, total-1-m, mw-1-mx)
			m += skip
			left -= skip
			mx += skip
		} else {
			d.work += int64(perMCU)
			if ns == 1 {
				c := &d.comps[sc.comps[0]]
				d.decodeBlock(c, mx, my, sc, dcT[0], acT[0])
			} else {
				for i, ci := range sc.comps {
					c := &d.comps[ci]
					for by := range c.v {
						for bx := range c.h {
							d.decodeBlock(c, mx*c.h+bx, my*c.v+by, sc, dcT[i], acT[i])
						}
					}
				}
			}
		}
		mx++
		if mx == mw {
			mx = 0
			my++
			if d.streaming {
				d.flushRows(sc)
			}
			if d.work > d.budget || d.ambiguous != nil {
				d.stopped = true
				break
			}
		}
	}
	if d.dataExhausted() {
		d.truncated = true
	}
	if d.streaming && d.planes == nil {
		if mx != 0 {
			d.flushRows(sc)
		}
	} else if d.streaming {
		if mx != 0 {
			d.flushRows(sc) // the MCU row the data ended in
		}
		// Rows never reached have zero coefficients: mid-grey.
		for _, ci := range sc.comps {
			c := &d.comps[ci]
			bs := 8 / d.scale
			fillGrey(d.planes[ci][min(c.rowOff*bs*d.strides[ci], len(d.planes[ci])):])
		}
	}
	if d.arithmetic {
		d.pos = d.ar.unreadPos()
	} else {
		d.pos = d.br.unreadPos()
	}
}

func (d *decoder) dataExhausted() bool {
	if d.arithmetic {
		return d.ar.exhausted()
	}
	return d.br.exhausted()
}

// restart handles the restart point between intervals. libjpeg-turbo's
// jdmarker.c resync scans forward to a marker and keys on its number; here
// any RSTn found right where the interval's data ends is taken as the
// restart (renumbered or wrong markers are harmless), garbage before an
// RSTn is skipped, and when data carries on with no marker at all and the
// next marker is the one after the expected number, the marker was
// dropped and the data is decoded in place rather than lost.
func (d *decoder) restart(expect *int, sc *scanInfo) {
	var p int
	if d.arithmetic {
		p = d.ar.unreadPos()
	} else {
		p = d.br.unreadPos()
	}
	data := d.data
	for _, ci := range sc.comps {
		d.comps[ci].pred = 0
	}
	d.eobrun = 0
	next := p
	if p < len(data) && data[p] == 0xFF {
		q := p + 1
		for q < len(data) && data[q] == 0xFF {
			q++
		}
		if q < len(data) && data[q] != 0 {
			if m := data[q]; m >= mRST0 && m <= mRST7 {
				next = q + 1
				if int(m-mRST0) != *expect {
					d.rstRenumbered = true
				}
				*expect = (int(m-mRST0) + 1) & 7
			}
			// Another marker: leave it; the rest of the scan has no data.
			d.resetEntropy(next, sc)
			return
		}
	}
	if p < len(data) {
		// The scan for the next marker is remembered: markers do not
		// move, and rescanning the same gap at every restart of a
		// broken file would cost intervals × gap.
		if d.mkPos < p {
			d.mkPos, d.mk = findMarker(data, p)
		}
		mpos, m := d.mkPos, d.mk
		isRST := m >= mRST0 && m <= mRST7
		// Which is it, garbage before the expected marker or a dropped
		// marker? While the file numbers its markers properly the number
		// says; once it has shown it does not, a run of more than a few
		// bytes is taken to be an interval's data.
		garbage := int(m-mRST0) != (*expect+1)&7
		if d.rstRenumbered {
			garbage = mpos-p <= 8
		}
		if isRST && garbage {
			// Garbage, then a restart marker: skip to it.
			next = mpos + 2
			*expect = (int(m-mRST0) + 1) & 7
		} else {
			// The marker itself is missing: the data is the next interval.
			*expect = (*expect + 1) & 7
		}
	}
	d.resetEntropy(next, sc)
}

func (d *decoder) resetEntropy(pos int, sc *scanInfo) {
	if d.arithmetic {
		d.ar.reset(d.data, pos)
		d.arithResetStats(sc)
	} else {
		d.br.reset(d.data, pos)
	}
}

// findMarker returns the position of the 0xFF of the next marker at or
// after p and its code; code 0 when there is none.
func findMarker(data []byte, p int) (int, byte) {
	for p < len(data) {
		if data[p] != 0xFF {
			p++
			continue
		}
		q := p + 1
		for q < len(data) && data[q] == 0xFF {
			q++
		}
		if q >= len(data) {
			break
		}
		if data[q] != 0 {
			return q - 1, data[q]
		}
		p = q + 1
	}
	return len(data), 0
}

func (d *decoder) decodeBlock(c *component, bx, by int, sc *scanInfo, dc, ac *huffTable) {
	K := d.kstore
	bi := by*c.bw + bx
	blk := c.coef[(bi-c.rowOff*c.bw)*K:][:K]
	if d.arithmetic {
		d.arithBlock(c, bi, blk, sc)
		return
	}
	br := &d.br
	if !d.progressive {
		d.decodeSequential(blk, c, dc, ac)
		return
	}
	var mask *uint64
	if c.mask != nil {
		mask = &c.mask[bi]
	}
	switch {
	case sc.ss == 0 && sc.ah == 0: // DC first
		s := br.decode(dc)
		c.pred += br.receiveExtend(min(s, 16))
		blk[0] = int16(c.pred << uint(sc.al))
	case sc.ss == 0: // DC refinement
		if br.bit() {
			blk[0] |= 1 << uint(sc.al)
		}
	case sc.ah == 0:
		d.acFirst(blk, mask, ac, sc.ss, sc.se, sc.al)
	default:
		d.acRefine(blk, mask, ac, sc.ss, sc.se, sc.al)
	}
}

// decodeSequential decodes one block of a sequential scan (T.81 F.2.2),
// keeping the first len(blk) coefficients. It is the hot path, so the bit
// buffer lives in locals and one refill covers a symbol and its value.
func (d *decoder) decodeSequential(blk []int16, c *component, dc, ac *huffTable) {
	br := &d.br
	zm := d.zmap
	K := len(blk)
	acc, n := br.acc, br.n
	if n < 32 {
		br.fill()
		acc, n = br.acc, br.n
	}
	if e := dc.dcFast[acc>>(64-fastBits)]; e != 0 {
		l := uint(e & 31)
		acc <<= l
		n -= int(l)
		c.pred += e >> 16
	} else {
		var s int
		if e := dc.lut[acc>>(64-lutBits)]; e != 0 {
			l := uint(e >> 8)
			acc <<= l
			n -= int(l)
			s = int(e & 0xFF)
		} else {
			br.acc, br.n = acc, n
			s = br.decodeSlow(dc)
			acc, n = br.acc, br.n
		}
		if s != 0 {
			s = min(s, 16)
			v := int32(acc >> (64 - uint(s)))
			acc <<= uint(s)
			n -= s
			c.pred += extend(v, s)
		}
	}
	blk[0] = int16(c.pred)
	for k := 1; k < 64; {
		if n < 32 {
			br.acc, br.n = acc, n
			br.fill()
			acc, n = br.acc, br.n
		}
		if e := ac.acFast[acc>>(64-fastBits)]; e != 0 {
			l := uint(e & 31)
			acc <<= l
			n -= int(l)
			if e&fastEOB != 0 {
				break
			}
			k += int(e >> 5 & 15)
			if k < K {
				blk[zm[k]] = int16(e >> 16)
			} else if k > 63 && K == 64 && e>>16 != 0 {
				blk[63] = int16(e >> 16) // see below
			}
			k++
			continue
		}
		var rs int
		if e := ac.lut[acc>>(64-lutBits)]; e != 0 {
			l := uint(e >> 8)
			acc <<= l
			n -= int(l)
			rs = int(e & 0xFF)
		} else {
			br.acc, br.n = acc, n
			rs = br.decodeSlow(ac)
			acc, n = br.acc, br.n
		}
		r, s := rs>>4, rs&15
		if s == 0 {
			if r != 15 {
				break // EOB
			}
			k += 16
			continue
		}
		k += r
		v := int32(acc >> (64 - uint(s)))
		acc <<= uint(s)
		n -= s
		if k < K {
			blk[zm[k]] = int16(extend(v, s))
		} else if k > 63 && K == 64 {
			// A run past the end (corrupt data): libjpeg-turbo's
			// natural-order table sends it to coefficient 63.
			blk[63] = int16(extend(v, s))
		}
		k++
	}
	br.acc, br.n = acc, n
}

// acFirst decodes the first pass over a spectral band (G.1.2.2).
func (d *decoder) acFirst(blk []int16, mask *uint64, ac *huffTable, ss, se, al int) {
	if d.eobrun > 0 {
		d.eobrun--
		return
	}
	br := &d.br
	K := len(blk)
	zm := d.zmap
	for k := ss; k <= se; {
		if br.n < 32 {
			br.fill()
		}
		// Combined symbol+value, unless it is an EOB run (which has
		// run-length bits of its own in a progressive scan).
		if e := ac.acFast[br.acc>>(64-fastBits)]; e != 0 && e&fastEOB == 0 {
			l := uint(e & 31)
			br.acc <<= l
			br.n -= int(l)
			k += int(e >> 5 & 15)
			if e>>16 != 0 {
				// Past 63 (corrupt data) lands on 63, as in libjpeg-turbo.
				kk := min(k, 63)
				if kk < K {
					blk[zm[kk]] = int16(e>>16) << uint(al)
				}
				if mask != nil {
					*mask |= 1 << uint(kk)
				}
			}
			k++
			continue
		}
		rs := br.decode(ac)
		r, s := rs>>4, rs&15
		if s == 0 {
			if r < 15 {
				d.eobrun = 1<<uint(r) - 1
				if r > 0 {
					d.eobrun += int(br.bits(r))
				}
				break
			}
			k += 16
			continue
		}
		k += r
		v := br.receiveExtend(s) << uint(al)
		kk := min(k, 63) // past 63 (corrupt data) lands on 63, as in libjpeg-turbo
		if kk < K {
			blk[zm[kk]] = int16(v)
		}
		if mask != nil {
			*mask |= 1 << uint(kk)
		}
		k++
	}
}

// acRefine decodes a successive-approximation refinement of a band
// (G.1.2.3): newly nonzero coefficients of magnitude 1<<al, and one
// correction bit for each coefficient already nonzero. Coefficients past
// the stored prefix (reduced scale) only keep their nonzero history, in
// mask.
func (d *decoder) acRefine(blk []int16, mask *uint64, ac *huffTable, ss, se, al int) {
	br := &d.br
	K := len(blk)
	zm := d.zmap
	p1 := int16(1) << uint(al)
	m1 := int16(-1) << uint(al)
	var msk uint64
	if mask != nil {
		msk = *mask
	} else {
		for k := 1; k < K; k++ {
			if blk[zm[k]] != 0 {
				msk |= 1 << uint(k)
			}
		}
	}
	// correct applies a correction bit to nonzero coefficient k.
	correct := func(k int) {
		if br.n < 1 {
			br.fill()
		}
		bit := br.acc>>63 != 0
		br.acc <<= 1
		br.n--
		if bit && k < K {
			i := zm[k]
			if c := blk[i]; c&p1 == 0 {
				if c >= 0 {
					blk[i] = c + p1
				} else {
					blk[i] = c + m1
				}
			}
		}
	}
	k := ss
	if d.eobrun == 0 {
		for ; k <= se; k++ {
			rs := br.decode(ac)
			r, s := rs>>4, rs&15
			var val int16
			if s != 0 {
				if br.bit() {
					val = p1
				} else {
					val = m1
				}
			} else if r != 15 {
				d.eobrun = 1 << uint(r)
				if r > 0 {
					d.eobrun += int(br.bits(r))
				}
				break
			}
			for ; k <= se; k++ {
				if msk>>uint(k)&1 != 0 {
					correct(k)
					continue
				}
				if r == 0 {
					if val != 0 {
						if k < K {
							blk[zm[k]] = val
						}
						msk |= 1 << uint(k)
					}
					break
				}
				r--
			}
		}
	}
	if d.eobrun > 0 {
		if k <= se {
			// Correction bits for the nonzero coefficients left in the
			// band, lowest first.
			for m := msk &^ (1<<uint(k) - 1) & (2<<uint(se) - 1); m != 0; m &= m - 1 {
				correct(bits.TrailingZeros64(m))
			}
		}
		d.eobrun--
	}
	if mask != nil {
		*mask = msk
	}
}

// flushRows transforms the MCU row of coefficients just decoded into the
// planes and clears the buffer for the next row.
func (d *decoder) flushRows(sc *scanInfo) {
	for _, ci := range sc.comps {
		c := &d.comps[ci]
		if rows := min(d.streamRows(c), c.bh-c.rowOff); rows > 0 {
			if err := d.checkRange(ci, c.coef, rows*c.bw); err != nil {
				d.ambiguous, d.stopped = err, true
				return
			}
		}
	}
	if d.lumaStart != nil {
		// The luma goes first, whatever the scan's order: its clamping
		// is judged with the chroma of the same rows, which must not be
		// cleared yet (a scan may list Cb or Cr before Y).
		if c := &d.comps[0]; c.bh > c.rowOff {
			d.emitLuma(c.coef, c.rowOff, min(d.streamRows(c), c.bh-c.rowOff))
		}
	}
	for _, ci := range sc.comps {
		c := &d.comps[ci]
		rows := min(d.streamRows(c), c.bh-c.rowOff)
		if rows <= 0 {
			continue
		}
		if d.lumaStart != nil || d.checkOnly {
			clear(c.coef)
			c.rowOff += rows
			continue
		}
		d.idctRows(c, d.idctT[ci], c.coef, d.planes[ci], d.strides[ci], c.rowOff, rows)
		clear(c.coef)
		c.rowOff += rows
	}
}

func fillGrey(b []byte) {
	for i := range b {
		b[i] = 128
	}
}
