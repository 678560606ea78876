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
	sequential, frameComps := false, 0
	i := 2
	for i+4 <= len(data) {
		if data[i] != 0xff {
			// Junk between segments: libjpeg-turbo and image/jpeg skip
			// to the next 0xFF, so the route must too (one junk byte
			// hid every rule below, found in review).
			j := bytes.IndexByte(data[i:], 0xff)
			if j < 0 {
				return false
			}
			i += j
			continue
		}
		m := data[i+1]
		if m == 0xff {
			i++
			continue
		}
		// FF 00 between segments is junk to decoders, as is a lone
		// marker without a length.
		if m == 0x00 || m == 0xd8 || (m >= 0xd0 && m <= 0xd7) || m == 0x01 {
			i += 2
			continue
		}
		n := int(data[i+2])<<8 | int(data[i+3])
		if n < 2 || i+2+n > len(data) {
			return false
		}
		seg := data[i+4 : i+2+n]
		switch {
		case m == 0xee && bytes.HasPrefix(seg, []byte("Adobe")):
			return true
		case m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc:
			if len(seg) < 6 {
				return false
			}
			nc := int(seg[5])
			sequential, frameComps = m != 0xc2 && m != 0xca, nc
			if nc == 4 {
				return true
			}
			if nc == 3 && len(seg) >= 6+9 && seg[6] == 'R' && seg[9] == 'G' && seg[12] == 'B' {
				return true
			}
		case m == 0xda:
			// A sequential frame whose first scan carries every
			// component is shown from that scan alone (libjpeg-turbo
			// stops at the next SOS); image/jpeg would let a later scan
			// paint a second picture over it. In entropy-coded data an
			// 0xFF is followed by 0x00 or a marker, so another FF DA
			// after this one is another scan.
			rest := data[i+2+n:]
			// A quantisation table redefined after the first scan:
			// libjpeg-turbo dequantises each component with the table
			// it had at its first scan, image/jpeg with the last one,
			// so the two would show different pictures.
			if bytes.Contains(rest, []byte{0xff, 0xdb}) {
				return true
			}
			return sequential && len(seg) >= 1 && int(seg[0]) == frameComps &&
				bytes.Contains(rest, []byte{0xff, 0xda})
		}
		i += 2 + n
	}
	return false
}
