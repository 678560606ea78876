package lookupapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/mediaguard/mediaguard/internal/apigate"
)

// Error codes, as the Matrix client-server API spells them, so that Matrix
// tooling reading these answers finds familiar values.
const (
	codeNotJSON       = "M_NOT_JSON"  // the body is not JSON at all
	codeBadJSON       = "M_BAD_JSON"  // JSON, but not a usable lookup request
	codeTooLarge      = "M_TOO_LARGE" // body over MaxBodyBytes
	codeMissingToken  = "M_MISSING_TOKEN"
	codeUnknownToken  = "M_UNKNOWN_TOKEN"
	codeLimitExceeded = "M_LIMIT_EXCEEDED"
	codeUnrecognized  = "M_UNRECOGNIZED" // method not allowed
	codeUnavailable   = "M_UNKNOWN"      // the spec has no code for 503
	codeInternal      = "M_UNKNOWN"
)

// errorBody is every error answer.
type errorBody struct {
	Errcode string `json:"errcode"`
	Error   string `json:"error"`
	// RetryAfterMS accompanies M_LIMIT_EXCEEDED, as in Matrix.
	RetryAfterMS int64 `json:"retry_after_ms,omitempty"`
}

// setCommonHeaders marks every answer, errors included, as JSON that no
// cache may keep: a verdict is about one moment's hash lists.
func setCommonHeaders(hd http.Header) {
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
}

// writeJSON encodes v first, so an unencodable value is an error returned
// before anything is written.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b) // a client that went away is not our error
	return nil
}

// writeError answers a JSON error.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	_ = writeJSON(w, status, errorBody{Errcode: code, Error: msg})
}

// writeRateLimited answers 429 with the wait both as Retry-After and as
// Matrix's retry_after_ms.
func writeRateLimited(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", apigate.RetryAfterSeconds(wait))
	_ = writeJSON(w, http.StatusTooManyRequests, errorBody{
		Errcode:      codeLimitExceeded,
		Error:        "too many requests: slow down",
		RetryAfterMS: max(wait.Milliseconds(), 1),
	})
}
