package hmaapi

import (
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
)

// Content types: the field names /h/hash takes, as HMA's
// _lookup_content_type maps a multipart field name onto a content type
// (src/OpenMediaMatch/blueprints/hashing.py in
// https://github.com/facebook/ThreatExchange/tree/main/hasher-matcher-actioner).
// policyserv sends exactly one of them (content/hma.go in
// https://github.com/matrix-org/policyserv: CreateFormFile("photo", "x")
// or CreateFormFile("video", "x")).
const (
	FieldPhoto = "photo"
	FieldVideo = "video"
)

// maxFormParts bounds the parts of one /h/hash body. A real one has one;
// the body's size bounds the rest, but not the work of many empty parts.
const maxFormParts = 100

// requestError is a request refused before any hashing or matching: its
// status and HMA-style message, and the underlying cause for the log.
type requestError struct {
	status int
	msg    string
	cause  error
}

func (e *requestError) Error() string {
	if e.cause != nil {
		return e.msg + ": " + e.cause.Error()
	}
	return e.msg
}

func (e *requestError) Unwrap() error { return e.cause }

func badRequest(msg string) *requestError {
	return &requestError{status: http.StatusBadRequest, msg: msg}
}

// Messages HMA answers, kept verbatim so clients that match on them keep
// working.
const (
	msgNoUpload = "Missing multipart/form-data file upload"
	msgOneFile  = "Only one file allowed per request"
)

// formBoundary returns the boundary of a multipart/form-data Content-Type,
// or a 400 in HMA's words when the body is no file upload.
func formBoundary(contentType string) (string, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return "", badRequest(msgNoUpload)
	}
	return params["boundary"], nil
}

// readUpload reads a multipart/form-data body part by part, never holding
// more than a part's headers: the file part's content goes straight to
// file, which must read it to its end (the caller spools it). As werkzeug
// fills Flask's request.files, which HMA reads, a part is a file when its
// Content-Disposition has a filename parameter (even an empty one); other
// parts are form fields, read and dropped. Exactly one file is allowed,
// and its field must be photo or video: a second file (the same field or
// another) is HMA's "Only one file allowed per request", an unknown field
// its "no such content_type", none at all its "Missing multipart/form-data
// file upload", all 400. The field name of the file is returned. A read
// error of the body itself (too large, cut off, stalled) is returned as it
// is, for the caller to answer; file's errors too.
func readUpload(body io.Reader, boundary string, file func(field, contentType string, r io.Reader) error) (string, error) {
	mr := multipart.NewReader(body, boundary)
	field := ""
	for n := 0; ; n++ {
		part, err := mr.NextPart()
		// Only a bare io.EOF is the closing boundary: a body cut off
		// before it comes back as "multipart: NextPart: EOF", wrapping
		// io.EOF.
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		if n >= maxFormParts {
			return "", badRequest(fmt.Sprintf("more than %d parts in the multipart/form-data body", maxFormParts))
		}
		name, isFile, err := partField(part)
		if err != nil {
			return "", err
		}
		if !isFile {
			if _, err := io.Copy(io.Discard, part); err != nil {
				return "", err
			}
			continue
		}
		if field != "" {
			return "", badRequest(msgOneFile)
		}
		if name != FieldPhoto && name != FieldVideo {
			return "", badRequest(fmt.Sprintf("no such content_type: '%s'", clip(name, 64)))
		}
		field = name
		if err := file(name, part.Header.Get("Content-Type"), part); err != nil {
			return "", err
		}
	}
	if field == "" {
		return "", badRequest(msgNoUpload)
	}
	return field, nil
}

// partField reads a part's Content-Disposition: its field name and whether
// it is a file (has a filename parameter).
func partField(p *multipart.Part) (name string, isFile bool, err error) {
	cd := p.Header.Get("Content-Disposition")
	disp, params, perr := mime.ParseMediaType(cd)
	if perr != nil || disp != "form-data" {
		return "", false, &requestError{status: http.StatusBadRequest, msg: "malformed multipart/form-data body: a part without a form-data Content-Disposition", cause: perr}
	}
	_, isFile = params["filename"]
	return params["name"], isFile, nil
}

// clip bounds a client-supplied string quoted in an answer or a log line.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
