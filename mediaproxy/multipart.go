package mediaproxy

import (
	"io"
	"mime/multipart"

	"github.com/mediaguard/mediaguard/hashing"
)

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

func (m *multipartHasher) Write(b []byte) { m.pw.Write(b) }

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
