package mediaproxy

import (
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/hashing"
)

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

// federationPart returns the media part of a federation body: the first
// part is JSON metadata, the second the bytes or a Location redirect
// (Matrix server-server API, GET /_matrix/federation/v1/media/download,
// https://spec.matrix.org/v1.11/server-server-api/#content-repository).
func federationPart(body io.Reader, boundary string) (part *multipart.Part, redirect bool, err error) {
	mr := multipart.NewReader(body, boundary)
	if _, err := mr.NextPart(); err != nil {
		return nil, false, err
	}
	part, err = mr.NextPart()
	if err != nil {
		return nil, false, err
	}
	return part, part.Header.Get("Location") != "", nil
}

// judgeFederation judges a federation body's media part, spooled on its
// own and digested on the way.
func (d *download) judgeFederation(sp *spool, boundary string) error {
	p := d.p
	release := func() error { return d.release(sp) }
	unscannable := func() error {
		p.observe(&Decision{Request: d.r, Endpoint: d.ep, MediaKey: d.key, Outcome: Unscannable, UnscannableReason: "federation redirect or unparsable multipart"})
		return release()
	}
	part, redirect, err := federationPart(sp.Reader(), boundary)
	if err != nil {
		p.log.Info("federation media body not parsable; passed unscanned", zap.Stringer("media", d.key), zap.Error(err))
		return unscannable()
	}
	if redirect {
		return unscannable()
	}
	// The part stays where its body is: in memory (already charged as
	// the body) or on disk.
	memLimit := int64(0)
	if !sp.OnDisk() {
		memLimit = sp.Size()
	}
	media := newSpool(spoolOptions{memoryLimit: memLimit, maxSize: sp.Size(), tempDir: p.cfg.TempDir, declared: -1, onDisk: p.cfg.OnSpool})
	defer media.Close()
	if _, err := media.ReadFrom(part); err != nil {
		if errors.Is(err, ErrSpoolDisk) {
			p.log.Warn("cannot spool a federation media part; refused", zap.Stringer("media", d.key), zap.Error(err))
			p.recreateSpoolDir(err)
			writeError(d.w, http.StatusServiceUnavailable, "M_UNKNOWN", "Media scanning is temporarily unavailable")
			return nil
		}
		p.log.Info("federation media body not parsable; passed unscanned", zap.Stringer("media", d.key), zap.Error(err))
		return unscannable()
	}
	return d.judge(media.Reader(), part.Header.Get("Content-Type"), media.Digests(), release)
}

// multipartHasher hashes the media part of a streamed federation body as
// it passes: bytes written to it feed a multipart parser in a goroutine.
type multipartHasher struct {
	pw   *io.PipeWriter
	done chan struct{}
	dg   hashing.Digests
	ok   bool
}

func newMultipartHasher(boundary string) *multipartHasher {
	pr, pw := io.Pipe()
	m := &multipartHasher{pw: pw, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		// Whatever happens, keep draining so the writer never blocks.
		defer io.Copy(io.Discard, pr)
		mr := multipart.NewReader(pr, boundary)
		if _, err := mr.NextPart(); err != nil {
			return
		}
		part, err := mr.NextPart()
		if err != nil || part.Header.Get("Location") != "" {
			return
		}
		d := hashing.NewDigester()
		if _, err := io.Copy(d, part); err != nil {
			d.Close()
			return
		}
		m.dg, m.ok = d.Sum(), true
	}()
	return m
}

// Write never fails: the parser drains whatever it does not need.
func (m *multipartHasher) Write(b []byte) (int, error) {
	m.pw.Write(b)
	return len(b), nil
}

// Sum ends the stream and returns the media part's digests; ok is false for
// a redirect or an unparsable body.
func (m *multipartHasher) Sum() (hashing.Digests, bool) {
	m.pw.Close()
	<-m.done
	return m.dg, m.ok
}

// Close abandons the parse.
func (m *multipartHasher) Close() {
	m.pw.CloseWithError(io.ErrUnexpectedEOF)
	<-m.done
}
