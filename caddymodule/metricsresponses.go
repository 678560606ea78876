package caddymodule

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// countResponse counts the answer to one media request (the proxy's
// OnResponse): Caddy's own caddy_http_* series cannot tell media from
// the rest of the API.
func countResponse(direction string, written int, err error) {
	responses.WithLabelValues(direction, strconv.Itoa(responseStatus(written, err))).Inc()
}

// responseStatus is the status a client got: the one written, else the
// one Caddy writes for the error returned (a HandlerError's, else 500),
// else 200 (net/http's for a handler that wrote nothing).
func responseStatus(written int, err error) int {
	if written != 0 {
		return written
	}
	if err != nil {
		var he caddyhttp.HandlerError
		if errors.As(err, &he) && he.StatusCode != 0 {
			return he.StatusCode
		}
		return http.StatusInternalServerError
	}
	return http.StatusOK
}
