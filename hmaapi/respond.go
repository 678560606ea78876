package hmaapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/mediaguard/mediaguard/internal/apigate"
)

// Auth outcomes beyond apigate's ok, missing and wrong, as Answer.Auth
// spells them (the lookup API's spelling, so both share one vocabulary).
const (
	AuthOff       = "off"       // no API key configured
	AuthUnchecked = "unchecked" // answered before the check
)

// errorBody is HMA's error shape: every abort() of its Flask blueprints
// goes through api_error_handler, which answers {"message": description}
// (src/OpenMediaMatch/utils/flask_utils.py in
// https://github.com/facebook/ThreatExchange/tree/main/hasher-matcher-actioner).
type errorBody struct {
	Message string `json:"message"`
}

// setJSONHeaders marks an answer as JSON that no cache may keep: a
// verdict is about one moment's hash lists.
func setJSONHeaders(hd http.Header) {
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
}

// writeJSON encodes v and answers it with a trailing newline, as Flask's
// jsonify does (HMA's {"pdq":"<64 hex>"} is 75 bytes), with an exact
// Content-Length. Every value written here encodes.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own fixed types are written; an error is a bug, not
		// a client's doing.
		b = []byte(`{"message":"internal error"}`)
		status = http.StatusInternalServerError
	}
	b = append(b, '\n')
	setJSONHeaders(w.Header())
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b) // a client that went away is not our error
}

// writeMessage answers HMA's {"message": msg}.
func writeMessage(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Message: msg})
}

// writeNoVerdict answers an /m/lookup that gets no verdict (401, 405,
// 429, 503) with HMA's error object inside a JSON list. policyserv
// decodes every /m/lookup answer into a map and takes each key as a
// matched bank without looking at the status (content/hma.go in
// https://github.com/matrix-org/policyserv): a {"message": ...} there is
// a "match" in a bank called "message", which no deployment enables, so
// the media passes as clean. A list cannot decode into its map: the
// lookup fails, and policyserv counts the media as prohibited, which is
// what a fail-closed 503 means. HMA itself answers lists for its 422s
// (pydantic's validation errors), so a client already meets them.
func writeNoVerdict(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, []errorBody{{Message: msg}})
}

// writeText answers the plain words of HMA's health routes ("I-AM-ALIVE",
// "INDEX-NOT-LOADED"), as Flask sends a returned string: text/html.
func writeText(w http.ResponseWriter, status int, text string) {
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Length", strconv.Itoa(len(text)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(text))
}

// retryAfter sets Retry-After for a 503 or 429.
func retryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", apigate.RetryAfterSeconds(d))
}
