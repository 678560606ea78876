package caddymodule

import (
	"errors"
	"net/http"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// The status counted is the one the client got: the one written, else the
// one Caddy writes for the error returned, else net/http's 200.
func TestResponseStatus(t *testing.T) {
	tests := []struct {
		name    string
		written int
		err     error
		want    int
	}{
		{"written", 403, nil, 403},
		{"nothing written", 0, nil, 200},
		{"handler error", 0, caddyhttp.Error(http.StatusBadGateway, errors.New("dial")), 502},
		{"handler error after the header", 200, caddyhttp.Error(http.StatusBadGateway, errors.New("reset")), 200},
		{"plain error", 0, errors.New("boom"), 500},
		{"handler error without status", 0, caddyhttp.HandlerError{Err: errors.New("x")}, 500},
	}
	for _, tc := range tests {
		if got := responseStatus(tc.written, tc.err); got != tc.want {
			t.Errorf("%s: status %d; want %d", tc.name, got, tc.want)
		}
	}
}
