package picture

import "bytes"

// maxGoScans is the most scans a JPEG may have for image/jpeg to decode
// it: a crafted progressive file with thousands of scans kept it busy for
// a minute, while the fallback decoder bounds its work by the pixels.
const maxGoScans = 64

// jpegWantsFallback reports whether a JPEG should skip image/jpeg and go
// to the tolerant decoder, which follows libjpeg-turbo (and so browsers)
// where image/jpeg differs or costs too much:
//   - an Adobe APP14 marker, which libjpeg-turbo lets decide the colour
//     transform (image/jpeg reads components 'R','G','B' as RGB even when
//     the marker says YCbCr);
//   - four components (CMYK/YCCK) and 'R','G','B' component IDs;
//   - more than maxGoScans scans;
//   - a sequential file with a scan after one that carried every
//     component (libjpeg-turbo shows the first scan only);
//   - a quantisation table defined after the first scan (libjpeg-turbo
//     keeps each component's table from its first scan).
//
// A plain baseline or progressive YCbCr or greyscale JPEG stays with
// image/jpeg, whose pixels the reference PDQ hashes are pinned to.
func jpegWantsFallback(data []byte) bool {
	if bytes.Count(data, []byte{0xff, 0xda}) > maxGoScans {
		return true
	}
	sequential, frameComps, want := false, 0, false
	jpegSegments(data, func(m byte, seg, rest []byte) bool {
		switch {
		case m == 0xee && bytes.HasPrefix(seg, []byte("Adobe")):
			want = true
		case m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc:
			if len(seg) < 6 {
				return false
			}
			nc := int(seg[5])
			sequential, frameComps = m != 0xc2 && m != 0xca, nc
			want = nc == 4 || nc == 3 && len(seg) >= 6+9 && seg[6] == 'R' && seg[9] == 'G' && seg[12] == 'B'
		case m == 0xda:
			// A sequential frame whose first scan carries every
			// component is shown from that scan alone (libjpeg-turbo
			// stops at the next SOS); image/jpeg would let a later scan
			// paint a second picture over it. In entropy-coded data an
			// 0xFF is followed by 0x00 or a marker, so another FF DA
			// after this one is another scan.
			//
			// A quantisation table redefined after the first scan:
			// libjpeg-turbo dequantises each component with the table
			// it had at its first scan, image/jpeg with the last one,
			// so the two would show different pictures.
			want = bytes.Contains(rest, []byte{0xff, 0xdb}) ||
				sequential && len(seg) >= 1 && int(seg[0]) == frameComps && bytes.Contains(rest, []byte{0xff, 0xda})
			return false
		}
		return !want
	})
	return want
}

// jpegSegments walks a JPEG's segments from after SOI as decoders read
// them, calling visit with each marker, its payload (cut short where the
// data ends) and the data after it, until visit returns false, EOI, or
// a length that cannot be. Between segments it skips what libjpeg-turbo
// and image/jpeg skip: fill bytes, FF 00, lone markers without a length,
// and junk up to the next 0xFF (one junk byte once hid every routing
// rule, found in review).
func jpegSegments(data []byte, visit func(m byte, seg, rest []byte) bool) {
	i := 2
	for i+4 <= len(data) {
		if data[i] != 0xff {
			j := bytes.IndexByte(data[i:], 0xff)
			if j < 0 {
				return
			}
			i += j
			continue
		}
		m := data[i+1]
		switch {
		case m == 0xff:
			i++
			continue
		case m == 0x00 || m == 0x01 || m >= 0xd0 && m <= 0xd8:
			i += 2
			continue
		case m == 0xd9:
			return
		}
		n := int(data[i+2])<<8 | int(data[i+3])
		if n < 2 {
			return
		}
		end := min(i+2+n, len(data))
		if !visit(m, data[i+4:end], data[end:]) {
			return
		}
		i = end
	}
}
