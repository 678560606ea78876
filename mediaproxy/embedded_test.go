package mediaproxy

import (
	"archive/zip"
	"bytes"
	"fmt"
	"strings"
	"testing"
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
