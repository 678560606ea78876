package mediaproxy

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
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
	variant := renditionOf(mediaKey, ep, r.URL)
	if j, ok := p.mem.Get(variant); ok {
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

	iw := &inspectWriter{real: w, header: make(http.Header), p: p, ep: ep, r: r, memLimit: p.cfg.MaxDownloadBuffer, limit: p.judgeWholeLimit(), mediaKey: mediaKey, variant: variant, user: p.startUser(r)}
	// Whatever ends this request (an abort panic from reverse_proxy when
	// the client or upstream goes away included), the hashing lanes and
	// buffers are released.
	defer iw.abandon()
	err := callBuffered(iw, r, next)
	if err != nil {
		if iw.mode == modeDone {
			return nil // already answered (an encoded body refused)
		}
		if iw.mode == modeBuffer {
			// Nothing reached the client yet: answer like a homeserver.
			p.log.Warn("homeserver unreachable; download failed", zap.String("endpoint", ep.Name), zap.Stringer("media", mediaKey), zap.Error(err))
			writeError(w, http.StatusBadGateway, "M_UNKNOWN", "The homeserver could not be reached")
			return nil
		}
		return err
	}
	return iw.finish()
}

// errUpstreamAborted stands for reverse_proxy's abort panic while nothing
// had been sent to the client.
var errUpstreamAborted = errors.New("the homeserver's answer broke off before it was complete")

// callBuffered runs next, turning reverse_proxy's http.ErrAbortHandler
// panic (the upstream reset mid-body) into an error while the response is
// still only buffered: the client can then get a clean 502 instead of a
// dropped connection. Once bytes went out, the panic must stand, since
// cutting the connection is the only way to say the body is incomplete.
func callBuffered(iw *inspectWriter, r *http.Request, next Next) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler && iw.mode == modeBuffer {
				err = errUpstreamAborted
				return
			}
			if v == http.ErrAbortHandler && iw.mode == modeDone {
				// The proxy gave up on a body we refused to take
				// (already answered: unspoolable, too big an image).
				err = errUnspoolable
				return
			}
			panic(v)
		}
	}()
	return next(iw, r)
}

// judgeOriginal makes sure the original of a thumbnail request has been
// judged, fetching it through next (with the request's own credentials)
// when it has not. It reports whether the media is blocked, and ok=false
// when the original could not be judged (not found, homeserver error), in
// which case the thumbnail is not served either.
func (p *Proxy) judgeOriginal(r *http.Request, ep Endpoint, mediaKey MediaKey, next Next) (blocked, ok bool, refusal *discardWriter) {
	orig := mediaKey.Original()
	if j, known := p.mem.Get(orig); known {
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

type inspectMode int

const (
	modeBuffer inspectMode = iota
	modePass               // not a full 200 body: untouched
	modeStream             // over the buffer bound: streamed while hashing
	modeDone
)

// inspectWriter holds the upstream's response until it is judged. It keeps
// its own header map: on a block none of the upstream's headers
// (Content-Length, ETag, Content-Type) may reach the client.
type inspectWriter struct {
	real   http.ResponseWriter
	header http.Header
	p      *Proxy
	ep     Endpoint
	r      *http.Request
	// memLimit is how much of the body may be held in memory; limit is
	// how much is judged whole before the first byte goes out (beyond
	// memLimit, from a spool file).
	memLimit int64
	limit    int64
	mediaKey MediaKey
	variant  Rendition

	mode        inspectMode
	status      int
	wroteHeader bool
	buf         bytes.Buffer
	start       time.Time
	// pooled is buf's storage when it came from bodyBuffers.
	pooled []byte

	// streaming state
	digester *hashing.Digester
	tail     []byte
	mp       *multipartHasher
	user     func(wait bool) string
	// reserved is this response's share of the proxy's buffer budget.
	reserved int64
	// file holds the body instead of buf when the memory budget is spent:
	// it is still judged whole, PDQ included, from disk. digester hashes
	// it as it is written, so it is not read back for the digests.
	file     spoolFile
	fileSize int64
	// spillErr is why the last spill failed.
	spillErr error
}

func (iw *inspectWriter) Header() http.Header { return iw.header }

// encoded reports a Content-Encoding other than identity: bytes we cannot
// hash as the media they carry.
func (iw *inspectWriter) encoded() bool {
	ce := strings.TrimSpace(strings.ToLower(iw.header.Get("Content-Encoding")))
	return ce != "" && ce != "identity"
}

func (iw *inspectWriter) WriteHeader(code int) {
	if iw.wroteHeader || code < 200 {
		if code >= 100 && code < 200 && !iw.wroteHeader {
			iw.real.WriteHeader(code) // 1xx informational: harmless
		}
		return
	}
	iw.wroteHeader = true
	iw.status = code
	iw.start = time.Now()
	if code != http.StatusOK {
		iw.mode = modePass
		iw.sendHeader(code)
		return
	}
	// Size the buffer once from the declared length, taking it from the
	// budget whole: growing by doubling would hold up to twice the body
	// and churn the garbage collector.
	n, err := strconv.ParseInt(iw.header.Get("Content-Length"), 10, 64)
	if err == nil && n > iw.memLimit && n <= iw.limit {
		// Too big for memory, not too big to judge whole: straight to disk.
		iw.spill()
		return
	}
	if err == nil && n > 0 && n <= iw.memLimit {
		// The budget is charged for the whole recycled buffer, which
		// can be up to a quarter larger than the body.
		charge := n
		if _, size := bodyClass(int(n)); size > 0 {
			charge = int64(size)
		}
		if iw.p.reserve(charge) {
			iw.reserved += charge
			iw.pooled = getBody(int(n))
			iw.buf = *bytes.NewBuffer(iw.pooled)
		} else {
			iw.spill()
		}
	}
}

func (iw *inspectWriter) sendHeader(code int) {
	h := iw.real.Header()
	for k, v := range iw.header {
		h[k] = v
	}
	iw.real.WriteHeader(code)
}

func (iw *inspectWriter) Write(b []byte) (int, error) {
	if !iw.wroteHeader {
		iw.WriteHeader(http.StatusOK)
	}
	switch iw.mode {
	case modePass:
		return iw.real.Write(b)
	case modeBuffer:
		if iw.file != nil {
			if iw.fileSize+int64(len(b)) <= iw.limit {
				n, err := iw.file.Write(b)
				if err == nil {
					iw.digester.Write(b)
					iw.fileSize += int64(n)
					iw.p.spooled(int64(n))
					return n, nil
				}
				return 0, iw.refuseUnspoolable(err)
			}
		} else if need := int64(iw.buf.Len() + len(b)); need <= iw.limit {
			if need <= iw.memLimit {
				if extra := need - iw.reserved; extra <= 0 || iw.p.reserve(extra) {
					iw.reserved += max(extra, 0)
					return iw.buf.Write(b)
				}
			}
			if iw.spill() {
				return iw.Write(b)
			}
			// Nothing sent yet, and a body this size must be judged whole:
			// streaming it with exact hashes only would let a padded
			// listed picture out.
			return 0, iw.refuseUnspoolable(iw.spillErr)
		}
		if iw.tooBigImage(b) {
			return 0, errTooBigImage
		}
		if err := iw.startStreaming(); err != nil {
			return 0, err
		}
		fallthrough
	case modeStream:
		return iw.streamWrite(b)
	}
	return 0, errors.New("mediaproxy: write after response was decided")
}

// FlushError suppresses flushes while buffering: a flush would send the
// status line before the verdict.
func (iw *inspectWriter) FlushError() error {
	if iw.mode == modePass || iw.mode == modeStream {
		return http.NewResponseController(iw.real).Flush()
	}
	return nil
}

// Unwrap is deliberately absent: everything must go through Write.

func (iw *inspectWriter) startStreaming() error {
	if iw.encoded() {
		// Nothing sent yet: refuse rather than pass bytes we cannot judge.
		iw.mode = modeDone
		iw.p.log.Warn("homeserver sent an encoded body despite Accept-Encoding: identity; refused", zap.Stringer("media", iw.mediaKey))
		writeError(iw.real, http.StatusBadGateway, "M_UNKNOWN", "The homeserver's answer could not be inspected")
		return errEncoded
	}
	iw.mode = modeStream
	iw.p.log.Debug("download larger than the buffer; streaming while hashing", zap.Stringer("media", iw.mediaKey))
	iw.sendHeader(http.StatusOK)
	if iw.file != nil {
		src := io.NewSectionReader(iw.file, 0, iw.fileSize)
		if boundary := federationBoundary(iw.ep, iw.header); boundary != "" {
			// The file's digests are the multipart body's: hash the
			// media part as it goes out instead.
			iw.digester.Close()
			iw.digester = nil
			iw.mp = newMultipartHasher(boundary)
			_, err := io.Copy(streamWriter{iw}, src)
			iw.closeFile()
			return err
		}
		// Already hashed as it was spooled: only send it on.
		_, err := io.Copy(sendWriter{iw}, src)
		iw.closeFile()
		return err
	}
	if boundary := federationBoundary(iw.ep, iw.header); boundary != "" {
		iw.mp = newMultipartHasher(boundary)
	} else {
		iw.digester = hashing.NewDigester()
	}
	_, err := iw.streamWrite(iw.buf.Bytes())
	iw.dropBuf()
	iw.unreserve()
	return err
}

type sendWriter struct{ iw *inspectWriter }

type streamWriter struct{ iw *inspectWriter }

func (s streamWriter) Write(b []byte) (int, error) { return s.iw.streamWrite(b) }

func (s sendWriter) Write(b []byte) (int, error) { return s.iw.send(b) }

// spill moves the body to a spool file when the memory budget is spent,
// so that it is still judged whole (PDQ included) rather than streamed
// with exact hashes only. Federation bodies are multipart and are parsed
// in memory, so they stream instead. It reports whether the body is now
// on disk.
func (iw *inspectWriter) spill() bool {
	if iw.file != nil {
		return true
	}
	f, err := createSpoolFile(iw.p.cfg.TempDir)
	if err != nil {
		iw.spillErr = err
		return false
	}
	n, err := f.Write(iw.buf.Bytes())
	iw.file, iw.fileSize = f, int64(n)
	iw.p.spooled(int64(n))
	if err != nil {
		iw.closeFile()
		return false
	}
	iw.digester = hashing.NewDigester()
	iw.digester.Write(iw.buf.Bytes())
	iw.dropBuf()
	iw.unreserve()
	return true
}

func (iw *inspectWriter) closeFile() {
	if iw.file == nil {
		return
	}
	name := iw.file.Name()
	iw.file.Close()
	os.Remove(name)
	iw.p.spooled(-iw.fileSize)
	iw.file, iw.fileSize = nil, 0
}

// streamWrite hashes b and sends all but the last streamTail bytes.
func (iw *inspectWriter) streamWrite(b []byte) (int, error) {
	if iw.mp != nil {
		iw.mp.Write(b)
	} else {
		iw.digester.Write(b)
	}
	return iw.send(b)
}

// send passes b on, holding back the last streamTail bytes.
func (iw *inspectWriter) send(b []byte) (int, error) {
	iw.tail = append(iw.tail, b...)
	if over := len(iw.tail) - streamTail; over > 0 {
		if _, err := iw.real.Write(iw.tail[:over]); err != nil {
			return 0, err
		}
		iw.tail = append(iw.tail[:0], iw.tail[over:]...)
	}
	return len(b), nil
}

// abandon releases the hashing lanes and buffers. It is safe after finish
// and safe twice.
func (iw *inspectWriter) abandon() {
	if iw.digester != nil {
		iw.digester.Close()
	}
	if iw.mp != nil {
		iw.mp.Close()
	}
	iw.tail = nil
	iw.dropBuf()
	iw.unreserve()
	iw.closeFile()
}

// dropBuf empties buf and recycles its storage: every use of the bytes
// (sending, hashing, spooling) copies or finishes before it is called.
func (iw *inspectWriter) dropBuf() {
	iw.buf = bytes.Buffer{}
	if iw.pooled != nil {
		putBody(iw.pooled)
		iw.pooled = nil
	}
}

func (iw *inspectWriter) unreserve() {
	if iw.reserved > 0 {
		iw.p.buffered.Add(-iw.reserved)
		iw.reserved = 0
	}
}

var errEncoded = errors.New("mediaproxy: encoded upstream body refused")

// errTooBigImage: an image larger than anything judged whole was refused.
var errTooBigImage = errors.New("mediaproxy: image too large to judge refused")

// tooBigImage handles a body larger than the judge-whole limit that is an
// image by its first bytes: streaming it with exact hashes only would let
// a padded listed picture out, so it gets the undecodable-image policy
// (refused by default). It reports whether the response was answered.
// Such bodies exist only where the homeserver accepts larger uploads than
// mediaguard's max_upload_size, or as remote media.
func (iw *inspectWriter) tooBigImage(next []byte) bool {
	head := iw.buf.Bytes()
	if iw.file != nil {
		h := make([]byte, 4096)
		n, _ := iw.file.ReadAt(h, 0)
		head = h[:n]
	}
	if len(head) == 0 {
		head = next
	}
	format, weak := imageByBytes(bytes.NewReader(head))
	if format == "" || weak || iw.p.cfg.OnUndecodableImage != UndecodableBlock {
		return false
	}
	iw.p.observe(&Decision{Request: iw.r, Endpoint: iw.ep, MediaKey: iw.mediaKey, Outcome: Undecodable, User: iw.user(true),
		UnscannableReason: format + " image larger than max_upload_size: too large to judge whole"})
	iw.mode = modeDone
	writeError(iw.real, http.StatusNotFound, "M_NOT_FOUND", "Not found")
	return true
}

// errUnspoolable: a download that had to be judged from disk could not be
// spooled; it was refused with 503.
var errUnspoolable = errors.New("mediaproxy: download could not be spooled to be judged")

// refuseUnspoolable answers 503 for a body that must be judged whole but
// cannot be put on disk (full, or a tmp cleaner removed the spool
// directory, which is made again for the next request).
func (iw *inspectWriter) refuseUnspoolable(err error) error {
	iw.mode = modeDone
	iw.p.log.Error("cannot spool download to disk to judge it; refused", zap.Stringer("media", iw.mediaKey), zap.Error(err))
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := PrivateSpoolDir(iw.p.spoolParent); err != nil {
			iw.p.log.Error("cannot recreate the spool directory", zap.Error(err))
		}
	}
	writeError(iw.real, http.StatusServiceUnavailable, "M_UNKNOWN", "Media scanning is temporarily unavailable")
	return errUnspoolable
}

func (iw *inspectWriter) finish() error {
	p := iw.p
	switch iw.mode {
	case modePass:
		return nil
	case modeStream:
		var dg hashing.Digests
		var ok bool
		if iw.mp != nil {
			dg, ok = iw.mp.Sum()
		} else {
			dg, ok = iw.digester.Sum(), true
		}
		d := &Decision{Request: iw.r, Endpoint: iw.ep, MediaKey: iw.mediaKey, Digests: dg, HashTime: time.Since(iw.start)}
		if !ok {
			// A redirect part, or a body we could not parse: nothing hashed.
			d.Outcome, d.UnscannableReason = Unscannable, "federation body without hashable media"
			p.observe(d)
			_, err := iw.real.Write(iw.tail)
			return err
		}
		sc := p.scanExactOnly(dg, iw.contentType())
		v, err := p.match(iw.r.Context(), d, sc)
		o, reason, gone := p.outcomeOf(iw.r.Context(), v, err, sc, true)
		d.Outcome, d.UnscannableReason = o, reason
		switch {
		case gone:
			// The client left: what went out went out.
			d.Outcome, d.Err = Unscanned, err
		case o == Refused:
			// Fail closed: the bytes went out, but not the held-back
			// tail, so the client is left without a complete file.
			d.Err, d.User = err, iw.user(true)
			p.observe(d)
			panic(http.ErrAbortHandler)
		case o == LateBlocked:
			d.User = iw.user(true)
			p.mem.Block(iw.mediaKey, v.Reason)
			p.observe(d)
			p.log.Warn("late match on a streamed download; aborting the connection", zap.Stringer("media", iw.mediaKey), zap.String("bank", v.Bank))
			// Headers are gone; only an abort keeps the held-back tail
			// (and so a complete file) from the client.
			panic(http.ErrAbortHandler)
		}
		p.observe(d)
		_, werr := iw.real.Write(iw.tail)
		return werr
	case modeBuffer:
		if !iw.wroteHeader {
			iw.WriteHeader(http.StatusOK)
			if iw.mode != modeBuffer {
				return nil
			}
		}
	}
	iw.mode = modeDone
	if iw.encoded() {
		p.log.Warn("homeserver sent an encoded body despite Accept-Encoding: identity; refused", zap.Stringer("media", iw.mediaKey))
		writeError(iw.real, http.StatusBadGateway, "M_UNKNOWN", "The homeserver's answer could not be inspected")
		return nil
	}
	if iw.file != nil && federationBoundary(iw.ep, iw.header) != "" {
		return iw.judgeFederationFile()
	}
	if iw.file != nil {
		return iw.judge(io.NewSectionReader(iw.file, 0, iw.fileSize), iw.contentType(), iw.digester.Sum(), func() error {
			iw.sendHeader(iw.status)
			_, err := io.Copy(iw.real, io.NewSectionReader(iw.file, 0, iw.fileSize))
			return err
		})
	}
	body := iw.buf.Bytes()
	ct := iw.contentType()
	media := body
	if boundary := federationBoundary(iw.ep, iw.header); boundary != "" {
		part, partCT, redirect, err := federationMedia(body, boundary)
		if redirect || err != nil {
			d := &Decision{Request: iw.r, Endpoint: iw.ep, MediaKey: iw.mediaKey, Outcome: Unscannable, UnscannableReason: "federation redirect or unparsable multipart"}
			if err != nil {
				p.log.Info("federation media body not parsable; passed unscanned", zap.Stringer("media", iw.mediaKey), zap.Error(err))
			}
			p.observe(d)
			return iw.release(body)
		}
		media, ct = part, partCT
	}
	return iw.judge(newMemBody(media), ct, digestBytes(media), func() error { return iw.release(body) })
}

// judgeFederationFile decides a spooled federation body: its media part is
// copied to a second spool file (digested on the way) and judged whole
// from there, like any large download.
func (iw *inspectWriter) judgeFederationFile() error {
	p := iw.p
	release := func() error {
		iw.sendHeader(iw.status)
		_, err := io.Copy(iw.real, io.NewSectionReader(iw.file, 0, iw.fileSize))
		return err
	}
	mr := multipart.NewReader(io.NewSectionReader(iw.file, 0, iw.fileSize), federationBoundary(iw.ep, iw.header))
	_, err := mr.NextPart()
	var part *multipart.Part
	if err == nil {
		part, err = mr.NextPart()
	}
	if err != nil || part.Header.Get("Location") != "" {
		d := &Decision{Request: iw.r, Endpoint: iw.ep, MediaKey: iw.mediaKey, Outcome: Unscannable, UnscannableReason: "federation redirect or unparsable multipart"}
		p.observe(d)
		return release()
	}
	media, err := createSpoolFile(p.cfg.TempDir)
	if err != nil {
		p.log.Warn("cannot spool a federation media part; refused", zap.Stringer("media", iw.mediaKey), zap.Error(err))
		writeError(iw.real, http.StatusServiceUnavailable, "M_UNKNOWN", "Media scanning is temporarily unavailable")
		return nil
	}
	defer func() {
		name := media.Name()
		media.Close()
		os.Remove(name)
	}()
	dg := hashing.NewDigester()
	n, err := io.Copy(io.MultiWriter(media, dg), part)
	p.spooled(n)
	defer p.spooled(-n)
	if err != nil {
		dg.Close()
		p.log.Warn("cannot spool a federation media part; refused", zap.Stringer("media", iw.mediaKey), zap.Error(err))
		writeError(iw.real, http.StatusServiceUnavailable, "M_UNKNOWN", "Media scanning is temporarily unavailable")
		return nil
	}
	return iw.judge(io.NewSectionReader(media, 0, n), part.Header.Get("Content-Type"), dg.Sum(), release)
}

// judge decides a whole buffered body (media is what gets hashed: the
// body, or a federation response's media part) and answers: an error, or
// release() to send the body.
func (iw *inspectWriter) judge(media io.ReadSeeker, ct string, dg hashing.Digests, release func() error) error {
	p := iw.p
	gen := p.mem.Generation()
	sc := p.scan(iw.r.Context(), media, ct, dg)
	d := &Decision{Request: iw.r, Endpoint: iw.ep, MediaKey: iw.mediaKey, Digests: dg, PDQ: sc.pdq, UnscannableReason: sc.unscannable, HashTime: time.Since(iw.start)}
	v, err := p.match(iw.r.Context(), d, sc)
	o, reason, gone := p.outcomeOf(iw.r.Context(), v, err, sc, false)
	if gone {
		return nil
	}
	d.Outcome, d.UnscannableReason = o, reason
	switch o {
	case Refused:
		d.Err, d.User = err, iw.user(true)
		p.observe(d)
		writeError(iw.real, http.StatusServiceUnavailable, "M_UNKNOWN", "Media scanning is temporarily unavailable")
		return nil
	case Blocked:
		d.User = iw.user(true)
		p.mem.Block(iw.mediaKey, v.Reason)
		p.observe(d)
		writeError(iw.real, http.StatusNotFound, "M_NOT_FOUND", "Not found")
		return nil
	case Undecodable:
		// Not remembered as blocked: a better decoder after an upgrade
		// must get to judge it again.
		d.User = iw.user(true)
		p.observe(d)
		writeError(iw.real, http.StatusNotFound, "M_NOT_FOUND", "Not found")
		return nil
	}
	p.observe(d)
	if d.Outcome == Clean || d.Outcome == Unscannable {
		// Unscannable media (an encrypted attachment, most media in
		// encrypted rooms) had every check that can ever apply to its
		// bytes: hashing it again on each download would find the same.
		p.mem.CleanAsOf(iw.variant, gen)
	}
	return release()
}

func (iw *inspectWriter) release(body []byte) error {
	iw.sendHeader(iw.status)
	_, err := iw.real.Write(body)
	return err
}

func (iw *inspectWriter) contentType() string {
	return iw.header.Get("Content-Type")
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

func digestBytes(b []byte) hashing.Digests {
	d := hashing.NewDigester()
	d.Write(b)
	return d.Sum()
}

// federationBoundary returns the multipart boundary of a federation media
// response (which wraps the bytes in multipart/mixed), or "".
func federationBoundary(ep Endpoint, h http.Header) string {
	if ep.Family != FamilyFederation {
		return ""
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") {
		return ""
	}
	return params["boundary"]
}

// federationMedia extracts the second part of a federation media body: the
// first is JSON metadata, the second the bytes or a Location redirect.
func federationMedia(body []byte, boundary string) (media []byte, contentType string, redirect bool, err error) {
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	if _, err := mr.NextPart(); err != nil {
		return nil, "", false, err
	}
	part, err := mr.NextPart()
	if err != nil {
		return nil, "", false, err
	}
	if part.Header.Get("Location") != "" {
		return nil, "", true, nil
	}
	media, err = io.ReadAll(part)
	return media, part.Header.Get("Content-Type"), false, err
}
