package lookupapi

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"testing"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// discardWriter is a ResponseWriter that keeps nothing but the status, so
// the benchmark measures the handler, not a recorder.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }

// rewindBody is a request body that can be replayed.
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

// BenchmarkLookup is one plugin request answered by a Local holding 10,000
// PDQ entries plus exact hashes, calling ServeHTTP directly: "pdq" carries a
// real PDQ hash at distance 6 of a banked one (a block), "exact" is the
// plugin's own request (placeholder PDQ, nothing listed), which isolates the
// handler's own cost.
func BenchmarkLookup(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	lines := []string{"md5 " + listedMD5, "sha1 " + listedSHA1, "sha256 " + listedSHA256, "pdq " + bankedPDQ}
	for range 10000 {
		lines = append(lines, "pdq "+pdq.Hash{rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64()}.String())
	}
	h := newHandler(b, Config{Matcher: newTestLocal(b, lines...), APIKey: testKey, RateLimit: 1e9, RateBurst: 1e9})
	for _, bc := range []struct{ name, pdq string }{
		{"pdq", flipPDQ(b, bankedPDQ, 6)},
		{"exact", placeholderPDQ},
	} {
		b.Run(bc.name, func(b *testing.B) {
			body := []byte(fmt.Sprintf(`{"hashes":{"md5":%q,"sha1":%q,"sha256":%q,"pdq":%q},`+
				`"eventId":"$ev1:example.org","roomId":"!room:example.org","userId":"@mallory:example.org",`+
				`"mediaType":"m.image","timestamp":1703123456789}`, unlistedMD5, unlistedSHA1, unlistedSHA256, bc.pdq))
			benchServe(b, h, body)
		})
	}
}

func benchServe(b *testing.B, h http.Handler, body []byte) {
	u, _ := url.Parse("http://mediaguard/_mediaguard/lookup")
	rb := &rewindBody{}
	req := &http.Request{
		Method: http.MethodPost, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{
			"Content-Type":  {"application/json"},
			"User-Agent":    {"Mjolnir-HMA-Plugin/1.0"},
			"Authorization": {"Bearer " + testKey},
		},
		Body: rb, ContentLength: int64(len(body)), RemoteAddr: "192.0.2.1:4711", Host: "mediaguard",
	}
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		rb.Reset(body)
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}
