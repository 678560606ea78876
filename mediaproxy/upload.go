package mediaproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// serveUpload spools and hashes the body, decides, and either refuses it
// (nothing goes upstream) or forwards the identical bytes with an exact
// Content-Length (Synapse and Dendrite reject chunked uploads).
func (p *Proxy) serveUpload(w http.ResponseWriter, r *http.Request, ep Endpoint, next Next) error {
	if r.ContentLength > p.cfg.MaxUploadSize {
		writeError(w, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "Upload exceeds the maximum allowed size")
		return nil
	}
	user := p.startUser(r)
	start := time.Now()
	// The memory this upload holds comes out of the shared budget; with
	// none left it goes to disk.
	sp := newSpool(spoolOptions{memoryLimit: p.cfg.MemoryBuffer, maxSize: p.cfg.MaxUploadSize, tempDir: p.cfg.TempDir,
		declared: r.ContentLength, budget: p, onDisk: p.cfg.OnSpool})
	defer sp.Close()
	body := io.Reader(r.Body)
	var ir *idleReader
	if p.cfg.UploadIdleTimeout > 0 {
		ir = &idleReader{r: r.Body, rc: http.NewResponseController(w), idle: p.cfg.UploadIdleTimeout}
		body = ir
	}
	_, err := sp.ReadFrom(body)
	if ir != nil {
		ir.done(err == nil)
	}
	if err != nil {
		// The rest of the body is not worth waiting for: the connection
		// closes after the answer instead of net/http draining it.
		w.Header().Set("Connection", "close")
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			p.log.Info("upload stalled: no byte for the idle timeout; not forwarded", zap.String("endpoint", ep.Name), zap.Duration("idle_timeout", p.cfg.UploadIdleTimeout))
			writeError(w, http.StatusRequestTimeout, "M_UNKNOWN", "Upload stalled")
		case errors.Is(err, ErrTooLarge):
			writeError(w, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "Upload exceeds the maximum allowed size")
		case errors.Is(err, ErrSpoolDisk):
			p.log.Error("cannot spool upload to disk; refusing it", zap.String("endpoint", ep.Name), zap.Error(err))
			p.recreateSpoolDir(err)
			writeError(w, http.StatusServiceUnavailable, "M_UNKNOWN", "Media scanning is temporarily unavailable")
		default:
			// The client went away or sent less than it declared; there
			// is nobody to answer, and nothing was forwarded.
			p.log.Info("upload body incomplete; not forwarded", zap.String("endpoint", ep.Name), zap.Error(err))
			writeError(w, http.StatusBadRequest, "M_UNKNOWN", "Upload body incomplete")
		}
		return nil
	}

	ct := r.Header.Get("Content-Type")
	gen := p.mem.Generation()
	sc := p.scan(r.Context(), sp.Reader(), ct, sp.Digests())
	hashTime := time.Since(start)
	d := &Decision{Request: r, Endpoint: ep, Upload: true, Digests: sp.Digests(), PDQ: sc.pdq, Query: &sc.query, Format: sc.format, Generation: gen, UnscannableReason: sc.unscannable, HashTime: hashTime}
	if ep.Kind == UploadTo {
		d.MediaKey = MediaKey{Server: ep.Server, ID: ep.MediaID}
	}
	v, err := p.match(r.Context(), d, sc)
	o, reason, gone := p.outcomeOf(r.Context(), v, err, sc, false)
	if gone {
		return nil // the client left while we asked; nothing forwarded
	}
	d.Outcome, d.UnscannableReason = o, reason
	switch o {
	case Refused:
		d.Err, d.User = err, user(true)
		p.observe(d)
		p.log.Warn("matcher unavailable; upload refused (fail closed)", zap.String("endpoint", ep.Name), zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, "M_UNKNOWN", "Media scanning is temporarily unavailable")
		return nil
	case Blocked:
		// Nothing was stored, and the media ID of a PUT comes from the
		// client's path before the homeserver checked it owns that ID:
		// remembering it as blocked would let anyone blank out anyone's
		// media. Identical bytes are caught by their hashes anyway.
		d.User = user(true)
		p.observe(d)
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "This media cannot be uploaded")
		return nil
	case Undecodable:
		d.User = user(true)
		p.observe(d)
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "This media cannot be uploaded: the image could not be read")
		return nil
	case Held:
		// Nothing stored; a moderator's dismissal allowlists the bytes,
		// so the client's retry passes.
		d.User = user(true)
		p.observe(d)
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "This media is held for review by the moderators")
		return nil
	}

	// Forward the spooled bytes.
	r.Body = io.NopCloser(sp.Reader())
	r.ContentLength = sp.Size()
	r.Header.Set("Content-Length", strconv.FormatInt(sp.Size(), 10))
	r.TransferEncoding = nil
	r.Header.Del("Transfer-Encoding")
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(sp.Reader()), nil }

	cw := &captureWriter{statusWriter: statusWriter{ResponseWriter: w}}
	err = next(cw, r)
	if err != nil && cw.status == 0 {
		// The homeserver never answered (Caddy's reverse_proxy returns
		// dial and timeout errors); a Matrix client needs a Matrix error.
		p.log.Warn("homeserver unreachable; upload not stored", zap.String("endpoint", ep.Name), zap.Error(err))
		p.observe(d)
		writeError(w, http.StatusBadGateway, "M_UNKNOWN", "The homeserver could not be reached")
		return nil
	}
	d.User = user(d.Outcome != Clean)
	d.UpstreamStatus = cw.status
	if err == nil && cw.status == http.StatusOK {
		if d.MediaKey.IsZero() {
			d.MediaKey = p.mediaKeyFromUploadResponse(cw.body.Bytes())
		}
		if !d.MediaKey.IsZero() && (d.Outcome == Clean || d.Outcome == Unscannable || (d.Outcome == WouldBlock || d.Outcome == Review) && !d.Verdict.Unscanned) {
			p.mem.CleanAsOf(d.MediaKey.Original(), gen)
		}
	}
	p.observe(d)
	return err
}

// mediaKeyFromUploadResponse reads {"content_uri":"mxc://server/id"} and
// learns the homeserver's own name from it.
func (p *Proxy) mediaKeyFromUploadResponse(body []byte) MediaKey {
	var resp struct {
		ContentURI string `json:"content_uri"`
	}
	if json.Unmarshal(body, &resp) != nil {
		return MediaKey{}
	}
	rest, ok := strings.CutPrefix(resp.ContentURI, "mxc://")
	if !ok {
		return MediaKey{}
	}
	server, id, ok := strings.Cut(rest, "/")
	if !ok || !validServer(server) || !validMediaID(id) {
		return MediaKey{}
	}
	if p.localServer() == "" {
		p.serverName.CompareAndSwap(nil, &server)
	}
	return MediaKey{Server: server, ID: id}
}

// captureWriter passes the upstream's answer through untouched, noting
// its status, and keeps a copy of a small 200 body (the upload's
// content_uri).
type captureWriter struct {
	statusWriter
	body bytes.Buffer
}

const maxCapture = 4 << 10

func (c *captureWriter) Write(b []byte) (int, error) {
	if (c.status == 0 || c.status == http.StatusOK) && c.body.Len() < maxCapture {
		c.body.Write(b[:min(len(b), maxCapture-c.body.Len())])
	}
	return c.statusWriter.Write(b)
}

// idleReader moves the connection's read deadline forward before each read,
// so a client that stops sending is cut off after the idle timeout however
// long the whole upload takes.
type idleReader struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
	off  bool // the writer cannot set deadlines
}

func (ir *idleReader) Read(p []byte) (int, error) {
	if !ir.off && ir.rc.SetReadDeadline(time.Now().Add(ir.idle)) != nil {
		ir.off = true
	}
	return ir.r.Read(p)
}

// done clears the deadline after a complete body, so it cannot cut the
// connection's next request. After a failed one it expires the deadline
// instead: net/http would otherwise wait, without limit, to drain the rest
// of a stalled body before answering.
func (ir *idleReader) done(complete bool) {
	if ir.off {
		return
	}
	if complete {
		_ = ir.rc.SetReadDeadline(time.Time{})
	} else {
		_ = ir.rc.SetReadDeadline(time.Now())
	}
}
