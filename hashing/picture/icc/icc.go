// Package icc is a minimal colour-management module: it parses the ICC
// profiles that images carry (ICC.1:2010, version 4, and ICC version 2) and
// converts decoded pixels to sRGB the way a colour-managed viewer shows
// them.
//
// Why a hash filter needs one: a picture can be stored as its colour
// negative together with a profile that maps the negative back to the
// photo. Browsers and phones apply the profile and show the photo; a decoder
// that ignores ICC sees only the negative, whose perceptual hash matches
// nothing. Hashing what ToSRGB returns hashes what people see.
//
// Supported: matrix/TRC RGB profiles and Gray TRC profiles (curveType with
// any number of entries, increasing or decreasing, and all five
// parametricCurveType functions); A2B0/A2B1/A2B2 lookup tables of lut8Type,
// lut16Type and lutAtoBType with PCS XYZ or Lab, for RGB, Gray and CMYK data.
// Not supported (Parse returns an error and callers ignore the profile):
// device links, named colour, abstract and iccMAX (v5) profiles,
// multiProcessElement (D2Bx) tags, data colour spaces other than RGB, Gray
// and CMYK.
//
// The package uses the standard library only and nothing else of mediaguard.
package icc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// MaxSize bounds the size of a profile and of what the extraction helpers
// reassemble or inflate. Real profiles are a few hundred bytes (matrix/TRC)
// to a few megabytes (printer LUTs).
const MaxSize = 16 << 20

// maxTags bounds the tag table; real profiles have a few dozen tags.
const maxTags = 4096

var (
	// ErrMalformed: the bytes are not a well-formed profile.
	ErrMalformed = errors.New("icc: malformed profile")
	// ErrUnsupported: a well-formed profile this module does not convert.
	ErrUnsupported = errors.New("icc: unsupported profile")
)

// Colour-space signatures (ICC.1:2010 Table 19) and friends.
const (
	sigRGB  = 0x52474220 // 'RGB '
	sigGray = 0x47524159 // 'GRAY'
	sigCMYK = 0x434D594B // 'CMYK'
	sigXYZ  = 0x58595A20 // 'XYZ '
	sigLab  = 0x4C616220 // 'Lab '
)

// Profile is a parsed ICC profile, ready to convert pixels. It is safe for
// concurrent use; its lookup tables are built on first use.
type Profile struct {
	version  [2]byte // major, minor.bugfix
	class    string
	space    uint32
	pcs      uint32
	channels int

	// The device → PCS transform, exactly one of:
	lut      *lutPipeline // an A2Bx tag
	lutTag   string
	trc      [3]*curve  // matrix/TRC (RGB) or kTRC (trc[0], Gray)
	colorant [9]float64 // matrix/TRC: linear RGB → PCS XYZ, row-major

	once sync.Once
	tf   *transform
}

// Parse parses an ICC profile. Unsupported or malformed profiles give an
// error (callers then ignore the profile, as browsers do with a bad one).
// Tags that the conversion does not use are not looked at, so a profile is
// not refused for a flaw that does not affect what a viewer shows.
func Parse(b []byte) (*Profile, error) {
	if len(b) < 132 {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	size := be32(b)
	if size > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrUnsupported, size)
	}
	if size < 132 || int(size) > len(b) {
		return nil, fmt.Errorf("%w: header says %d bytes, have %d", ErrMalformed, size, len(b))
	}
	b = b[:size]
	if string(b[36:40]) != "acsp" {
		return nil, fmt.Errorf("%w: no 'acsp' signature", ErrMalformed)
	}
	p := &Profile{version: [2]byte{b[8], b[9]}, class: string(b[12:16]), space: be32(b[16:]), pcs: be32(b[20:])}
	if p.version[0] >= 5 {
		return nil, fmt.Errorf("%w: version %d (iccMAX)", ErrUnsupported, p.version[0])
	}
	switch p.class {
	case "mntr", "scnr", "prtr", "spac":
	default:
		return nil, fmt.Errorf("%w: profile class %q", ErrUnsupported, p.class)
	}
	switch p.space {
	case sigRGB:
		p.channels = 3
	case sigGray:
		p.channels = 1
	case sigCMYK:
		p.channels = 4
	default:
		return nil, fmt.Errorf("%w: colour space %q", ErrUnsupported, b[16:20])
	}
	if p.pcs != sigXYZ && p.pcs != sigLab {
		return nil, fmt.Errorf("%w: PCS %q", ErrUnsupported, b[20:24])
	}
	count := be32(b[128:])
	if count > maxTags || int(count) > (len(b)-132)/12 {
		return nil, fmt.Errorf("%w: %d tags in %d bytes", ErrMalformed, count, len(b))
	}
	// Copy so that the caller may reuse b; tables reference this copy.
	tt := &tagTable{b: append([]byte(nil), b...), n: int(count)}

	// Perceptual intent first (A2B0), as the header's rendering intent is
	// only a hint; then the other intents' tables, then the matrix/TRC
	// model, which serves every intent.
	var firstErr error
	for _, sig := range []string{"A2B0", "A2B1", "A2B2"} {
		t, ok, err := tt.find(sig)
		if err == nil && ok {
			p.lut, err = parseLUT(t, p.channels, p.pcs == sigLab)
		}
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: %w", sig, err)
			}
			continue
		}
		if p.lut != nil {
			p.lutTag = sig
			return p, nil
		}
	}
	var err error
	switch p.space {
	case sigRGB:
		err = p.parseMatrixTRC(tt)
	case sigGray:
		p.trc[0], err = tt.curve("kTRC")
	default:
		err = fmt.Errorf("%w: CMYK profile without A2B tag", ErrUnsupported)
	}
	if err != nil {
		if firstErr != nil {
			return nil, fmt.Errorf("%w (and %v)", firstErr, err)
		}
		return nil, err
	}
	return p, nil
}

func (p *Profile) parseMatrixTRC(tt *tagTable) error {
	for i, sig := range []string{"rXYZ", "gXYZ", "bXYZ"} {
		xyz, err := tt.xyz(sig)
		if err != nil {
			return err
		}
		for r := 0; r < 3; r++ {
			p.colorant[3*r+i] = xyz[r]
		}
	}
	for i, sig := range []string{"rTRC", "gTRC", "bTRC"} {
		c, err := tt.curve(sig)
		if err != nil {
			return err
		}
		p.trc[i] = c
	}
	return nil
}

// String describes the profile for logs, e.g. "v4.3 mntr RGB→Lab A2B0 mAB".
func (p *Profile) String() string {
	how := "matrix/TRC"
	if p.lut != nil {
		how = p.lutTag + " " + p.lut.typ
	} else if p.space == sigGray {
		how = "kTRC"
	}
	return fmt.Sprintf("v%d.%d %s %s→%s %s", p.version[0], p.version[1]>>4, p.class, p.ColorSpace(), sigName(p.pcs), how)
}

// ColorSpace is the data colour space that ToSRGB expects: "RGB", "GRAY"
// or "CMYK".
func (p *Profile) ColorSpace() string { return sigName(p.space) }

func sigName(s uint32) string {
	switch s {
	case sigRGB:
		return "RGB"
	case sigGray:
		return "GRAY"
	case sigCMYK:
		return "CMYK"
	case sigXYZ:
		return "XYZ"
	case sigLab:
		return "Lab"
	}
	return fmt.Sprintf("%08x", s)
}

// tagTable finds tags by signature. It scans the table rather than building
// a map: a profile is asked for at most a dozen tags.
type tagTable struct {
	b []byte
	n int
}

// find returns the first tag with signature sig. A tag whose data lies
// outside the profile is an error.
func (tt *tagTable) find(sig string) ([]byte, bool, error) {
	want := binary.BigEndian.Uint32([]byte(sig))
	for i := 0; i < tt.n; i++ {
		e := tt.b[132+12*i:]
		if be32(e) != want {
			continue
		}
		off, size := uint64(be32(e[4:])), uint64(be32(e[8:]))
		if off+size > uint64(len(tt.b)) || size < 8 {
			return nil, false, fmt.Errorf("%w: tag %s at %d+%d outside the profile", ErrMalformed, sig, off, size)
		}
		return tt.b[off : off+size], true, nil
	}
	return nil, false, nil
}

func (tt *tagTable) need(sig string) ([]byte, error) {
	t, ok, err := tt.find(sig)
	if err == nil && !ok {
		err = fmt.Errorf("%w: no %s tag", ErrUnsupported, sig)
	}
	return t, err
}

func (tt *tagTable) curve(sig string) (*curve, error) {
	t, err := tt.need(sig)
	if err != nil {
		return nil, err
	}
	c, _, err := parseCurve(t, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sig, err)
	}
	return c, nil
}

// xyz reads an XYZType (§10.31) holding at least one XYZNumber.
func (tt *tagTable) xyz(sig string) ([3]float64, error) {
	t, err := tt.need(sig)
	if err != nil {
		return [3]float64{}, err
	}
	if string(t[:4]) != "XYZ " || len(t) < 20 {
		return [3]float64{}, fmt.Errorf("%w: %s is not an XYZType", ErrMalformed, sig)
	}
	return [3]float64{s15f16(t[8:]), s15f16(t[12:]), s15f16(t[16:])}, nil
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

// s15f16 decodes an s15Fixed16Number.
func s15f16(b []byte) float64 { return float64(int32(be32(b))) / 65536 }
