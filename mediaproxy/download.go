package mediaproxy

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/hashing"
	"github.com/mediaguard/mediaguard/matcher"
)

// serveDownload decides a download before the first byte reaches the
// client: from memory when the media ID was judged before, otherwise by
// buffering (bounded) and hashing the upstream's answer.
func (p *Proxy) serveDownload(w http.ResponseWriter, r *http.Request, ep Endpoint, next Next) error {
	server := ep.Server
	if ep.Family == FamilyFederation {
		server = p.localServer()
	}
	mediaKey := MediaKey{Server: server, ID: ep.MediaID}
	rendition := renditionOf(mediaKey, ep, r.URL)
	if j, ok := p.recall(r.Context(), rendition); ok {
		if j.Blocked {
			p.observe(&Decision{Request: r, Endpoint: ep, MediaKey: mediaKey, Outcome: KnownBlocked, User: p.startUser(r)(true)})
			writeError(w, http.StatusNotFound, "M_NOT_FOUND", "Not found")
			return nil
		}
		p.observe(&Decision{Request: r, Endpoint: ep, MediaKey: mediaKey, Outcome: KnownClean})
		return next(w, r)
	}
	if ep.Thumbnail {
		// A thumbnail is a small rendition that PDQ may fail to tie to
		// its listed original (crops, tiny sizes): it is served only once
		// the original itself has been judged.
		blocked, ok, refusal := p.judgeOriginal(r, ep, mediaKey, next)
		switch {
		case blocked:
			p.observe(&Decision{Request: r, Endpoint: ep, MediaKey: mediaKey, Outcome: KnownBlocked, User: p.startUser(r)(true)})
			writeError(w, http.StatusNotFound, "M_NOT_FOUND", "Not found")
			return nil
		case !ok && refusal != nil:
			// The homeserver's own refusal (401, 403, 429, ...) of the
			// original is its answer for the thumbnail too.
			refusal.replay(w)
			return nil
		case !ok:
			writeError(w, http.StatusNotFound, "M_NOT_FOUND", "Not found")
			return nil
		}
	}
	if r.Method != http.MethodGet {
		return next(w, r) // HEAD carries no body to hash
	}
	// A range request for unknown media would let a client assemble the
	// file piecewise without it ever being hashed whole; ask for all of
	// it (a server may always ignore Range) and judge it first.
	r.Header.Del("Range")
	r.Header.Del("If-Range")
	// A compressed answer hashes as its compressed bytes and matches
	// nothing; ask for the media as stored.
	r.Header.Set("Accept-Encoding", "identity")

	u := fetch(r, next)
	defer u.close()
	h := u.head()
	switch {
	case h.err != nil:
		// Nothing reached the client yet: answer like a homeserver.
		p.log.Warn("homeserver unreachable; download failed", zap.String("endpoint", ep.Name), zap.Stringer("media", mediaKey), zap.Error(h.err))
		writeError(w, http.StatusBadGateway, "M_UNKNOWN", "The homeserver could not be reached")
		return nil
	case h.status != http.StatusOK:
		// Not the media (an error, 304 Not Modified): passed as it is.
		return pass(w, h, u.body)
	case encoded(h.header):
		p.log.Warn("homeserver sent an encoded body despite Accept-Encoding: identity; refused", zap.Stringer("media", mediaKey))
		writeError(w, http.StatusBadGateway, "M_UNKNOWN", "The homeserver's answer could not be inspected")
		return nil
	}
	dl := &download{p: p, w: w, r: r, ep: ep, key: mediaKey, rendition: rendition, head: h, user: p.startUser(r), start: time.Now()}
	return dl.serve(u.body)
}

// judgeOriginal makes sure the original of a thumbnail request has been
// judged, fetching it through next (with the request's own credentials)
// when it has not. It reports whether the media is blocked, and ok=false
// when the original could not be judged (not found, homeserver error), in
// which case the thumbnail is not served either.
func (p *Proxy) judgeOriginal(r *http.Request, ep Endpoint, mediaKey MediaKey, next Next) (blocked, ok bool, refusal *discardWriter) {
	orig := mediaKey.Original()
	if j, known := p.recall(r.Context(), orig); known {
		return j.Blocked, true, nil
	}
	or := r.Clone(r.Context())
	or.Method = http.MethodGet
	or.Body, or.ContentLength = http.NoBody, 0
	or.URL.Path = strings.Replace(r.URL.Path, "/thumbnail/", "/download/", 1)
	if r.URL.RawPath != "" {
		or.URL.RawPath = strings.Replace(r.URL.RawPath, "/thumbnail/", "/download/", 1)
	}
	or.URL.RawQuery = ""
	or.RequestURI = or.URL.RequestURI()
	for _, h := range []string{"Range", "If-Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since"} {
		or.Header.Del(h)
	}
	oep := ep
	oep.Thumbnail, oep.Method = false, http.MethodGet
	oep.Name = string(ep.Family) + "_download"
	dw := &discardWriter{header: make(http.Header)}
	if err := p.serveDownload(dw, or, oep, next); err != nil {
		p.log.Info("original of a thumbnail could not be fetched; thumbnail refused", zap.Stringer("media", mediaKey), zap.Error(err))
		return false, false, nil
	}
	if j, known := p.mem.Get(orig); known {
		return j.Blocked, true, nil
	}
	if dw.status >= 400 && dw.status != http.StatusNotFound {
		return false, false, dw
	}
	// Judged but not remembered (allowed unscanned under fail-open, or
	// too large to judge before streaming): the thumbnail is judged on
	// its own, as the original was let through.
	return false, dw.status == http.StatusOK, nil
}

// discardWriter receives an original fetched only to be judged; of an
// error answer it keeps the start, to be replayed for the thumbnail.
type discardWriter struct {
	header http.Header
	status int
	body   []byte
}

// replay sends the kept error answer.
func (d *discardWriter) replay(w http.ResponseWriter) {
	h := w.Header()
	for _, k := range []string{"Content-Type", "Retry-After", "WWW-Authenticate"} {
		if v := d.header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	setCORS(h)
	h.Set("Content-Length", strconv.Itoa(len(d.body)))
	w.WriteHeader(d.status)
	w.Write(d.body)
}

func (d *discardWriter) Header() http.Header { return d.header }
func (d *discardWriter) WriteHeader(code int) {
	if d.status == 0 && code >= 200 {
		d.status = code
	}
}
func (d *discardWriter) Write(b []byte) (int, error) {
	if d.status == 0 {
		d.status = http.StatusOK
	}
	if d.status >= 400 && len(d.body) < 64<<10 {
		d.body = append(d.body, b[:min(len(b), 64<<10-len(d.body))]...)
	}
	return len(b), nil
}

// judgeWholeLimit is the largest download judged whole before its first
// byte: anything that could have been uploaded through the proxy (and
// never less than the memory buffer). Streaming with a held-back tail only
// protects against a complete exact copy; a picture followed by padding
// would be complete on the client long before the tail.
func (p *Proxy) judgeWholeLimit() int64 {
	return max(p.cfg.MaxDownloadBuffer, p.cfg.MaxUploadSize)
}

// pass sends an answer that is not the media on as it is. A body that
// breaks off is cut off for the client too.
func pass(w http.ResponseWriter, h head, body io.Reader) error {
	sendHead(w, h)
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	if _, err := io.CopyBuffer(w, body, *buf); err != nil {
		panic(http.ErrAbortHandler)
	}
	return nil
}

// sendHead writes the upstream's status line and header.
func sendHead(w http.ResponseWriter, h head) {
	dst := w.Header()
	for k, v := range h.header {
		dst[k] = v
	}
	w.WriteHeader(h.status)
}

// encoded reports a Content-Encoding other than identity: bytes we cannot
// hash as the media they carry.
func encoded(h http.Header) bool {
	ce := strings.TrimSpace(strings.ToLower(h.Get("Content-Encoding")))
	return ce != "" && ce != "identity"
}

// download is one 200 answer being judged.
type download struct {
	p         *Proxy
	w         http.ResponseWriter
	r         *http.Request
	ep        Endpoint
	key       MediaKey
	rendition Rendition
	head      head
	user      func(wait bool) string
	start     time.Time
}

// serve spools the body up to the judge-whole limit and judges it whole;
// a larger one is streamed while its exact digests are computed.
func (d *download) serve(body io.Reader) error {
	p := d.p
	limit := p.judgeWholeLimit()
	boundary := federationBoundary(d.ep, d.head.header)
	declared, err := strconv.ParseInt(d.head.header.Get("Content-Length"), 10, 64)
	if err != nil {
		declared = -1
	}
	sp := newSpool(spoolOptions{memoryLimit: p.cfg.MaxDownloadBuffer, maxSize: limit + 1, tempDir: p.cfg.TempDir,
		declared: declared, budget: p, recycle: true, noDigest: boundary != "", onDisk: p.cfg.OnSpool})
	defer sp.Close()
	_, err = sp.ReadFrom(io.LimitReader(body, limit+1))
	switch {
	case errors.Is(err, ErrSpoolDisk):
		// Nothing sent yet, and a body this size must be judged whole:
		// streaming it with exact hashes only would let a padded listed
		// picture out.
		p.log.Error("cannot spool download to disk to judge it; refused", zap.Stringer("media", d.key), zap.Error(err))
		p.recreateSpoolDir(err)
		writeError(d.w, http.StatusServiceUnavailable, "M_UNKNOWN", "Media scanning is temporarily unavailable")
		return nil
	case err != nil:
		p.log.Warn("homeserver unreachable; download failed", zap.String("endpoint", d.ep.Name), zap.Stringer("media", d.key), zap.Error(err))
		writeError(d.w, http.StatusBadGateway, "M_UNKNOWN", "The homeserver could not be reached")
		return nil
	case sp.Size() > limit:
		return d.stream(sp, body, boundary)
	case boundary != "":
		return d.judgeFederation(sp, boundary)
	}
	return d.judge(sp.Reader(), d.head.header.Get("Content-Type"), sp.Digests(), func() error { return d.release(sp) })
}

// judge decides a whole body (media is what gets hashed: the body, or a
// federation answer's media part) and answers: an error, or release() to
// send the body.
func (d *download) judge(media io.ReadSeeker, ct string, dg hashing.Digests, release func() error) error {
	p := d.p
	gen := p.mem.Generation()
	sc := p.scan(d.r.Context(), media, ct, dg)
	dec := &Decision{Request: d.r, Endpoint: d.ep, MediaKey: d.key, Digests: dg, PDQ: sc.pdq, Query: &sc.query, Format: sc.format, Generation: gen, UnscannableReason: sc.unscannable, HashTime: time.Since(d.start)}
	v, err := p.match(d.r.Context(), dec, sc)
	o, reason, gone := p.outcomeOf(d.r.Context(), v, err, sc, false)
	if gone {
		return nil
	}
	dec.Outcome, dec.UnscannableReason = o, reason
	switch o {
	case Refused:
		dec.Err, dec.User = err, d.user(true)
		p.observe(dec)
		writeError(d.w, http.StatusServiceUnavailable, "M_UNKNOWN", "Media scanning is temporarily unavailable")
		return nil
	case Blocked:
		dec.User = d.user(true)
		p.mem.Block(d.key, v.Reason)
		p.observe(dec)
		writeError(d.w, http.StatusNotFound, "M_NOT_FOUND", "Not found")
		return nil
	case Undecodable:
		// Not remembered as blocked: a better decoder after an upgrade
		// must get to judge it again.
		dec.User = d.user(true)
		p.observe(dec)
		writeError(d.w, http.StatusNotFound, "M_NOT_FOUND", "Not found")
		return nil
	case Held:
		// Remembered, so the review is requested once, not on every
		// download; a dismissal unblocks it (Memory.Unblock).
		dec.User = d.user(true)
		p.mem.Block(d.key, "held for review: "+v.Reason)
		p.observe(dec)
		writeError(d.w, http.StatusNotFound, "M_NOT_FOUND", "Not found")
		return nil
	}
	if o == WouldBlock || o == Review {
		// Reported like a block: moderators want to know who.
		dec.User = d.user(true)
	}
	p.observe(dec)
	if o == Clean || o == Unscannable || (o == WouldBlock || o == Review) && !v.Unscanned {
		// A would-block is remembered too, so that it is reported once,
		// not on every download; a change of mode is a new configuration,
		// whose banks start a new generation. Not one a remote could not
		// be asked about (fail-open): an enforcing list there may hold it.
		//
		// Unscannable media (an encrypted attachment, most media in
		// encrypted rooms) had every check that can ever apply to its
		// bytes: hashing it again on each download would find the same.
		p.mem.CleanAsOf(d.rendition, gen)
	}
	return release()
}

// release sends the judged body.
func (d *download) release(sp *spool) error {
	sendHead(d.w, d.head)
	if b := sp.Bytes(); b != nil {
		_, err := d.w.Write(b)
		return err
	}
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	_, err := io.CopyBuffer(d.w, sp.Reader(), *buf)
	return err
}

// recreateSpoolDir makes the private spool directory again when a tmp
// cleaner removed it, so that the next body can be spooled.
func (p *Proxy) recreateSpoolDir(err error) {
	if !errors.Is(err, fs.ErrNotExist) {
		return
	}
	if _, err := PrivateSpoolDir(p.spoolParent); err != nil {
		p.log.Error("cannot recreate the spool directory", zap.Error(err))
	}
}

// scanExactOnly is the query for a streamed body: too large to hold for a
// perceptual hash, so exact digests only.
func (p *Proxy) scanExactOnly(dg hashing.Digests, contentType string) scanned {
	s := scanned{query: exactQuery(dg, contentType)}
	if s.query.Kind == matcher.KindImage {
		s.unscannable = "image too large to buffer for a perceptual hash"
	}
	return s
}
