package mediaproxy

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// OnResponse hears the answer to every media request, whatever the
// method and whoever wrote it (mediaproxy or the homeserver), with its
// direction; the rest of the API is not media and is not reported.
func TestOnResponse(t *testing.T) {
	type answer struct {
		dir    string
		status int
		err    error
	}
	var mu sync.Mutex
	var got []answer
	listed := encodePNG(testPhoto(81, 64, 64))
	e := newEnv(t, []string{"sha256 " + sha256Hex(listed)}, func(c *Config) {
		c.OnResponse = func(dir string, status int, err error) {
			mu.Lock()
			got = append(got, answer{dir, status, err})
			mu.Unlock()
		}
	})
	e.up.Put("good", encodePNG(testPhoto(82, 64, 64)), "image/png")
	tests := []struct {
		name, method, path, ct string
		body                   []byte
		want                   *answer // nil: not reported
	}{
		{"listed upload", "POST", "/_matrix/media/v3/upload", "image/png", listed, &answer{"upload", 403, nil}},
		{"clean upload", "POST", "/_matrix/media/v3/upload", "image/png", encodePNG(testPhoto(83, 64, 64)), &answer{"upload", 200, nil}},
		{"preflight", "OPTIONS", "/_matrix/media/v3/upload", "", nil, &answer{"upload", 204, nil}},
		{"download", "GET", "/_matrix/client/v1/media/download/hs.example/good", "", nil, &answer{"download", 200, nil}},
		{"download of nothing", "GET", "/_matrix/client/v1/media/download/hs.example/none", "", nil, &answer{"download", 404, nil}},
		{"another method", "DELETE", "/_matrix/media/v3/download/hs.example/good", "", nil, &answer{"download", 405, nil}},
		{"disguised media path", "GET", "/_matrix/media/v3/download/hs.example/%2e%2e", "", nil, &answer{"invalid", 404, nil}},
		{"not media", "GET", "/_matrix/client/v3/sync", "", nil, nil},
	}
	for _, tc := range tests {
		mu.Lock()
		got = nil
		mu.Unlock()
		resp, _ := e.do(t, tc.method, tc.path, tc.ct, tc.body)
		mu.Lock()
		switch {
		case tc.want == nil && len(got) != 0:
			t.Errorf("%s: reported %+v", tc.name, got)
		case tc.want != nil && (len(got) != 1 || got[0] != *tc.want || resp.StatusCode != tc.want.status):
			t.Errorf("%s: client got %d, reported %+v; want %+v", tc.name, resp.StatusCode, got, *tc.want)
		}
		mu.Unlock()
	}

	// A HEAD of media judged clean goes straight to the homeserver; when
	// that fails without an answer the error is reported for the server
	// to turn into a status.
	got = nil
	boom := errors.New("dial tcp: connection refused")
	err := e.proxy.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("HEAD", "/_matrix/client/v1/media/download/hs.example/good", nil),
		func(http.ResponseWriter, *http.Request) error { return boom })
	if err != boom || len(got) != 1 || got[0] != (answer{"download", 0, boom}) {
		t.Fatalf("failed pass-through: returned %v, reported %+v", err, got)
	}
}
