package hmaapi

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// msgNoURL answers HMA's ?url= form of /h/hash (and of /m/lookup). HMA
// fetches whatever URL the caller names (hash_url_content: requests.get,
// redirects followed), which from inside a homeserver's network is a
// server-side request forgery waiting to happen; no HMA client needs it
// when it holds the media itself, as policyserv does.
const msgNoURL = "url fetching is not offered by mediaguard: POST the media to /h/hash as multipart/form-data in a field named photo or video"

// serveHash answers /h/hash: a multipart upload hashed into HMA's flat
// object of signal type → hash.
func (h *Handler) serveHash(w http.ResponseWriter, r *http.Request, client string) string {
	if r.Method != http.MethodPost {
		// HMA's GET /h/hash is the ?url= form only.
		return h.refuse(w, client, badRequest(msgNoURL))
	}
	if h.proxy == nil {
		writeMessage(w, http.StatusServiceUnavailable, "hashing is not available here")
		return OutcomeUnavailable
	}
	boundary, err := formBoundary(r.Header.Get("Content-Type"))
	if err != nil {
		if r.URL.Query().Has("url") {
			err = badRequest(msgNoURL)
		}
		return h.refuse(w, client, err)
	}
	if r.ContentLength > h.maxBody {
		w.Header().Set("Connection", "close")
		return h.refuse(w, client, h.tooLarge())
	}
	body, done := h.proxy.IdleBody(w, http.MaxBytesReader(w, r.Body, h.maxBody))
	var up *mediaproxy.SpooledBody
	defer func() { up.Close() }()
	var partType string
	field, err := readUpload(bufio.NewReaderSize(body, uploadReadBuffer), boundary, func(_, ct string, part io.Reader) error {
		partType = ct
		var err error
		up, err = h.proxy.SpoolBody(fullReads{part}, h.maxBody, r.ContentLength)
		return err
	})
	done(err == nil)
	if err != nil {
		// The rest of the body is not worth reading: the connection
		// closes after the answer instead of net/http draining it.
		w.Header().Set("Connection", "close")
		return h.refuse(w, client, h.bodyError(err))
	}
	// The field is the client's claim (policyserv picks it from
	// http.DetectContentType, which takes an AVIF with an mp41 brand for
	// video/mp4): both are judged by their bytes, as the proxy judges an
	// upload. Every signal the bytes have is answered, and policyserv
	// looks every one up, so an exact copy of a file a bank lists by
	// MD5, SHA-1 or SHA-256 (NCMEC's image MD5 and SHA-1, a learned
	// quarantine) is a hit even when its PDQ is not usable.
	fs, err := up.Scan(r.Context(), partType)
	if err != nil {
		// The client went away mid-hash; nobody reads this answer.
		writeMessage(w, http.StatusServiceUnavailable, "hashing abandoned: the request was cancelled")
		return OutcomeUnavailable
	}
	q, d := &fs.Query, up.Digests()
	if fs.Undecodable != "" && h.proxy.RefusesUndecodable() {
		// An image by its bytes that nothing here decodes: the proxy
		// refuses it (on_undecodable_image block), and HMA's PDQ hasher
		// raises on it; an error is the honest answer.
		return h.refuse(w, client, badRequest(field+": the upload is a picture that could not be decoded"))
	}
	out := map[string]string{
		SignalMD5:    hex.EncodeToString(d.MD5[:]),
		SignalSHA1:   hex.EncodeToString(d.SHA1[:]),
		SignalSHA256: hex.EncodeToString(d.SHA256[:]),
	}
	outcome := OutcomeOK
	switch {
	case fs.Undecodable == "" && q.Kind == matcher.KindImage && q.Has&matcher.HasPDQ != 0:
		// The stored form: what HMA and NCMEC lists are built with
		// (orientation ignored), bit for bit Meta's reference PDQ. Below
		// the quality threshold nobody matches it, and HMA answers ""
		// (PdqSignal.hash_from_bytes in python-threatexchange).
		out[SignalPDQ] = q.PDQ.String()
		if q.PDQ.IsZero() || q.PDQQuality < h.minQuality {
			out[SignalPDQ] = ""
			outcome = OutcomeLowQuality
		}
	case q.Kind == matcher.KindVideo || field == FieldVideo && q.Kind != matcher.KindImage:
		// HMA's video_md5 is the MD5 of the file's bytes
		// (VideoMD5Signal in python-threatexchange).
		out[SignalVideoMD5] = hex.EncodeToString(d.MD5[:])
	}
	writeJSON(w, http.StatusOK, out)
	return outcome
}

// tooLarge is the answer to a body over MaxBodyBytes.
func (h *Handler) tooLarge() *requestError {
	return &requestError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("request body exceeds %d bytes", h.maxBody)}
}

// bodyError turns an error met while reading and spooling the body into
// the answer: HMA's words for its own refusals, 413 past the size bound,
// 408 for a client that stalled, 503 when the spool disk cannot take it,
// and 400 for a body that is not well-formed multipart or was cut off.
func (h *Handler) bodyError(err error) *requestError {
	var re *requestError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &re):
		return re
	case errors.As(err, &mbe), errors.Is(err, mediaproxy.ErrTooLarge):
		return h.tooLarge()
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &requestError{status: http.StatusRequestTimeout, msg: "upload stalled", cause: err}
	case errors.Is(err, mediaproxy.ErrSpoolDisk):
		return &requestError{status: http.StatusServiceUnavailable, msg: "the upload cannot be held for hashing now: try again later", cause: err}
	}
	return &requestError{status: http.StatusBadRequest, msg: "malformed or incomplete multipart/form-data body", cause: err}
}

// refuse answers a requestError in HMA's shape, logs it (throttled) and
// names its outcome.
func (h *Handler) refuse(w http.ResponseWriter, client string, err error) string {
	var re *requestError
	if !errors.As(err, &re) {
		re = &requestError{status: http.StatusBadRequest, msg: err.Error()}
	}
	fields := []zap.Field{zap.String("client", client), zap.Int("status", re.status), zap.String("problem", re.msg)}
	if re.cause != nil {
		fields = append(fields, zap.NamedError("cause", re.cause))
	}
	if re.status == http.StatusServiceUnavailable {
		h.warn(warnUnavailable, "hma request could not be answered", fields...)
		retryAfter(w, matcher.DefaultBreakerOpenTimeout)
		writeMessage(w, re.status, re.msg)
		return OutcomeUnavailable
	}
	h.warn(warnBadRequest, "hma request rejected", fields...)
	writeMessage(w, re.status, re.msg)
	return OutcomeBadRequest
}

// uploadReadBuffer is how much of an upload body is read from the
// connection at once. multipart reads 4 KiB at a time, which on its own
// is a read call per 4 KiB; 64 KiB makes a 1 MB upload 16 reads.
const uploadReadBuffer = 64 << 10

// fullReads fills each read as far as the reader allows. A multipart part
// hands out at most its reader's 4 KiB buffer per read; spooled to disk,
// that would be a write call per 4 KiB (25,000 for a 100 MB video) where
// the spool's 32 KiB copies need one per 32 KiB. The upload's idle
// timeout still applies to every read below it.
type fullReads struct{ r io.Reader }

func (f fullReads) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k, err := f.r.Read(p[n:])
		n += k
		if err != nil {
			if err == io.EOF && n > 0 {
				return n, nil // the next read returns the EOF
			}
			return n, err
		}
	}
	return n, nil
}
