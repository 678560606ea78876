package caddymodule

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/mediaguard/mediaguard/mediaproxy"
)

// The status counted is the one the client got: written by the handler
// (after any 1xx), or the one Caddy writes for the error returned, or
// net/http's 200.
func TestResponseStatus(t *testing.T) {
	tests := []struct {
		name  string
		write func(w http.ResponseWriter)
		err   error
		want  int
	}{
		{"written", func(w http.ResponseWriter) { w.WriteHeader(403) }, nil, 403},
		{"early hints first", func(w http.ResponseWriter) { w.WriteHeader(103); w.WriteHeader(503) }, nil, 503},
		{"body only", func(w http.ResponseWriter) { io.WriteString(w, "x") }, nil, 200},
		{"body through ReadFrom", func(w http.ResponseWriter) { w.(io.ReaderFrom).ReadFrom(strings.NewReader("x")) }, nil, 200},
		{"nothing", func(http.ResponseWriter) {}, nil, 200},
		{"handler error", func(http.ResponseWriter) {}, caddyhttp.Error(http.StatusBadGateway, errors.New("dial")), 502},
		{"handler error after the header", func(w http.ResponseWriter) { w.WriteHeader(200) }, caddyhttp.Error(http.StatusBadGateway, errors.New("reset")), 200},
		{"plain error", func(http.ResponseWriter) {}, errors.New("boom"), 500},
		{"handler error without status", func(http.ResponseWriter) {}, caddyhttp.HandlerError{Err: errors.New("x")}, 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			sw := &statusWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: rec}}
			tc.write(sw)
			if got := responseStatus(sw.status, tc.err); got != tc.want {
				t.Errorf("status %d; want %d", got, tc.want)
			}
			// (httptest's recorder keeps a 1xx as the status; net/http does not.)
			if tc.err == nil && rec.Code != tc.want && rec.Code >= 200 {
				t.Errorf("the client got %d, counted %d", rec.Code, tc.want)
			}
		})
	}
}

// Media responses are counted by direction; the rest of the API is not
// media.
func TestMediaDirection(t *testing.T) {
	for _, tc := range []struct{ method, path, want string }{
		{"POST", "/_matrix/media/v3/upload", "upload"},
		{"PUT", "/_matrix/media/v3/upload/hs.example/abc", "upload"},
		{"GET", "/_matrix/client/v1/media/download/hs.example/abc", "download"},
		{"GET", "/_matrix/media/v3/thumbnail/hs.example/abc?width=32&height=32", "download"},
		{"GET", "/_matrix/media/v3/download/hs.example/%2e%2e", "invalid"},
		{"GET", "/_matrix/client/v3/sync", ""},
		{"GET", "/_matrix/media/v3/config", ""},
	} {
		if got := mediaDirection(mediaproxy.Classify(httptest.NewRequest(tc.method, tc.path, nil))); got != tc.want {
			t.Errorf("%s %s: direction %q; want %q", tc.method, tc.path, got, tc.want)
		}
	}
}
