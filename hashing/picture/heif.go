package picture

import (
	"errors"
	"image"
	"io"
)

// AVIF and HEIC/HEIF with libavif+dav1d and libheif+libde265 compiled to
// WebAssembly (shipped by github.com/gen2brain/avif and
// github.com/gen2brain/heic) and run by wazero: pure Go, no cgo, no system
// libraries (see wasm.go for why their Go wrappers are bypassed). Their
// packages are still linked in, and, built without the "nodynamic" tag,
// import purego, which makes even a CGO_ENABLED=0 binary dynamically linked
// against libc: build the server with -tags nodynamic to keep it static.
//
// The container is read here too: the primary item's size (ispe) is checked
// against MaxPixels before the decoder allocates anything, and the
// transformations (irot, imir) give the orientation. libheif applies irot
// and imir itself, so HEIC frames come out as displayed (Orientation 1);
// libavif does not, so for AVIF they are reported as Orientation.

type heifInfo struct {
	w, h      int // primary item's ispe
	orient    int // from irot/imir, EXIF numbering
	nclx      bool
	matrix    int
	fullRange bool
}

type box struct {
	typ  string
	body []byte
}

// boxes splits b into ISO-BMFF boxes; a box running past the end is cut.
func boxes(b []byte) []box {
	var out []box
	for len(b) >= 8 {
		size := uint64(be32(b))
		typ := string(b[4:8])
		hdr := uint64(8)
		switch size {
		case 0:
			size = uint64(len(b))
		case 1:
			if len(b) < 16 {
				return out
			}
			size = uint64(be32(b[8:]))<<32 | uint64(be32(b[12:]))
			hdr = 16
		}
		if size < hdr {
			return out
		}
		if size > uint64(len(b)) {
			size = uint64(len(b))
		}
		out = append(out, box{typ, b[hdr:size]})
		b = b[size:]
	}
	return out
}

func findBox(bs []box, typ string) []byte {
	for _, b := range bs {
		if b.typ == typ {
			return b.body
		}
	}
	return nil
}

// dihedral elements as 2×2 matrices acting on (x, y), y down; index = EXIF
// orientation.
var exifMatrix = [9][4]int{
	1: {1, 0, 0, 1},
	2: {-1, 0, 0, 1},
	3: {-1, 0, 0, -1},
	4: {1, 0, 0, -1},
	5: {0, 1, 1, 0},
	6: {0, -1, 1, 0},
	7: {0, -1, -1, 0},
	8: {0, 1, -1, 0},
}

func mulMatrix(a, b [4]int) [4]int { // a·b, row-major
	return [4]int{a[0]*b[0] + a[1]*b[2], a[0]*b[1] + a[1]*b[3], a[2]*b[0] + a[3]*b[2], a[2]*b[1] + a[3]*b[3]}
}

func matrixOrientation(m [4]int) int {
	for o := 1; o <= 8; o++ {
		if exifMatrix[o] == m {
			return o
		}
	}
	return 1
}

func parseHEIF(data []byte) heifInfo {
	info := heifInfo{orient: 1}
	top := boxes(data)
	if meta := findBox(top, "meta"); len(meta) > 4 {
		mb := boxes(meta[4:])
		primary := uint32(0)
		if p := findBox(mb, "pitm"); len(p) >= 6 {
			if p[0] == 0 {
				primary = uint32(be16(p[4:]))
			} else if len(p) >= 8 {
				primary = be32(p[4:])
			}
		}
		if iprp := findBox(mb, "iprp"); iprp != nil {
			pb := boxes(iprp)
			props := boxes(findBox(pb, "ipco"))
			m := exifMatrix[1]
			for _, idx := range ipmaProps(findBox(pb, "ipma"), primary) {
				if idx < 1 || idx > len(props) {
					continue
				}
				p := props[idx-1]
				switch p.typ {
				case "ispe":
					if len(p.body) >= 12 && info.w == 0 {
						info.w, info.h = int(be32(p.body[4:])), int(be32(p.body[8:]))
					}
				case "colr":
					if len(p.body) >= 11 && string(p.body[:4]) == "nclx" && !info.nclx {
						info.nclx = true
						info.matrix = int(be16(p.body[8:]))
						info.fullRange = p.body[10]&0x80 != 0
					}
				case "irot":
					if len(p.body) >= 1 {
						for k := 0; k < int(p.body[0]&3); k++ {
							m = mulMatrix(exifMatrix[8], m) // 90° anticlockwise
						}
					}
				case "imir":
					if len(p.body) >= 1 {
						// ISO/IEC 23008-12:2022 names it mode: 0 exchanges
						// top and bottom (EXIF 4), 1 left and right (EXIF 2),
						// as libavif and libheif read it.
						if p.body[0]&1 == 0 {
							m = mulMatrix(exifMatrix[4], m)
						} else {
							m = mulMatrix(exifMatrix[2], m)
						}
					}
				}
			}
			info.orient = matrixOrientation(m)
		}
	}
	return info
}

// ipmaProps lists the property indices associated with item, in order.
func ipmaProps(b []byte, item uint32) []int {
	if len(b) < 8 {
		return nil
	}
	version, flags := b[0], b[3]
	n := int(be32(b[4:]))
	p := 8
	for i := 0; i < n && p < len(b); i++ {
		var id uint32
		if version < 1 {
			if p+2 > len(b) {
				return nil
			}
			id = uint32(be16(b[p:]))
			p += 2
		} else {
			if p+4 > len(b) {
				return nil
			}
			id = be32(b[p:])
			p += 4
		}
		if p >= len(b) {
			return nil
		}
		cnt := int(b[p])
		p++
		var idx []int
		for k := 0; k < cnt; k++ {
			if flags&1 != 0 {
				if p+2 > len(b) {
					return nil
				}
				idx = append(idx, int(be16(b[p:])&0x7fff))
				p += 2
			} else {
				if p+1 > len(b) {
					return nil
				}
				idx = append(idx, int(b[p]&0x7f))
				p++
			}
		}
		if id == item {
			return idx
		}
	}
	return nil
}

// configHEIF reads the container for the primary item's size, falling back
// to the decoder's own header parse.
func configHEIF(r io.ReadSeeker, format string) (int, int, error) {
	head, _, err := readHead(r, 1<<18)
	if err != nil {
		return 0, 0, err
	}
	info := parseHEIF(head)
	if info.w > 0 && info.h > 0 {
		if format == "heic" && info.orient >= 5 {
			return info.h, info.w, nil
		}
		return info.w, info.h, nil
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return 0, 0, err
	}
	var w, h int
	if format == "avif" {
		_, w, h, err = avifDecode(data, true, false, nil)
	} else {
		_, w, h, err = heifDecode(data, true, nil)
	}
	if err != nil {
		return 0, 0, corruptf(format, "header: %v", err)
	}
	return w, h, nil
}

func decodeHEIF(data []byte, format string, l *limits) (*Picture, error) {
	info := parseHEIF(data)
	if info.w > 0 && info.h > 0 {
		// The container's size, before the decoder parses anything.
		if err := l.fits(format, info.w, info.h); err != nil {
			return nil, err
		}
	}
	if format == "heic" {
		img, _, _, err := heifDecode(data, false, func(w, h int) error {
			if err := l.fits(format, w, h); err != nil {
				return err
			}
			l.spend(int64(w) * int64(h))
			return nil
		})
		if err != nil {
			if errors.Is(err, ErrTooManyPixels) {
				return nil, err
			}
			return nil, corruptf(format, "%v", err)
		}
		if y, ok := img.(*image.YCbCr); ok && info.nclx {
			img = info.convert(y)
		}
		// libheif has applied irot/imir already.
		return still(img, 1, false), nil
	}
	// AVIF: a sequence's frames all, when they fit the budgets; else the
	// first (marked Truncated).
	truncated := false
	frames, _, _, err := avifDecode(data, false, true, func(w, h, n int) error {
		if err := l.fits(format, w, h); err != nil {
			return err
		}
		px := int64(w) * int64(h)
		if n > 1 && (int64(n)*px > l.maxTotal || !l.spend(int64(n)*px)) {
			return errAllFrames
		}
		if n == 1 {
			l.spend(px)
		}
		return nil
	})
	if errors.Is(err, errAllFrames) {
		truncated = true
		frames, _, _, err = avifDecode(data, false, false, func(w, h, n int) error { return nil })
	}
	if err != nil {
		if errors.Is(err, ErrTooManyPixels) {
			return nil, err
		}
		return nil, corruptf(format, "%v", err)
	}
	if len(frames) == 0 {
		return nil, corruptf(format, "no frame decoded")
	}
	b := frames[0].Bounds()
	pic := &Picture{Scale: 1, Orientation: info.orient, Truncated: truncated}
	keep := sampleFrames(len(frames), l.frameQuota(int64(b.Dx())*int64(b.Dy())))
	for i, img := range frames {
		if keep[i] {
			pic.Frames = append(pic.Frames, img)
			pic.FrameIndex = append(pic.FrameIndex, i)
		}
	}
	return pic, nil
}

var errAllFrames = errors.New("all frames do not fit")

// convert applies the container's colour description (nclx) where it
// differs from image.YCbCr's JFIF assumption (full range, BT.601).
func (info heifInfo) convert(y *image.YCbCr) image.Image {
	kr, kb := 0.299, 0.114
	switch info.matrix {
	case 1:
		kr, kb = 0.2126, 0.0722
	case 9, 10:
		kr, kb = 0.2627, 0.0593
	}
	if info.fullRange && kr == 0.299 {
		return y
	}
	return yuvToNRGBA(y, info.fullRange, kr, kb)
}
