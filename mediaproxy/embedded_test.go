package mediaproxy

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"strings"
	"testing"

	"github.com/mediaguard/mediaguard/internal/bypass"
	"github.com/mediaguard/mediaguard/internal/jpegenc"
)

func zipFiles(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, data := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// A body whose embedded files could not all be searched (containers
// nested deeper than the search goes) may hide the listed picture in what
// was left: it is judged undecodable (refused by default, allowed with
// on_undecodable_image allow), never clean. A clean zip of a few ordinary
// photos is searched whole and passes.
func TestUnsearchedEmbeddedFilesAreNotClean(t *testing.T) {
	photos := map[string][]byte{}
	for i := range 4 {
		photos[fmt.Sprintf("IMG_%04d.jpg", i)] = jpegBytes(testPhoto(40+i, 1024, 768), 88)
	}
	clean := zipFiles(t, photos)
	deep := zipFiles(t, map[string][]byte{"photo.jpg": jpegBytes(testPhoto(50, 320, 240), 90)})
	for i := range carveMaxDepth + 2 {
		deep = zipFiles(t, map[string][]byte{fmt.Sprintf("level%d.zip", i): deep})
	}
	for _, policy := range []string{UndecodableBlock, UndecodableAllow} {
		e := newEnv(t, nil, func(c *Config) { c.OnUndecodableImage = policy })
		if resp, _ := e.upload(t, "application/zip", clean); resp.StatusCode != 200 {
			t.Fatalf("%s: a zip of 4 photos: %d (%s: %s)", policy, resp.StatusCode, e.obs.last().Outcome, e.obs.last().UnscannableReason)
		}
		resp, _ := e.upload(t, "application/zip", deep)
		d := e.obs.last()
		if policy == UndecodableBlock && (resp.StatusCode != 403 || d.Outcome != Undecodable) {
			t.Fatalf("zips nested %d deep: %d %s; want refused as undecodable", carveMaxDepth+3, resp.StatusCode, d.Outcome)
		}
		if policy == UndecodableAllow && (resp.StatusCode != 200 || d.Outcome == Clean) {
			t.Fatalf("allow: %d %s; want passed, not as clean", resp.StatusCode, d.Outcome)
		}
		if !strings.Contains(d.UnscannableReason, "nested deeper") {
			t.Errorf("reason %q does not say why", d.UnscannableReason)
		}
	}
}

// A listed photo with one 8×8 block coded at 1200 (black in
// libjpeg-turbo's integer IDCT, white in Go's decoders) is still the
// listed photo to a viewer. Zipped, it must not pass because the crafted
// block makes it undecodable (found in review: a carved picture that
// failed to decode was skipped, and the zip was clean); the same zip
// without the poisoned block is refused as listed, and a zip of a clean
// photo passes.
func TestCraftedEmbeddedPictureIsNotSkipped(t *testing.T) {
	listed := testPhoto(80, 240, 180)
	e := newEnv(t, []string{"pdq " + pdqOf(t, encodePNG(listed)).String()}, nil)
	poisoned := func(img *image.NRGBA) []byte {
		r := image.NewRGBA(img.Rect)
		copy(r.Pix, img.Pix)
		return jpegenc.Encode(r, jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 1, 1, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1,
			EditPlanes: func(p [][]float64, w, h int) {
				for y := range 8 {
					for x := range 8 {
						p[0][y*w+x] = 1200
					}
				}
			}})
	}
	for _, c := range []struct {
		name    string
		body    []byte
		status  int
		outcome Outcome
	}{
		{"listed photo", zipFiles(t, map[string][]byte{"a.jpg": jpegBytes(listed, 90)}), 403, Blocked},
		{"listed photo with a poisoned block", zipFiles(t, map[string][]byte{"a.jpg": poisoned(listed)}), 403, Undecodable},
		{"clean photo", zipFiles(t, map[string][]byte{"a.jpg": jpegBytes(testPhoto(81, 240, 180), 90)}), 200, Clean},
	} {
		resp, _ := e.upload(t, "application/zip", c.body)
		if d := e.obs.last(); resp.StatusCode != c.status || d.Outcome != c.outcome {
			t.Errorf("%s: %d %s (%s); want %d %s", c.name, resp.StatusCode, d.Outcome, d.UnscannableReason, c.status, c.outcome)
		}
	}
}

// decoyPNG is a PNG declaring w×h pixels in few bytes, its image data
// junk: it spends the pixel budget, then fails to decode.
func decoyPNG(w, h, junk int) []byte {
	chunk := func(typ string, data []byte) []byte {
		c := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
		c = append(append(c, typ...), data...)
		return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, 8, 2, 0, 0, 0)
	b := []byte("\x89PNG\r\n\x1a\n")
	b = append(b, chunk("IHDR", ihdr)...)
	b = append(b, chunk("IDAT", bytes.Repeat([]byte{0xa5}, junk))...)
	return append(b, chunk("IEND", nil)...)
}

// Once a decoy has spent the pixel budget, a carved picture whose header
// could not be read (a JPEG whose height is in a DNL segment, with junk
// between two segments: browsers show it) was skipped without a word, and
// the body judged clean. Any picture left unhashed makes it undecodable.
func TestPictureAfterPixelBudgetIsNotClean(t *testing.T) {
	var dnl func(*image.NRGBA) []byte
	for _, f := range bypass.Images {
		if strings.Contains(f.Name, "DNL") {
			dnl = f.Make
		}
	}
	if dnl == nil {
		t.Fatal("no DNL form in the bypass corpus")
	}
	weakDNL := func(img *image.NRGBA) []byte {
		j := dnl(img)
		n := 4 + int(j[4])<<8 | int(j[5]) // after the first segment
		return append(append(append([]byte(nil), j[:n]...), 0, 0, 0), j[n:]...)
	}
	listedImg, cleanImg := testPhoto(80, 240, 180), testPhoto(81, 240, 180)
	if format, weak := imageByBytes(bytes.NewReader(weakDNL(listedImg))); format != "jpeg" || !weak {
		t.Fatalf("the picture is %q, weak %v: not the case tested", format, weak)
	}
	e := newEnv(t, []string{"pdq " + pdqOf(t, encodePNG(listedImg)).String()}, nil)
	// The decoy is larger in bytes, so it is taken first, and declares
	// just under the least pixel budget.
	decoy := decoyPNG(embeddedMinPixels/1000-1, 1000, 64<<10)
	resp, _ := e.upload(t, "application/zip", zipFiles(t, map[string][]byte{"decoy.png": decoy, "photo.jpg": weakDNL(listedImg)}))
	if d := e.obs.last(); resp.StatusCode != 403 {
		t.Fatalf("the listed picture behind a decoy: %d %s", resp.StatusCode, d.Outcome)
	} else {
		t.Logf("refused: %s %s", d.Outcome, d.UnscannableReason)
	}
	// Without the decoy the picture is hashed: the listed one is refused,
	// its clean twin passes.
	if resp, _ := e.upload(t, "application/zip", zipFiles(t, map[string][]byte{"photo.jpg": weakDNL(listedImg)})); resp.StatusCode != 403 {
		t.Fatalf("listed, no decoy: %d (%s)", resp.StatusCode, e.obs.last().Outcome)
	}
	if resp, _ := e.upload(t, "application/zip", zipFiles(t, map[string][]byte{"photo.jpg": weakDNL(cleanImg)})); resp.StatusCode != 200 {
		t.Fatalf("clean twin: %d (%s: %s)", resp.StatusCode, e.obs.last().Outcome, e.obs.last().UnscannableReason)
	}
}
