package jpegx

// Lossless JPEG, Huffman-coded (SOF3): T.81 Annex H. Samples are predicted
// from their left, upper and upper-left neighbours and the Huffman-coded
// difference added. There is no DCT to scale by, so a reduced scale is a
// box average of Scale×Scale samples, accumulated row by row: memory stays
// proportional to the output, not the frame.

type llComp struct {
	lw      int     // samples per line in the current scan
	prev    []int32 // last sample row decoded (the row above)
	cur     [][]int32
	acc     []uint32 // box-average accumulators for the output row being built
	accRows int
	outRow  int // next output row of the plane
	plane   []byte
	stride  int
	// restart bookkeeping: the first line after a restart predicts from
	// the left only, and its first sample from the default.
	firstLine int
	fresh     bool
}

func (d *decoder) setupLossless() {
	d.ll = make([]llComp, len(d.comps))
	s := d.scale
	for i := range d.comps {
		c := &d.comps[i]
		l := &d.ll[i]
		// Samples per line padded to whole MCUs (the widest a scan uses).
		w := d.mcusX * c.h
		h := d.mcusY * c.v
		l.stride = (w + s - 1) / s
		l.plane = make([]byte, l.stride*((h+s-1)/s))
		fillGrey(l.plane)
	}
	d.budget = 0
	for i := range d.comps {
		c := &d.comps[i]
		d.budget += 2 * int64(d.mcusX*c.h) * int64(d.mcusY*c.v)
	}
	d.budget += 1 << 16
}

func (d *decoder) losslessPlane(c *component) ([]byte, int) {
	for i := range d.comps {
		if &d.comps[i] == c {
			return d.ll[i].plane, d.ll[i].stride
		}
	}
	return nil, 0
}

func (d *decoder) losslessScan(sc *scanInfo) error {
	if d.arithmetic {
		return unsupported("arithmetic-coded lossless JPEG")
	}
	pred, pt := sc.ss, sc.al
	if pred < 1 || pred > 7 || pt >= d.precision {
		return corrupt("lossless predictor %d, point transform %d", pred, pt)
	}
	tabs := make([]*huffTable, len(sc.comps))
	for i := range sc.comps {
		t, err := d.huffFor(0, sc.td[i])
		if err != nil {
			return err
		}
		tabs[i] = t
	}
	d.anyScan = true
	ns := len(sc.comps)
	var mw, mh int
	for _, ci := range sc.comps {
		c := &d.comps[ci]
		c.scanned, c.dcSeen = true, true
		l := &d.ll[ci]
		if ns == 1 {
			l.lw = (d.width*c.h + d.hmax - 1) / d.hmax
			mw = l.lw
			mh = (d.height*c.v + d.vmax - 1) / d.vmax
		} else {
			l.lw = d.mcusX * c.h
			mw, mh = d.mcusX, d.mcusY
		}
		rows := 1
		if ns > 1 {
			rows = c.v
		}
		l.prev = make([]int32, l.lw)
		l.cur = make([][]int32, rows)
		for r := range l.cur {
			l.cur[r] = make([]int32, l.lw)
		}
		l.acc = make([]uint32, l.stride)
		l.accRows, l.outRow = 0, 0
		l.firstLine, l.fresh = 0, true
	}
	br := &d.br
	br.reset(d.data, d.pos)
	def := int32(1) << uint(d.precision-pt-1)
	ri := d.restartInterval
	left := ri
	expect := 0
rows:
	for my := range mh {
		for mx := range mw {
			if ri > 0 && left == 0 {
				d.restart(&expect, sc)
				left = ri
				for _, ci := range sc.comps {
					d.ll[ci].fresh = true
				}
			}
			left--
			if br.exhausted() {
				d.truncated = true
				break rows
			}
			for i, ci := range sc.comps {
				c := &d.comps[ci]
				l := &d.ll[ci]
				h, v := 1, 1
				if ns > 1 {
					h, v = c.h, c.v
				}
				for y := range v {
					row := l.cur[y]
					above := l.prev
					if y > 0 {
						above = l.cur[y-1]
					}
					sy := my*v + y
					for x := range h {
						sx := mx*h + x
						var p int32
						switch {
						case l.fresh:
							p = def
							l.fresh = false
							l.firstLine = sy
						case sy == l.firstLine && sx > 0:
							p = row[sx-1]
						case sx == 0:
							p = above[0]
						default:
							ra, rb, rc := row[sx-1], above[sx], above[sx-1]
							switch pred {
							case 1:
								p = ra
							case 2:
								p = rb
							case 3:
								p = rc
							case 4:
								p = ra + rb - rc
							case 5:
								p = ra + (rb-rc)>>1
							case 6:
								p = rb + (ra-rc)>>1
							case 7:
								p = (ra + rb) >> 1
							}
						}
						s := br.decode(tabs[i])
						var diff int32
						switch {
						case s == 0:
						case s >= 16:
							diff = 32768
						default:
							diff = br.receiveExtend(s)
						}
						row[sx] = (p + diff) & 0xFFFF
					}
				}
				d.work += int64(h * v)
			}
		}
		// A row of MCUs is complete: move its sample rows out.
		for _, ci := range sc.comps {
			l := &d.ll[ci]
			for _, row := range l.cur {
				d.emitLosslessRow(l, row, pt)
				copy(l.prev, row)
			}
		}
		if d.work > d.budget {
			d.stopped = true
			break
		}
	}
	for _, ci := range sc.comps {
		d.flushLossless(&d.ll[ci])
	}
	if br.exhausted() {
		d.truncated = true
	}
	d.pos = br.unreadPos()
	return nil
}

// emitLosslessRow adds one sample row to the component's box average and
// writes an output row every Scale rows.
func (d *decoder) emitLosslessRow(l *llComp, row []int32, pt int) {
	s := d.scale
	shift := d.precision - 8 // bring P bits to 8 (after undoing Pt)
	for x, v := range row {
		v <<= uint(pt)
		if shift > 0 {
			v >>= uint(shift)
		} else if shift < 0 {
			v <<= uint(-shift)
		}
		if x/s < len(l.acc) {
			l.acc[x/s] += uint32(min(max(v, 0), 255))
		}
	}
	l.accRows++
	if l.accRows == s {
		d.flushLossless(l)
	}
}

func (d *decoder) flushLossless(l *llComp) {
	if l.accRows == 0 {
		return
	}
	s := d.scale
	base := l.outRow * l.stride
	if base+l.stride <= len(l.plane) {
		out := l.plane[base : base+l.stride]
		for ox := range out {
			n := min(s, l.lw-ox*s)
			if n <= 0 {
				break
			}
			out[ox] = byte((l.acc[ox] + uint32(n*l.accRows)/2) / uint32(n*l.accRows))
		}
	}
	clear(l.acc)
	l.accRows = 0
	l.outRow++
}
