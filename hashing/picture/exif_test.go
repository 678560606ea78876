package picture

import (
	"encoding/binary"
	"testing"
)

// tiffWithOrientation builds a minimal TIFF/EXIF structure whose IFD0 has a
// few tags around Orientation.
func tiffWithOrientation(bigEndian bool, o int) []byte {
	var bo binary.AppendByteOrder = binary.LittleEndian
	b := []byte("II*\x00")
	if bigEndian {
		bo = binary.BigEndian
		b = []byte("MM\x00*")
	}
	b = bo.AppendUint32(b, 8)
	b = bo.AppendUint16(b, 3)
	entry := func(tag, typ uint16, count uint32, val uint16) {
		b = bo.AppendUint16(b, tag)
		b = bo.AppendUint16(b, typ)
		b = bo.AppendUint32(b, count)
		b = bo.AppendUint16(b, val)
		b = append(b, 0, 0)
	}
	entry(0x010F, 2, 4, 0) // Make (value elsewhere; irrelevant)
	entry(0x0112, 3, 1, uint16(o))
	entry(0x011A, 5, 1, 0)
	return bo.AppendUint32(b, 0)
}

func TestExifOrientation(t *testing.T) {
	for o := 1; o <= 8; o++ {
		for _, be := range []bool{false, true} {
			b := tiffWithOrientation(be, o)
			if got := exifOrientation(b); got != o {
				t.Errorf("be=%v o=%d: got %d", be, o, got)
			}
			if got := exifOrientation(append([]byte("Exif\x00\x00"), b...)); got != o {
				t.Errorf("with prefix be=%v o=%d: got %d", be, o, got)
			}
		}
	}
	bad := map[string][]byte{
		"empty":       nil,
		"not tiff":    []byte("hello world, not tiff"),
		"value 9":     tiffWithOrientation(false, 9),
		"value 0":     tiffWithOrientation(true, 0),
		"offset loop": []byte("II*\x00\xff\xff\xff\xff"),
		"cut IFD":     tiffWithOrientation(false, 6)[:20],
		"huge count":  append([]byte("MM\x00*\x00\x00\x00\x08\xff\xff"), make([]byte, 30)...),
		"wrong type":  func() []byte { b := tiffWithOrientation(false, 6); b[10+12+2] = 4; return b }(),
		"wrong count": func() []byte { b := tiffWithOrientation(false, 6); b[10+12+4] = 2; return b }(),
	}
	for name, b := range bad {
		if got := exifOrientation(b); got != 1 {
			t.Errorf("%s: got %d, want 1", name, got)
		}
	}
}

func FuzzExifOrientation(f *testing.F) {
	f.Add(tiffWithOrientation(false, 6))
	f.Add(tiffWithOrientation(true, 8))
	f.Add([]byte("Exif\x00\x00MM\x00*\x00\x00\x00\x08"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if o := exifOrientation(b); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
		jpegOrientation(append([]byte{0xFF, 0xD8, 0xFF, 0xE1, byte((len(b) + 8) >> 8), byte(len(b) + 8), 'E', 'x', 'i', 'f', 0, 0}, b...))
	})
}
