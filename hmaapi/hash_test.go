package hmaapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// TestHash covers POST /h/hash: every answer and error shape. Sources:
// HMA's hashing blueprint (src/OpenMediaMatch/blueprints/hashing.py in
// https://github.com/facebook/ThreatExchange/tree/main/hasher-matcher-actioner)
// for the field names (content types photo and video), "Missing
// multipart/form-data file upload", "Only one file allowed per request"
// and "no such content_type: '…'"; python-threatexchange's PdqSignal and
// VideoMD5Signal for the hashes ("" below quality 50; the file's MD5);
// Flask's jsonify, which ends every JSON body with a newline
// (src/flask/json/provider.py in https://github.com/pallets/flask), for
// the byte shape. Beyond HMA, every answer carries the file's md5, sha1
// and sha256 (signal types /m/lookup takes as extensions): policyserv
// looks up every key, so an exact copy of a file listed by those is a hit.
func TestHash(t *testing.T) {
	e := newEnv(t, envOpt{})
	resized := testimg.JPEG(testimg.Resize(bankedPic, 200, 150), 80)
	flat := image.NewNRGBA(image.Rect(0, 0, 64, 64))
	for i := range flat.Pix {
		flat.Pix[i] = 200
	}
	lowQuality := testimg.PNG(flat)
	// A PNG signature and header, then no pixels: an image by its bytes
	// that nothing decodes.
	brokenPNG := append(bytes.Clone(bankedPNG[:40]), bytes.Repeat([]byte{0x5a}, 200)...)
	notAPicture := []byte("%PDF-1.4\n% just some text, not an image\n%%EOF\n")
	tooMany := make([]part, 0, maxFormParts+1)
	for i := range maxFormParts + 1 {
		tooMany = append(tooMany, part{field: "f" + strconv.Itoa(i), body: []byte("v")})
	}
	big := bytes.Repeat([]byte{1}, 9<<20)
	spilled := make([]byte, 300<<10)
	for i := range spilled {
		spilled[i] = byte(i * 7919 >> 5)
	}
	tests := []struct {
		name    string
		method  string
		query   string
		parts   []part
		raw     []byte // instead of parts
		ctype   string // with raw
		status  int
		want    map[string]string // the whole 200 answer
		message string            // the 4xx answer's message
	}{
		{name: "photo: the banked picture's PNG", parts: []part{fileField("photo", bankedPNG)}, status: 200,
			want: with(exact(bankedPNG), "pdq", e.pdq.String())},
		{name: "photo: a resized, re-encoded copy", parts: []part{fileField("photo", resized)}, status: 200},
		{name: "photo: a form field beside the file is ignored", parts: []part{{field: "note", body: []byte("hello")}, fileField("photo", bankedPNG)},
			status: 200, want: with(exact(bankedPNG), "pdq", e.pdq.String())},
		{name: "photo: below quality 50 is the empty hash", parts: []part{fileField("photo", lowQuality)}, status: 200,
			want: with(exact(lowQuality), "pdq", "")},
		{name: "video: the file's MD5", parts: []part{fileField("video", bankedVideo)}, status: 200,
			want: with(exact(bankedVideo), "video_md5", md5hex(bankedVideo))},
		{name: "video: past memory_buffer, spooled to disk", parts: []part{fileField("video", spilled)}, status: 200,
			want: with(exact(spilled), "video_md5", md5hex(spilled))},
		{name: "video: any bytes, even empty", parts: []part{fileField("video", nil)}, status: 200,
			want: with(exact(nil), "video_md5", md5hex(nil))},
		// The field is the client's claim: policyserv takes an AVIF with an
		// mp41 brand for a video. The bytes decide.
		{name: "video field holding a picture: its pdq too", parts: []part{fileField("video", bankedPNG)}, status: 200,
			want: with(exact(bankedPNG), "pdq", e.pdq.String())},
		{name: "file field of another name", parts: []part{fileField("file", bankedPNG)}, status: 400, message: "no such content_type: 'file'"},
		{name: "no body", status: 400, message: msgNoUpload},
		{name: "not multipart", raw: bankedPNG, ctype: "image/png", status: 400, message: msgNoUpload},
		{name: "photo as a form field, no filename", parts: []part{{field: "photo", body: bankedPNG}}, status: 400, message: msgNoUpload},
		{name: "two files", parts: []part{fileField("photo", bankedPNG), fileField("video", bankedVideo)}, status: 400, message: msgOneFile},
		{name: "the same field twice", parts: []part{fileField("photo", bankedPNG), fileField("photo", cleanPNG)}, status: 400, message: msgOneFile},
		{name: "an empty filename is still a file", parts: []part{fileField("photo", bankedPNG), {field: "video", filename: str(""), body: []byte("x")}},
			status: 400, message: msgOneFile},
		// policyserv sends every media as a photo unless it sniffs as
		// video/: a PDF or an audio file gets the exact digests, each a
		// signal /m/lookup takes, rather than an error it would count as
		// prohibited.
		{name: "photo that is no picture: exact digests", parts: []part{fileField("photo", notAPicture)}, status: 200,
			want: exact(notAPicture)},
		{name: "photo that is a video: video_md5", parts: []part{fileField("photo", bankedVideo)}, status: 200,
			want: with(exact(bankedVideo), "video_md5", md5hex(bankedVideo))},
		{name: "photo that is a broken PNG", parts: []part{fileField("photo", brokenPNG)}, status: 400,
			message: "photo: the upload is a picture that could not be decoded"},
		{name: "too many parts", parts: tooMany, status: 400, message: fmt.Sprintf("more than %d parts in the multipart/form-data body", maxFormParts)},
		{name: "cut off before the closing boundary", raw: []byte("--b\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"x\"\r\n\r\nabc"),
			ctype: "multipart/form-data; boundary=b", status: 400, message: "malformed or incomplete multipart/form-data body"},
		{name: "part without Content-Disposition", raw: []byte("--b\r\nContent-Type: text/plain\r\n\r\nabc\r\n--b--\r\n"),
			ctype: "multipart/form-data; boundary=b", status: 400, message: "malformed multipart/form-data body: a part without a form-data Content-Disposition"},
		{name: "larger than the body bound", parts: []part{fileField("video", big)}, status: 413, message: "request body exceeds 8388608 bytes"},
		{name: "GET is HMA's ?url= form, not offered", method: http.MethodGet, query: "?url=http://127.0.0.1:1/x.jpg", status: 400, message: msgNoURL},
		{name: "GET without url", method: http.MethodGet, status: 400, message: msgNoURL},
		{name: "POST ?url= without a file", query: "?url=http://127.0.0.1:1/x.jpg", status: 400, message: msgNoURL},
		{name: "PUT", method: http.MethodPut, status: 405, message: "The method is not allowed for the requested URL."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, ctype := tc.raw, tc.ctype
			if tc.parts != nil {
				body, ctype = form(t, tc.parts...)
			}
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			w := do(e.h, method, "/h/hash"+tc.query, body, "Content-Type", ctype)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(w.Body.Len()) {
				t.Errorf("Content-Length %s for %d bytes", cl, w.Body.Len())
			}
			if tc.status == 200 {
				var got map[string]string
				if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
					t.Fatalf("%v: %s", err, w.Body)
				}
				if tc.want != nil && fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("answer %v, want %v", got, tc.want)
				}
				if h, ok := got["pdq"]; ok && h != "" && (len(h) != 64 || strings.ToLower(h) != h) {
					t.Errorf("pdq %q is not 64 lowercase hex", h)
				}
			} else {
				var got errorBody
				if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.Message != tc.message {
					t.Errorf("message %q (%v), want %q", got.Message, err, tc.message)
				}
			}
			if left := spoolLeft(t, e.spool); len(left) != 0 {
				t.Errorf("spool files left: %v", left)
			}
			if n := e.proxy.Buffered(); n != 0 {
				t.Errorf("%d bytes of the memory budget still held", n)
			}
		})
	}
}

// TestHashResizedIsNear: the re-encoded, resized copy of the banked
// picture hashes within the PDQ threshold of the banked hash, so the
// /m/lookup that follows matches it (HMA's PDQ threshold is 31:
// PDQ_CONFIDENT_MATCH_THRESHOLD in python-threatexchange).
func TestHashResizedIsNear(t *testing.T) {
	e := newEnv(t, envOpt{})
	for _, b := range [][]byte{testimg.JPEG(testimg.Resize(bankedPic, 200, 150), 80), testimg.JPEG(bankedPic, 60)} {
		body, ct := form(t, fileField("photo", b))
		w := do(e.h, http.MethodPost, "/h/hash", body, "Content-Type", ct)
		var got map[string]string
		json.Unmarshal(w.Body.Bytes(), &got)
		h, err := parsePDQ(got["pdq"])
		if err != nil {
			t.Fatalf("%v: %s", err, w.Body)
		}
		if d := pdq.Distance(h, e.pdq); d > 31 {
			t.Errorf("copy at distance %d", d)
		}
	}
}

// TestHashNeverFetchesURLs: however the url is given, nothing is fetched
// (HMA's ?url= makes its server fetch any URL: an SSRF here).
func TestHashNeverFetchesURLs(t *testing.T) {
	var hits atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "image/png")
		w.Write(bankedPNG)
	}))
	defer target.Close()
	e := newEnv(t, envOpt{})
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/h/hash?url="}, {http.MethodPost, "/h/hash?url="}, {http.MethodGet, "/m/lookup?url="},
		{http.MethodGet, "/m/lookup?signal_type=pdq&url="},
	} {
		w := do(e.h, tc.method, tc.path+target.URL+"/x.png", nil)
		if w.Code != 400 || !strings.Contains(w.Body.String(), "url fetching is not offered") {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, w.Code, w.Body)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("the url was fetched %d times", hits.Load())
	}
}

// TestHashChunkedTooLarge: a body without Content-Length is bounded as
// it is read, and what was spooled is removed.
func TestHashChunkedTooLarge(t *testing.T) {
	e := newEnv(t, envOpt{cfg: Config{MaxBodyBytes: 200 << 10}})
	body, ct := form(t, fileField("video", bytes.Repeat([]byte{7}, 300<<10)))
	req := httptest.NewRequest(http.MethodPost, "/h/hash", bytes.NewReader(body))
	req.ContentLength = -1
	req.Header.Set("Content-Type", ct)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	if w.Code != 413 || w.Header().Get("Connection") != "close" {
		t.Errorf("status %d, Connection %q: %s", w.Code, w.Header().Get("Connection"), w.Body)
	}
	if left := spoolLeft(t, e.spool); len(left) != 0 {
		t.Errorf("spool files left: %v", left)
	}
}

// TestHashUndecodableAllowed: under on_undecodable_image allow, a picture
// nothing decodes is judged by its exact digests, as the proxy lets it
// through by them; under block (the default, TestHash) it is refused.
func TestHashUndecodableAllowed(t *testing.T) {
	e := newEnv(t, envOpt{})
	p, err := mediaproxy.New(mediaproxy.Config{Matcher: e.guard, TempDir: t.TempDir(), Runner: testRunner, OnUndecodableImage: mediaproxy.UndecodableAllow})
	if err != nil {
		t.Fatal(err)
	}
	h := mustNew(t, Config{Matcher: e.guard, Proxy: p})
	broken := append(bytes.Clone(bankedPNG[:40]), bytes.Repeat([]byte{0x5a}, 200)...)
	body, ct := form(t, fileField("photo", broken))
	w := do(h, http.MethodPost, "/h/hash", body, "Content-Type", ct)
	want := fmt.Sprintf(`{"md5":"%s","sha1":"%s","sha256":"%s"}`+"\n", md5hex(broken), sha1hex(broken), sha256hex(broken))
	if w.Code != 200 || w.Body.String() != want {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}

// exact is the exact-digest signals of b, which every /h/hash answer has.
func exact(b []byte) map[string]string {
	return map[string]string{"md5": md5hex(b), "sha1": sha1hex(b), "sha256": sha256hex(b)}
}

// with is m with k set to v.
func with(m map[string]string, k, v string) map[string]string {
	m[k] = v
	return m
}
