package mediaproxy

import (
	"archive/zip"
	"bytes"
	"fmt"
	"image"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// TestNoMethodOrSpellingServesUnjudgedMedia is the request-shape half of
// the bypass corpus: a listed picture stored upstream (behind the proxy's
// back) must not come out through any method or path spelling that a
// lenient homeserver router would still serve, and the same request for a
// clean picture must behave as the homeserver's own answer would.
func TestNoMethodOrSpellingServesUnjudgedMedia(t *testing.T) {
	listed := encodePNG(testPhoto(61, 160, 160))
	clean := encodePNG(testPhoto(62, 160, 160))
	e := newEnv(t, []string{"pdq " + pdqOf(t, listed).String()}, nil)

	cases := []struct {
		name, method, path string
		// cleanStatus is what the same request for the clean twin gets.
		cleanStatus int
	}{
		{"GET legacy", "GET", "/_matrix/media/v3/download/hs.example/%s", 200},
		{"GET client", "GET", "/_matrix/client/v1/media/download/hs.example/%s", 200},
		{"GET msc3916 unstable", "GET", "/_matrix/client/unstable/org.matrix.msc3916/media/download/hs.example/%s", 200},
		{"GET unknown version", "GET", "/_matrix/media/v4/download/hs.example/%s", 200},
		{"GET with file name", "GET", "/_matrix/media/r0/download/hs.example/%s/x.png", 200},
		{"OPTIONS download", "OPTIONS", "/_matrix/media/v3/download/hs.example/%s", 204},
		{"OPTIONS thumbnail", "OPTIONS", "/_matrix/client/v1/media/thumbnail/hs.example/%s?width=64&height=64", 204},
		{"POST download", "POST", "/_matrix/media/v3/download/hs.example/%s", 405},
		{"PUT download", "PUT", "/_matrix/client/v1/media/download/hs.example/%s", 405},
		{"DELETE download", "DELETE", "/_matrix/media/v3/download/hs.example/%s", 405},
		{"PATCH download", "PATCH", "/_matrix/media/v3/download/hs.example/%s", 405},
		{"PROPFIND download", "PROPFIND", "/_matrix/media/v3/download/hs.example/%s", 405},
		{"double slash", "GET", "/_matrix/media/v3//download/hs.example/%s", 404},
		{"dot segment", "GET", "/_matrix/media/v3/./download/hs.example/%s", 404},
		{"encoded prefix", "GET", "/_matrix/%6Dedia/v3/download/hs.example/%s", 404},
		{"encoded action", "GET", "/_matrix/client/v1/media/%64ownload/hs.example/%s", 404},
		{"leading double slash", "GET", "//_matrix/media/v3/download/hs.example/%s", 404},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad, good := "lst"+string(rune('a'+i)), "cln"+string(rune('a'+i))
			e.up.Put(bad, listed, "image/png")
			e.up.Put(good, clean, "image/png")
			resp, body := e.do(t, c.method, strings.Replace(c.path, "%s", bad, 1), "", nil)
			if bytes.Contains(body, listed[:64]) || bytes.Contains(body, listed[len(listed)-64:]) {
				t.Fatalf("%s: listed bytes served (%d)", c.name, resp.StatusCode)
			}
			if resp.StatusCode == 200 {
				t.Fatalf("%s: listed media answered 200", c.name)
			}
			resp, body = e.do(t, c.method, strings.Replace(c.path, "%s", good, 1), "", nil)
			if resp.StatusCode != c.cleanStatus {
				t.Fatalf("%s: clean twin answered %d, want %d (%s)", c.name, resp.StatusCode, c.cleanStatus, body)
			}
			if c.method == "OPTIONS" && (len(body) != 0 || resp.Header.Get("Access-Control-Allow-Origin") != "*") {
				t.Fatalf("preflight: body %d bytes, headers %v", len(body), resp.Header)
			}
			if c.cleanStatus == 200 && !bytes.Equal(body, clean) {
				t.Fatalf("%s: clean twin not served byte-identical", c.name)
			}
		})
	}
}

// TestUploadPathMethods: only POST (and PUT to an async upload ID) may
// carry a body to the homeserver; other methods are refused, never
// forwarded unjudged, and OPTIONS is a preflight.
func TestUploadPathMethods(t *testing.T) {
	listed := encodePNG(testPhoto(63, 120, 120))
	e := newEnv(t, []string{"pdq " + pdqOf(t, listed).String()}, nil)
	for _, m := range []string{"PATCH", "DELETE", "GET", "PROPFIND"} {
		resp, _ := e.do(t, m, "/_matrix/media/v3/upload?filename=x.png", "image/png", listed)
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("%s upload: %d", m, resp.StatusCode)
		}
	}
	if resp, body := e.do(t, "OPTIONS", "/_matrix/media/v3/upload", "", nil); resp.StatusCode != 204 || len(body) != 0 {
		t.Fatalf("OPTIONS upload: %d", resp.StatusCode)
	}
	if n := e.up.Uploads.Load(); n != 0 {
		t.Fatalf("%d bodies reached the homeserver", n)
	}
}

// TestContentDecidesNotContentType: what the bytes are decides how they
// are judged. A listed picture re-encoded and declared as video, audio or
// a document is still PDQ-matched; its clean twin under the same claim
// passes.
func TestContentDecidesNotContentType(t *testing.T) {
	photo := testPhoto(64, 200, 200)
	listed := encodePNG(photo)
	e := newEnv(t, []string{"pdq " + pdqOf(t, listed).String()}, nil)
	reencoded := jpegBytes(photo, 85)
	cleanJPEG := jpegBytes(testPhoto(65, 200, 200), 85)
	for _, ct := range []string{"video/mp4", "audio/mpeg", "application/pdf", "application/octet-stream", "", "text/plain", "image/gif"} {
		if resp, code := e.upload(t, ct, reencoded); resp.StatusCode != 403 || code != "M_FORBIDDEN" {
			t.Fatalf("listed photo declared %q: %d %s", ct, resp.StatusCode, code)
		}
		if resp, _ := e.upload(t, ct, cleanJPEG); resp.StatusCode != 200 {
			t.Fatalf("clean photo declared %q: %d", ct, resp.StatusCode)
		}
	}
}

// TestUndecodableImagePolicy: bytes that are an image by a signature too
// long to be chance but that cannot be decoded are refused by default
// (nothing stored) and allowed when the operator says so; random bytes
// (an encrypted attachment) are never refused.
func TestUndecodableImagePolicy(t *testing.T) {
	good := encodePNG(testPhoto(66, 64, 64))
	broken := append([]byte(nil), good[:40]...) // signature and IHDR, no pixels
	broken = append(broken, bytes.Repeat([]byte{0x5a}, 200)...)
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(i*7919 + i>>3*31)
	}
	weakMagic := append([]byte("BM"), random...)

	e := newEnv(t, []string{"md5 " + strings.Repeat("0", 32)}, nil)
	for _, ct := range []string{"image/png", "application/octet-stream"} {
		if resp, code := e.upload(t, ct, broken); resp.StatusCode != 403 || code != "M_FORBIDDEN" || e.obs.last().Outcome != Undecodable {
			t.Fatalf("undecodable PNG as %q: %d %s %s", ct, resp.StatusCode, code, e.obs.last().Outcome)
		}
	}
	for _, b := range [][]byte{random, weakMagic} {
		if resp, _ := e.upload(t, "application/octet-stream", b); resp.StatusCode != 200 || e.obs.last().Outcome != Unscannable {
			t.Fatalf("opaque bytes: %d %s", resp.StatusCode, e.obs.last().Outcome)
		}
	}
	if n := e.up.Uploads.Load(); n != 2 {
		t.Fatalf("%d uploads reached the homeserver, want the 2 opaque ones", n)
	}
	// Downloads of the same stored bytes are refused as well.
	e.up.Put("brk", broken, "image/png")
	if resp, _ := e.do(t, "GET", "/_matrix/media/v3/download/hs.example/brk", "", nil); resp.StatusCode != 404 || e.obs.last().Outcome != Undecodable {
		t.Fatalf("undecodable download: %d %s", resp.StatusCode, e.obs.last().Outcome)
	}

	allow := newEnv(t, []string{"md5 " + strings.Repeat("0", 32)}, func(c *Config) { c.OnUndecodableImage = UndecodableAllow })
	if resp, _ := allow.upload(t, "image/png", broken); resp.StatusCode != 200 || allow.obs.last().Outcome != Unscannable {
		t.Fatalf("allow policy: %d %s", resp.StatusCode, allow.obs.last().Outcome)
	}
}

// TestBankChangeReachesRememberedCleanMedia: media judged clean is
// remembered, but not past a change of the banks: once its hash is
// listed, the next download is judged again and refused.
func TestBankChangeReachesRememberedCleanMedia(t *testing.T) {
	img := encodePNG(testPhoto(67, 120, 120))
	e := newEnv(t, []string{"md5 " + strings.Repeat("0", 32)}, nil)
	e.up.Put("later", img, "image/png")
	path := "/_matrix/media/v3/download/hs.example/later"
	if resp, _ := e.do(t, "GET", path, "", nil); resp.StatusCode != 200 || e.obs.last().Outcome != Clean {
		t.Fatalf("first download: %d %s", resp.StatusCode, e.obs.last().Outcome)
	}
	if resp, _ := e.do(t, "GET", path, "", nil); resp.StatusCode != 200 || e.obs.last().Outcome != KnownClean {
		t.Fatalf("second download not remembered: %d %s", resp.StatusCode, e.obs.last().Outcome)
	}
	e.relist(t, "pdq "+pdqOf(t, img).String())
	if resp, _ := e.do(t, "GET", path, "", nil); resp.StatusCode != 404 || e.obs.last().Outcome != Blocked {
		t.Fatalf("after the bank grew: %d %s", resp.StatusCode, e.obs.last().Outcome)
	}
}

// TestLargeDownloadsJudgedWhole: a stored listed picture with megabytes
// appended (bigger than the memory buffer) is judged whole, PDQ included,
// before its first byte; so is an exactly listed file of that size. The
// clean twin is served complete.
func TestLargeDownloadsJudgedWhole(t *testing.T) {
	photo := testPhoto(68, 160, 160)
	listedPNG := encodePNG(photo)
	padding := bytes.Repeat([]byte{0}, 3<<20)
	padded := append(jpegBytes(photo, 90), padding...)
	exact := append(bytes.Repeat([]byte("x"), 2<<20), 'y')
	e := newEnv(t, []string{"pdq " + pdqOf(t, listedPNG).String(), "sha256 " + sha256Hex(exact)}, func(c *Config) {
		c.MaxDownloadBuffer = 256 << 10
	})
	e.up.Put("padded", padded, "image/jpeg")
	e.up.Put("exact", exact, "application/octet-stream")
	for _, id := range []string{"padded", "exact"} {
		resp, body := e.do(t, "GET", "/_matrix/media/v3/download/hs.example/"+id, "", nil)
		if resp.StatusCode != 404 || len(body) > 200 || e.obs.last().Outcome != Blocked {
			t.Fatalf("%s: %d, %d bytes, %s", id, resp.StatusCode, len(body), e.obs.last().Outcome)
		}
	}
	clean := append(jpegBytes(testPhoto(69, 160, 160), 90), padding...)
	e.up.Put("cleanpadded", clean, "image/jpeg")
	if resp, body := e.do(t, "GET", "/_matrix/media/v3/download/hs.example/cleanpadded", "", nil); resp.StatusCode != 200 || !bytes.Equal(body, clean) {
		t.Fatalf("clean twin: %d %d", resp.StatusCode, len(body))
	}
	e.noTempFiles(t)
}

// TestThumbnailFollowsItsOriginal: a thumbnail's bytes need not match the
// list (an exact hash never does, and a crop defeats PDQ), so a thumbnail
// of media nobody has judged yet is served only after the original was
// fetched and judged.
func TestThumbnailFollowsItsOriginal(t *testing.T) {
	listed := encodePNG(testPhoto(70, 128, 128))
	clean := encodePNG(testPhoto(71, 128, 128))
	e := newEnv(t, []string{"sha256 " + sha256Hex(listed)}, nil)
	e.up.Put("tbad", listed, "image/png")
	e.up.Put("tgood", clean, "image/png")
	for _, fam := range []string{"/_matrix/media/v3", "/_matrix/client/v1/media"} {
		resp, body := e.do(t, "GET", fam+"/thumbnail/hs.example/tbad?width=64&height=64&method=crop", "", nil)
		if resp.StatusCode != 404 || bytes.HasPrefix(body, []byte("\x89PNG")) {
			t.Fatalf("%s thumbnail of a listed original: %d", fam, resp.StatusCode)
		}
		resp, body = e.do(t, "GET", fam+"/thumbnail/hs.example/tgood?width=64&height=64&method=crop", "", nil)
		if resp.StatusCode != 200 || !bytes.HasPrefix(body, []byte("\x89PNG")) {
			t.Fatalf("%s thumbnail of a clean original: %d", fam, resp.StatusCode)
		}
	}
	if resp, _ := e.do(t, "GET", "/_matrix/media/v3/thumbnail/hs.example/missing?width=64&height=64", "", nil); resp.StatusCode != 404 {
		t.Fatalf("thumbnail of missing media: %d", resp.StatusCode)
	}
	// The homeserver's own refusal of the original is its answer.
	if resp, body := e.do(t, "GET", "/_matrix/media/v3/thumbnail/hs.example/ratelimited?width=64&height=64", "", nil); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" || !strings.Contains(string(body), "M_LIMIT_EXCEEDED") {
		t.Fatalf("rate-limited original: %d %v %s", resp.StatusCode, resp.Header, body)
	}
}

// TestVideoFirstFrame: clients show a video's first frame, so a video
// whose still is the listed picture is refused; one of a clean picture
// passes.
func TestVideoFirstFrame(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil || !VideoDecoding() {
		if os.Getenv("MEDIAGUARD_REQUIRE_E2E") != "" {
			t.Fatal("ffmpeg is not installed but MEDIAGUARD_REQUIRE_E2E is set")
		}
		t.Skip("SKIPPED: ffmpeg not installed (apt-get install ffmpeg): videos are judged by exact hashes only")
	}
	photo := testPhoto(82, 320, 240)
	e := newEnv(t, []string{"pdq " + pdqOf(t, encodePNG(photo)).String()}, nil)
	video := func(img image.Image) []byte {
		dir := t.TempDir()
		in, out := filepath.Join(dir, "in.png"), filepath.Join(dir, "out.mp4")
		os.WriteFile(in, encodePNG(img), 0o600)
		cmd := exec.Command(ffmpeg, "-nostdin", "-loglevel", "error", "-loop", "1", "-t", "2", "-framerate", "5", "-i", in, "-c:v", "libx264", "-pix_fmt", "yuv420p", out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg: %v %s", err, b)
		}
		b, _ := os.ReadFile(out)
		return b
	}
	for _, ct := range []string{"video/mp4", "application/octet-stream"} {
		if resp, code := e.upload(t, ct, video(photo)); resp.StatusCode != 403 {
			t.Fatalf("listed still as %s: %d %s", ct, resp.StatusCode, code)
		}
		if resp, _ := e.upload(t, ct, video(testPhoto(83, 320, 240))); resp.StatusCode != 200 {
			t.Fatalf("clean video as %s: %d", ct, resp.StatusCode)
		}
	}
}

// TestLargeFederationDownloadsJudgedWhole: a federation body (multipart)
// too big for memory is spooled and its media part judged whole, PDQ
// included, before the first byte, like any download.
func TestLargeFederationDownloadsJudgedWhole(t *testing.T) {
	photo := testPhoto(84, 200, 150)
	listed := append(jpegBytes(photo, 90), bytes.Repeat([]byte{0}, 600<<10)...)
	clean := append(jpegBytes(testPhoto(85, 200, 150), 90), bytes.Repeat([]byte{0}, 600<<10)...)
	e := newEnv(t, []string{"pdq " + pdqOf(t, encodePNG(photo)).String()}, func(c *Config) {
		c.ServerName, c.MaxDownloadBuffer = "hs.example", 256<<10
	})
	e.up.Put("fedbig", listed, "image/jpeg")
	e.up.Put("fedclean", clean, "image/jpeg")
	if resp, body := e.do(t, "GET", "/_matrix/federation/v1/media/download/fedbig", "", nil); resp.StatusCode != 404 || len(body) > 200 || e.obs.last().Outcome != Blocked {
		t.Fatalf("listed: %d, %d bytes, %s", resp.StatusCode, len(body), e.obs.last().Outcome)
	}
	resp, body := e.do(t, "GET", "/_matrix/federation/v1/media/download/fedclean", "", nil)
	if resp.StatusCode != 200 || !bytes.Contains(body, clean) || e.obs.last().Outcome != Clean || e.obs.last().Digests.SHA256Hex() != sha256Hex(clean) {
		t.Fatalf("clean: %d, %s, digests of the part %v", resp.StatusCode, e.obs.last().Outcome, e.obs.last().Digests.SHA256Hex() == sha256Hex(clean))
	}
	testkit.Eventually(t, "spool files removed", func() bool { ents, _ := os.ReadDir(e.tmp); return len(ents) == 0 })
}

// TestSignaturesThatLie: a GIF is never taken for an MPEG-TS video (whose
// sync byte is 'G'), however it is padded; and random bytes that start
// like a JPEG, a TIFF or a BMP (an encrypted attachment, one in millions)
// are never refused as undecodable images.
func TestSignaturesThatLie(t *testing.T) {
	photo := testPhoto(86, 160, 120)
	e := newEnv(t, []string{"pdq " + pdqOf(t, encodePNG(photo)).String()}, nil)
	// A decoy first frame, the listed picture second, and a comment
	// extension of 'G's so that every 188th byte is 0x47.
	g := bypassGIF(t, testPhoto(87, 160, 120), photo)
	padded := append([]byte(nil), g[:13]...)
	comment := []byte{0x21, 0xfe}
	for range 40 {
		comment = append(comment, 255)
		comment = append(comment, bytes.Repeat([]byte("G"), 255)...)
	}
	comment = append(comment, 0)
	padded = append(padded, comment...)
	padded = append(padded, g[13:]...)
	if resp, _ := e.upload(t, "image/gif", padded); resp.StatusCode != 403 {
		t.Fatalf("G-padded GIF: %d %s", resp.StatusCode, e.obs.last().Outcome)
	}
	random := make([]byte, 64<<10)
	for i := range random {
		random[i] = byte(i*2654435761>>13) ^ byte(i>>5)
	}
	for _, head := range [][]byte{{0xff, 0xd8, 0xff, 0xdb, 0x40, 0x00}, {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10}, []byte("II*\x00"), []byte("MM\x00*"), []byte("BM")} {
		body := append(append([]byte(nil), head...), random...)
		if resp, _ := e.upload(t, "application/octet-stream", body); resp.StatusCode != 200 {
			t.Fatalf("random bytes after %x: %d %s (%s)", head, resp.StatusCode, e.obs.last().Outcome, e.obs.last().UnscannableReason)
		}
	}
}

func bypassGIF(t *testing.T, frames ...image.Image) []byte {
	t.Helper()
	var g gif.GIF
	for _, f := range frames {
		pm := image.NewPaletted(f.Bounds(), palette.Plan9)
		draw.Draw(pm, f.Bounds(), f, f.Bounds().Min, draw.Src)
		g.Image = append(g.Image, pm)
		g.Delay = append(g.Delay, 50)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, &g); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestEmbeddedDecoys: tiny decoy pictures in front of the listed one use
// up neither the carving nor the decoding budget.
func TestEmbeddedDecoys(t *testing.T) {
	photo := testPhoto(88, 200, 150)
	e := newEnv(t, []string{"pdq " + pdqOf(t, encodePNG(photo)).String()}, nil)
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i := range 40 {
		w, _ := zw.Create(fmt.Sprintf("decoy%d.png", i))
		w.Write(encodePNG(testPhoto(100+i, 8, 8)))
	}
	w, _ := zw.Create("z.jpg")
	w.Write(jpegBytes(photo, 90))
	zw.Close()
	if resp, _ := e.upload(t, "application/zip", b.Bytes()); resp.StatusCode != 403 {
		t.Fatalf("listed picture behind 40 decoys: %d %s", resp.StatusCode, e.obs.last().Outcome)
	}
	if v := e.obs.last().Verdict; v.Variant != pdq.VariantEmbedded || v.Form != "zip entry z.jpg" {
		t.Fatalf("matched %q (%q); want the embedded picture", v.Form, v.Variant)
	}
}

// TestImageTooLargeToJudge: an image larger than anything judged whole
// (only possible where the homeserver accepts bigger uploads than
// mediaguard) is refused under the undecodable policy, not streamed with
// exact hashes only.
func TestImageTooLargeToJudge(t *testing.T) {
	photo := testPhoto(89, 160, 120)
	e := newEnv(t, []string{"pdq " + pdqOf(t, encodePNG(photo)).String()}, func(c *Config) {
		c.MaxDownloadBuffer, c.MaxUploadSize = 64<<10, 128<<10
	})
	e.up.Put("huge", append(jpegBytes(photo, 90), make([]byte, 300<<10)...), "image/jpeg")
	if resp, body := e.do(t, "GET", "/_matrix/media/v3/download/hs.example/huge", "", nil); resp.StatusCode != 404 || len(body) > 200 || e.obs.last().Outcome != Undecodable {
		t.Fatalf("%d, %d bytes, %s", resp.StatusCode, len(body), e.obs.last().Outcome)
	}
	allow := newEnv(t, nil, func(c *Config) {
		c.MaxDownloadBuffer, c.MaxUploadSize, c.OnUndecodableImage = 64<<10, 128<<10, UndecodableAllow
	})
	clean := append(jpegBytes(testPhoto(90, 160, 120), 90), make([]byte, 300<<10)...)
	allow.up.Put("huge", clean, "image/jpeg")
	if resp, body := allow.do(t, "GET", "/_matrix/media/v3/download/hs.example/huge", "", nil); resp.StatusCode != 200 || !bytes.Equal(body, clean) {
		t.Fatalf("allow policy: %d, %d bytes", resp.StatusCode, len(body))
	}
}

// TestEmbeddedInLargeSpooledBodies: a container bigger than the memory
// buffers (spooled to disk) is searched too, through a mapping of its
// spool file: padding a ZIP past max_download_buffer does not hide the
// listed picture in it.
func TestEmbeddedInLargeSpooledBodies(t *testing.T) {
	photo := testPhoto(91, 200, 150)
	e := newEnv(t, []string{"pdq " + pdqOf(t, encodePNG(photo)).String()}, func(c *Config) {
		c.MaxDownloadBuffer, c.MemoryBuffer = 128<<10, 64<<10
	})
	zipOf := func(img image.Image) []byte {
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: "padding.bin", Method: zip.Store})
		w.Write(make([]byte, 512<<10))
		w, _ = zw.Create("photo.jpg")
		w.Write(jpegBytes(img, 90))
		zw.Close()
		return b.Bytes()
	}
	if resp, _ := e.upload(t, "application/zip", zipOf(photo)); resp.StatusCode != 403 {
		t.Fatalf("padded zip upload: %d %s", resp.StatusCode, e.obs.last().Outcome)
	}
	e.up.Put("bigzip", zipOf(photo), "application/zip")
	if resp, _ := e.do(t, "GET", "/_matrix/media/v3/download/hs.example/bigzip", "", nil); resp.StatusCode != 404 {
		t.Fatalf("padded zip download: %d %s", resp.StatusCode, e.obs.last().Outcome)
	}
	clean := zipOf(testPhoto(92, 200, 150))
	if resp, _ := e.upload(t, "application/zip", clean); resp.StatusCode != 200 {
		t.Fatalf("clean padded zip: %d", resp.StatusCode)
	}
	e.noTempFiles(t)
}
