package worker

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/edits"
	"github.com/mediaguard/mediaguard/internal/testimg"
)

// BenchmarkHashViewedSearch: bytes to every form, per search level, for
// the pictures uploads are made of: a real photo (the PDQ vectors' bridge,
// read from ../shared where present), a phone-sized and a chat-sized
// synthetic photo, a meme and a bordered copy (which give the default
// search the most to do), and a picture made to set off every variant. default/off is the cost of the default
// variants (issue #13: at most 2×); deep/off the deep search's.
func BenchmarkHashViewedSearch(b *testing.B) {
	photo := testimg.Photo(5, 1600, 1000)
	small := testimg.Photo(6, 640, 480)
	cases := []struct {
		name string
		data []byte
	}{
		{"photo-1600x1000", testimg.JPEG(photo, 90)},
		{"photo-640x480", testimg.JPEG(small, 90)},
		{"meme-640x672", testimg.JPEG(edits.Caption(small, "TOP TEXT", "BOTTOM TEXT"), 90)},
		{"bordered-800x600", testimg.JPEG(edits.Border(small, 0.125, edits.White), 90)},
		// Made to give every default variant work at once (a stretched,
		// gapped, bordered meme): the budget's worst case.
		{"every-edit-640x480", testimg.JPEG(edits.Caption(edits.Border(edits.Gap(edits.Squeeze(testimg.Photo(7, 400, 300), 0.3, 0.7), 0.1), 0.1, edits.White), "A", "B"), 90)},
	}
	if data, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "pdq-vectors", "bridge-mods", "aaa-orig.jpg")); err == nil {
		cases = append(cases, struct {
			name string
			data []byte
		}{"bridge-real-photo", data})
	} else {
		b.Logf("SKIPPED bridge-real-photo: ../shared/pdq-vectors is not beside the repository (%v)", err)
	}
	for _, c := range cases {
		for _, s := range []pdq.Search{pdq.SearchOff, pdq.SearchDefault, pdq.SearchDeep} {
			b.Run(c.name+"/search="+s.String(), func(b *testing.B) {
				b.SetBytes(int64(len(c.data)))
				forms := 0
				for b.Loop() {
					res, _, err := HashViewedBytes(c.data, pdq.DecodeOptions{Viewed: true}, pdq.Options{Workers: 1, Search: s})
					if err != nil {
						b.Fatal(err)
					}
					forms = len(res.Forms)
				}
				b.ReportMetric(float64(forms+1), "hashes/op")
			})
		}
	}
}
