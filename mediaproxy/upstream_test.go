package mediaproxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The chain runs in a goroutine of its own: a panic there that is not
// reverse_proxy's abort must reach the handler's goroutine (where the
// server recovers it), not crash the process; and a chain that answers
// nothing at all answered an empty 200, judged like any body.
func TestUpstreamChainEnds(t *testing.T) {
	e := newEnv(t, []string{"md5 " + strings.Repeat("0", 31) + "1"}, nil)
	get := func() *http.Request {
		return httptest.NewRequest("GET", "/_matrix/media/v3/download/hs.example/chainend", nil)
	}

	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Errorf("the chain's panic reached the handler as %v, want boom", v)
			}
		}()
		e.proxy.ServeHTTP(httptest.NewRecorder(), get(), func(http.ResponseWriter, *http.Request) error { panic("boom") })
	}()

	rec := httptest.NewRecorder()
	if err := e.proxy.ServeHTTP(rec, get(), func(http.ResponseWriter, *http.Request) error { return nil }); err != nil || rec.Code != 200 || rec.Body.Len() != 0 {
		t.Fatalf("silent chain: %v, %d, %d bytes", err, rec.Code, rec.Body.Len())
	}
	// No bytes and no type: judged (its digests matched) as opaque content.
	if o := e.obs.last().Outcome; o != Unscannable {
		t.Fatalf("silent chain judged %q, want unscannable", o)
	}
}
