package mediaproxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mediaguard/mediaguard/internal/testimg"
)

// fakeSynapse is an httptest upstream that mimics Synapse's media
// repository where Dendrite cannot be used (reference/matrix.md):
//   - POST /_matrix/media/v3/upload answers {"content_uri":"mxc://server/id"}
//     and, like Synapse, refuses a body without Content-Length (400);
//   - POST /_matrix/media/v1/create answers {"content_uri","unused_expires_at"},
//     then PUT /_matrix/media/v3/upload/{server}/{id} answers 200 {} and
//     409 M_CANNOT_OVERWRITE_MEDIA on a second upload;
//   - downloads on the legacy and client-v1 families return the bytes with
//     Content-Type, ETag and Content-Length; HEAD has no body; Range gives
//     206; If-None-Match matching the ETag gives 304;
//   - /_matrix/federation/v1/media/download/{id} returns multipart/mixed:
//     a JSON part {} then the media part (or a Location part when asked
//     to redirect);
//   - thumbnails return a 2× downscaled PNG of an image.
type fakeSynapse struct {
	*httptest.Server
	server string
	mu     sync.Mutex
	media  map[string]fakeMedia
	next   int
	// uploads counts bodies that reached the homeserver.
	uploads atomic.Int64
	// redirect makes federation downloads answer with a Location part.
	redirect bool
}

type fakeMedia struct {
	data []byte
	ct   string
}

func newFakeSynapse(t *testing.T) *fakeSynapse {
	f := &fakeSynapse{server: "hs.example", media: map[string]fakeMedia{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeSynapse) put(id string, data []byte, ct string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.media[id] = fakeMedia{data, ct}
}

func (f *fakeSynapse) get(id string) (fakeMedia, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.media[id]
	return m, ok && m.data != nil
}

func jsonErr(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errcode":%q,"error":"fake"}`, code)
}

func (f *fakeSynapse) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/upload"):
		if r.ContentLength < 0 || len(r.TransferEncoding) > 0 {
			jsonErr(w, 400, "M_UNKNOWN")
			return
		}
		data, err := io.ReadAll(r.Body)
		if err != nil || int64(len(data)) != r.ContentLength {
			jsonErr(w, 400, "M_UNKNOWN")
			return
		}
		f.uploads.Add(1)
		f.mu.Lock()
		f.next++
		id := "m" + strconv.Itoa(f.next)
		f.mu.Unlock()
		f.put(id, data, r.Header.Get("Content-Type"))
		fmt.Fprintf(w, `{"content_uri":"mxc://%s/%s"}`, f.server, id)
	case r.Method == http.MethodPost && p == "/_matrix/media/v1/create":
		f.mu.Lock()
		f.next++
		id := "a" + strconv.Itoa(f.next)
		f.media[id] = fakeMedia{}
		f.mu.Unlock()
		fmt.Fprintf(w, `{"content_uri":"mxc://%s/%s","unused_expires_at":1}`, f.server, id)
	case r.Method == http.MethodPut && strings.HasPrefix(p, "/_matrix/media/v3/upload/"):
		parts := strings.Split(strings.TrimPrefix(p, "/_matrix/media/v3/upload/"), "/")
		f.mu.Lock()
		m, ok := f.media[parts[1]]
		f.mu.Unlock()
		switch {
		case !ok:
			jsonErr(w, 404, "M_NOT_FOUND")
		case m.data != nil:
			jsonErr(w, 409, "M_CANNOT_OVERWRITE_MEDIA")
		case r.ContentLength < 0:
			jsonErr(w, 400, "M_UNKNOWN")
		default:
			data, _ := io.ReadAll(r.Body)
			f.uploads.Add(1)
			f.put(parts[1], data, r.Header.Get("Content-Type"))
			io.WriteString(w, "{}")
		}
	case strings.HasPrefix(p, "/_matrix/federation/v1/media/download/"):
		id := strings.TrimPrefix(p, "/_matrix/federation/v1/media/download/")
		m, ok := f.get(id)
		if !ok {
			jsonErr(w, 404, "M_NOT_FOUND")
			return
		}
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		jp, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/json"}})
		io.WriteString(jp, "{}")
		if f.redirect {
			mw.CreatePart(textproto.MIMEHeader{"Location": {"https://cdn.example/" + id}})
		} else {
			mp, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {m.ct}})
			mp.Write(m.data)
		}
		mw.Close()
		w.Header().Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
		w.Write(buf.Bytes())
	case strings.Contains(p, "/download/") || strings.Contains(p, "/thumbnail/"):
		segs := strings.Split(p, "/")
		var id string
		for i, s := range segs {
			if (s == "download" || s == "thumbnail") && i+2 < len(segs) {
				id = segs[i+2]
			}
		}
		if id == "ratelimited" {
			// Synapse's rate limiter: 429 M_LIMIT_EXCEEDED.
			w.Header().Set("Retry-After", "7")
			jsonErr(w, 429, "M_LIMIT_EXCEEDED")
			return
		}
		m, ok := f.get(id)
		if !ok {
			jsonErr(w, 404, "M_NOT_FOUND")
			return
		}
		data, ct := m.data, m.ct
		if strings.Contains(p, "/thumbnail/") {
			img, err := png.Decode(bytes.NewReader(data))
			if err != nil {
				jsonErr(w, 400, "M_UNKNOWN")
				return
			}
			data, ct = encodePNG(halve(img)), "image/png"
		}
		sum := sha256.Sum256(data)
		etag := `"` + hex.EncodeToString(sum[:8]) + `"`
		w.Header().Set("ETag", etag)
		w.Header().Set("Content-Type", ct)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		http.ServeContent(w, r, "", zeroTime, bytes.NewReader(data))
	default:
		jsonErr(w, 404, "M_UNRECOGNIZED")
	}
}

func halve(img image.Image) image.Image {
	b := img.Bounds()
	return testimg.Resize(img, b.Dx()/2, b.Dy()/2)
}

func encodePNG(img image.Image) []byte { return testimg.PNG(img) }
