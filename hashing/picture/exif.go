package picture

// exifOrientation reads the Orientation tag (0x0112) from IFD0 of a TIFF
// structure (an EXIF block, with or without its "Exif\0\0" prefix, or a TIFF
// file's header). Either byte order. It returns 1 for anything unreadable,
// as viewers do. Like Chromium it takes the tag only as one SHORT.
func exifOrientation(b []byte) int {
	if len(b) >= 6 && string(b[:6]) == "Exif\x00\x00" {
		b = b[6:]
	}
	if len(b) < 8 {
		return 1
	}
	var u16 func([]byte) uint16
	var u32 func([]byte) uint32
	switch string(b[:4]) {
	case "II*\x00":
		u16, u32 = le16, le32
	case "MM\x00*":
		u16, u32 = be16, be32
	default:
		return 1
	}
	off := u32(b[4:])
	if off < 8 || uint64(off)+2 > uint64(len(b)) {
		return 1
	}
	n := int(u16(b[off:]))
	p := int(off) + 2
	for i := 0; i < n && p+12 <= len(b); i, p = i+1, p+12 {
		e := b[p : p+12]
		if u16(e) != 0x0112 {
			continue
		}
		if u16(e[2:]) != 3 || u32(e[4:]) != 1 {
			return 1
		}
		if v := int(u16(e[8:])); v >= 1 && v <= 8 {
			return v
		}
		return 1
	}
	return 1
}
