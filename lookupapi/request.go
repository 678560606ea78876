package lookupapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"

	"github.com/mediaguard/mediaguard/lookupwire"
	"github.com/mediaguard/mediaguard/matcher"
)

// errNoHashes is a request that decoded but names no digest to look up.
var errNoHashes = fmt.Errorf("%w: the request carries no usable hash: send hashes.md5, sha1, sha256 or pdq",
	matcher.ErrBadLookupRequest)

// requestError is a request rejected before it reached the matcher.
type requestError struct {
	status int
	code   string
	msg    string
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readRequest reads and decodes the body (leniently, see
// lookupwire.DecodeRequest). Any Content-Type is accepted, since callers
// label JSON inconsistently, but the body is only ever parsed as JSON. Error messages describe the problem and never quote the body.
func (h *Handler) readRequest(w http.ResponseWriter, r *http.Request) (lookupwire.Request, *requestError) {
	if r.ContentLength > h.maxBody {
		return lookupwire.Request{}, h.tooLarge()
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		// A buffer grown by one large body is not kept for everyone.
		if buf.Cap() <= 2*DefaultMaxBodyBytes {
			buf.Reset()
			bufPool.Put(buf)
		}
	}()
	buf.Reset()
	if r.Body != nil {
		if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, h.maxBody)); err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return lookupwire.Request{}, h.tooLarge()
			}
			return lookupwire.Request{}, &requestError{http.StatusBadRequest, codeBadJSON, "could not read the request body"}
		}
	}
	body := buf.Bytes()
	if len(bytes.TrimSpace(body)) == 0 {
		return lookupwire.Request{}, &requestError{http.StatusBadRequest, codeNotJSON, "empty request body: expected a JSON object"}
	}
	req, err := lookupwire.DecodeRequest(body)
	if errors.Is(err, lookupwire.ErrNoHashes) {
		// null, {}, or an object without "hashes": nothing to look up.
		return lookupwire.Request{}, &requestError{http.StatusBadRequest, codeBadJSON,
			lookupwire.ErrNoHashes.Error()}
	}
	if err != nil {
		return lookupwire.Request{}, decodeError(err)
	}
	return req, nil
}

// tooLarge is the answer to a body over the limit.
func (h *Handler) tooLarge() *requestError {
	return &requestError{http.StatusRequestEntityTooLarge, codeTooLarge,
		fmt.Sprintf("request body exceeds %d bytes", h.maxBody)}
}

// decodeError turns a json error into a message that names the place or
// the field, never the offending text.
func decodeError(err error) *requestError {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return &requestError{http.StatusBadRequest, codeNotJSON,
			fmt.Sprintf("malformed JSON near byte %d", se.Offset)}
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		// Value is "number 1.5" for numbers: keep only the type.
		got, _, _ := strings.Cut(te.Value, " ")
		if te.Field == "" {
			return &requestError{http.StatusBadRequest, codeBadJSON,
				fmt.Sprintf("the request must be a JSON object, not a JSON %s", got)}
		}
		return &requestError{http.StatusBadRequest, codeBadJSON,
			fmt.Sprintf("field %s must be a JSON %s, not a JSON %s", te.Field, jsonType(te.Type), got)}
	}
	return &requestError{http.StatusBadRequest, codeBadJSON, "the request is not a lookup request"}
}

// jsonType names the JSON type a Go type decodes from.
func jsonType(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "value"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	}
	return "value"
}

// badRequestMessage is the client-facing text of a Query error.
func badRequestMessage(err error) string {
	return strings.TrimPrefix(err.Error(), matcher.ErrBadLookupRequest.Error()+": ")
}
