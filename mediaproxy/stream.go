package mediaproxy

import (
	"bytes"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/hashing"
)

// stream sends a body larger than the judge-whole limit while computing
// its exact digests (of the media part, for a federation answer), holding
// back its last streamTail bytes until they are matched: on a late match
// the client is cut off without a complete file.
func (d *download) stream(sp *spool, body io.Reader, boundary string) error {
	p := d.p
	if d.tooBigImage(sp) {
		return nil
	}
	p.log.Debug("download larger than the judge-whole limit; streaming while hashing", zap.Stringer("media", d.key))
	var h streamHasher
	if boundary != "" {
		h = newMultipartHasher(boundary)
	} else {
		h = digesterHasher{sp.takeDigester()}
	}
	defer h.Close()
	sendHead(d.w, d.head)
	out := &tailWriter{w: d.w}
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	// What was spooled is digested already, but for a federation body,
	// whose media part is only now parsed out.
	spooled := io.Writer(out)
	if boundary != "" {
		spooled = io.MultiWriter(h, out)
	}
	if _, err := io.CopyBuffer(spooled, sp.Reader(), *buf); err != nil {
		panic(http.ErrAbortHandler) // the client went away
	}
	sp.Close()
	if _, err := io.CopyBuffer(io.MultiWriter(h, out), body, *buf); err != nil {
		// The homeserver broke off, or the client went away: the
		// client must not take a short body for the whole file.
		panic(http.ErrAbortHandler)
	}

	dg, ok := h.Sum()
	dec := &Decision{Request: d.r, Endpoint: d.ep, MediaKey: d.key, Digests: dg, HashTime: time.Since(d.start)}
	if !ok {
		// A redirect part, or a body we could not parse: nothing hashed.
		dec.Outcome, dec.UnscannableReason = Unscannable, "federation body without hashable media"
		p.observe(dec)
		return out.flush()
	}
	sc := p.scanExactOnly(dg, d.head.header.Get("Content-Type"))
	v, err := p.match(d.r.Context(), dec, sc)
	o, reason, gone := p.outcomeOf(d.r.Context(), v, err, sc, true)
	dec.Outcome, dec.UnscannableReason = o, reason
	switch {
	case gone:
		// The client left: what went out went out.
		dec.Outcome, dec.Err = Unscanned, err
	case o == Refused:
		// Fail closed: the bytes went out, but not the held-back tail,
		// so the client is left without a complete file.
		dec.Err, dec.User = err, d.user(true)
		p.observe(dec)
		panic(http.ErrAbortHandler)
	case o == LateBlocked:
		dec.User = d.user(true)
		p.mem.Block(d.key, v.Reason)
		p.observe(dec)
		p.log.Warn("late match on a streamed download; aborting the connection", zap.Stringer("media", d.key), zap.String("bank", v.Bank))
		// The header is gone; only an abort keeps the held-back tail
		// (and so a complete file) from the client.
		panic(http.ErrAbortHandler)
	case o == WouldBlock:
		dec.User = d.user(true)
	}
	p.observe(dec)
	return out.flush()
}

// streamHasher digests a streamed body: its bytes as they are, or the
// media part of a federation answer.
type streamHasher interface {
	io.Writer
	Sum() (hashing.Digests, bool)
	Close()
}

type digesterHasher struct{ *hashing.Digester }

func (h digesterHasher) Sum() (hashing.Digests, bool) { return h.Digester.Sum(), true }

// Close abandons the digests unless Sum took them.
func (h digesterHasher) Close() { h.Digester.Close() }

// tailWriter passes bytes on, holding back the last streamTail of them
// until flush.
type tailWriter struct {
	w    io.Writer
	tail []byte
}

func (t *tailWriter) Write(b []byte) (int, error) {
	t.tail = append(t.tail, b...)
	if over := len(t.tail) - streamTail; over > 0 {
		if _, err := t.w.Write(t.tail[:over]); err != nil {
			return 0, err
		}
		t.tail = append(t.tail[:0], t.tail[over:]...)
	}
	return len(b), nil
}

func (t *tailWriter) flush() error {
	_, err := t.w.Write(t.tail)
	return err
}

// tooBigImage handles a body larger than the judge-whole limit that is an
// image by its first bytes: streaming it with exact hashes only would let
// a padded listed picture out, so it gets the undecodable-image policy
// (refused by default). It reports whether the download was answered.
// Such bodies exist only where the homeserver accepts larger uploads than
// mediaguard's max_upload_size, or as remote media.
func (d *download) tooBigImage(sp *spool) bool {
	format, weak := imageByBytes(bytes.NewReader(sp.Head(4096)))
	if format == "" || weak || d.p.cfg.OnUndecodableImage != UndecodableBlock {
		return false
	}
	d.p.observe(&Decision{Request: d.r, Endpoint: d.ep, MediaKey: d.key, Outcome: Undecodable, User: d.user(true),
		UnscannableReason: format + " image larger than max_upload_size: too large to judge whole"})
	writeError(d.w, http.StatusNotFound, "M_NOT_FOUND", "Not found")
	return true
}
