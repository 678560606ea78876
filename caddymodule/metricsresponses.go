package caddymodule

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/mediaguard/mediaguard/mediaproxy"
)

// statusWriter notes the status of the response written through it. The
// embedded wrapper passes on flushing, hijacking and ReadFrom, and
// unwraps for http.ResponseController (deadlines, flushes).
type statusWriter struct {
	*caddyhttp.ResponseWriterWrapper
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 { // 1xx are not the answer
		w.status = code
	}
	w.ResponseWriterWrapper.WriteHeader(code)
}

// responseStatus is the status a client got: the one written, else the
// one Caddy writes for the error returned (a HandlerError's, else 500),
// else 200 (net/http's for a handler that wrote nothing or only a body).
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

// mediaDirection is the responses_total direction of a media endpoint, ""
// for a request that is not media.
func mediaDirection(ep mediaproxy.Endpoint) string {
	switch ep.Kind {
	case mediaproxy.Upload, mediaproxy.UploadTo:
		return "upload"
	case mediaproxy.Download:
		return "download"
	case mediaproxy.Invalid:
		return "invalid"
	}
	return ""
}

// countResponse counts one media response.
func countResponse(dir string, status int) {
	responses.WithLabelValues(dir, strconv.Itoa(status)).Inc()
}
