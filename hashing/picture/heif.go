package picture

import (
	"bytes"
	"image"
	"io"

	"github.com/gen2brain/avif"
	"github.com/gen2brain/heic"
)

// AVIF and HEIC/HEIF through github.com/gen2brain/avif and
// github.com/gen2brain/heic: libavif+dav1d and libheif+libde265 compiled to
// WebAssembly and run by wazero, pure Go, no cgo. (Built without the
// "nodynamic" tag they first try a system libavif.so/libheif.so through
// purego, which also makes a CGO_ENABLED=0 binary dynamically linked: build
// the server with -tags nodynamic.)
//
// The container is read here too: the primary item's size (ispe) is checked
// against MaxPixels before the decoder allocates anything, and the
// transformations (irot, imir) give the orientation. libheif applies irot
// and imir itself, so HEIC frames come out as displayed (Orientation 1);
// libavif does not, so for AVIF they are reported as Orientation.

type heifInfo struct {
	w, h    int // primary item's ispe
	orient  int // from irot/imir, EXIF numbering
	samples int // largest track sample count (AVIF sequences)
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
	if moov := findBox(top, "moov"); moov != nil {
		for _, t := range boxes(moov) {
			if t.typ != "trak" {
				continue
			}
			mdia := findBox(boxes(t.body), "mdia")
			minf := findBox(boxes(mdia), "minf")
			st := findBox(boxes(minf), "stbl")
			if sz := findBox(boxes(st), "stsz"); len(sz) >= 12 {
				info.samples = max(info.samples, int(min(be32(sz[8:]), 1<<30)))
			}
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
		if format == "heic" && (info.orient >= 5) {
			return info.h, info.w, nil
		}
		return info.w, info.h, nil
	}
	var cfg image.Config
	if format == "avif" {
		cfg, err = avif.DecodeConfig(r)
	} else {
		cfg, err = heic.DecodeConfig(r)
	}
	if err != nil {
		return 0, 0, corruptf(format, "header: %v", err)
	}
	return cfg.Width, cfg.Height, nil
}

func decodeHEIF(data []byte, format string, l *limits) (*Picture, error) {
	info := parseHEIF(data)
	w, h := info.w, info.h
	if w <= 0 || h <= 0 {
		var cfg image.Config
		var err error
		if format == "avif" {
			cfg, err = avif.DecodeConfig(bytes.NewReader(data))
		} else {
			cfg, err = heic.DecodeConfig(bytes.NewReader(data))
		}
		if err != nil {
			return nil, corruptf(format, "header: %v", err)
		}
		w, h = cfg.Width, cfg.Height
	}
	if err := l.fits(format, w, h); err != nil {
		return nil, err
	}
	l.spend(int64(w) * int64(h))
	if format == "heic" {
		img, err := heic.Decode(bytes.NewReader(data))
		if err != nil {
			return nil, corruptf(format, "%v", err)
		}
		if err := l.fits(format, img.Bounds().Dx(), img.Bounds().Dy()); err != nil {
			return nil, err
		}
		return still(img, 1, false), nil
	}
	// An AVIF sequence: decode every frame when they fit the budget,
	// otherwise the first only.
	if info.samples > 1 && int64(info.samples)*int64(w)*int64(h) <= l.maxTotal && l.spend(int64(info.samples-1)*int64(w)*int64(h)) {
		all, err := avif.DecodeAll(bytes.NewReader(data))
		if err == nil && len(all.Image) > 0 {
			pic := &Picture{Scale: 1, Orientation: info.orient}
			keep := sampleFrames(len(all.Image), l.frameQuota(int64(w)*int64(h)))
			for i, img := range all.Image {
				if keep[i] {
					pic.Frames = append(pic.Frames, img)
					pic.FrameIndex = append(pic.FrameIndex, i)
				}
			}
			return pic, nil
		}
	}
	img, err := avif.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, corruptf(format, "%v", err)
	}
	if err := l.fits(format, img.Bounds().Dx(), img.Bounds().Dy()); err != nil {
		return nil, err
	}
	pic := still(img, 1, info.samples > 1)
	pic.Orientation = info.orient
	return pic, nil
}
