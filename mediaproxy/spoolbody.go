package mediaproxy

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/mediaguard/mediaguard/hashing"
)

// SpooledBody is a body received outside the Matrix media endpoints (the
// HMA-compatible surface's POST /h/hash) held exactly as an upload is
// held: in memory within the shared max_buffered_total budget, then in a
// private temp file (0600, in the spool directory), digested as it
// arrives. Close releases the memory and removes the file; until then it
// counts in the spool metrics like any upload.
type SpooledBody struct {
	p  *Proxy
	sp *spool
}

// SpoolBody reads r to its end into a new SpooledBody. At most maxSize
// bytes are taken (<= 0 means max_upload_size): more fails with
// ErrTooLarge. sizeHint is the body's length or an upper bound of it (a
// multipart request's Content-Length for its one file), -1 when unknown:
// a body that may not fit memory_buffer goes straight to disk, and one
// that does gets one buffer of that size rather than a buffer grown (and
// copied) while it arrives. A spool file that cannot be written (disk
// full, spool directory gone) fails with ErrSpoolDisk, and a vanished
// spool directory is recreated for the next body, as for uploads; any
// other error is r's. Nothing is kept on error. The caller must Close a
// SpooledBody.
func (p *Proxy) SpoolBody(r io.Reader, maxSize, sizeHint int64) (*SpooledBody, error) {
	if maxSize <= 0 {
		maxSize = p.cfg.MaxUploadSize
	}
	if sizeHint < 0 {
		sizeHint = -1
	}
	// Nothing reads the memory buffer after Close (the scan is done by
	// then), so it is recycled as downloads' buffers are.
	sp := newSpool(spoolOptions{memoryLimit: p.cfg.MemoryBuffer, maxSize: maxSize, tempDir: p.cfg.TempDir,
		declared: sizeHint, budget: p, recycle: true, onDisk: p.cfg.OnSpool})
	if _, err := sp.ReadFrom(r); err != nil {
		sp.Close()
		if errors.Is(err, ErrSpoolDisk) {
			p.recreateSpoolDir(err)
		}
		return nil, err
	}
	return &SpooledBody{p: p, sp: sp}, nil
}

// Size is the body's length.
func (b *SpooledBody) Size() int64 { return b.sp.Size() }

// Digests are the body's exact digests, computed as it arrived.
func (b *SpooledBody) Digests() hashing.Digests { return b.sp.Digests() }

// OnDisk reports whether the body spilled to a temp file.
func (b *SpooledBody) OnDisk() bool { return b.sp.OnDisk() }

// Scan judges the body exactly as ScanFile judges a file and as the proxy
// judges an upload: the same decoders, forms, variants, hashing slots,
// worker processes, CPU budgets and carving. contentType is the declared
// type ("" when unknown); the bytes decide what the body is. The error is
// ctx's when it ended mid-scan (the result then judges nothing).
func (b *SpooledBody) Scan(ctx context.Context, contentType string) (FileScan, error) {
	return b.p.scanWhole(ctx, b.sp.Reader(), b.sp.Size(), b.sp.Digests(), contentType)
}

// Close releases the memory and the budget and removes the temp file. It
// may be called more than once.
func (b *SpooledBody) Close() error {
	if b == nil {
		return nil
	}
	return b.sp.Close()
}

// RefusesUndecodable reports whether an image by its bytes that cannot be
// decoded is refused (on_undecodable_image block, the default) rather
// than let through as unscannable.
func (p *Proxy) RefusesUndecodable() bool { return p.cfg.OnUndecodableImage == UndecodableBlock }

// MaxUploadSize is the largest upload accepted (max_upload_size, with its
// default applied).
func (p *Proxy) MaxUploadSize() int64 { return p.cfg.MaxUploadSize }

// IdleBody returns body wrapped so that the connection behind w is cut off
// when its client sends nothing for upload_idle_timeout (slow-loris), as
// upload bodies are; a read then fails with os.ErrDeadlineExceeded. Call
// done once the body has been read, with whether it was read whole: after
// a failure the deadline expires at once so net/http does not wait to
// drain the rest. With the timeout off, body comes back as it is.
func (p *Proxy) IdleBody(w http.ResponseWriter, body io.Reader) (r io.Reader, done func(complete bool)) {
	if p.cfg.UploadIdleTimeout <= 0 {
		return body, func(bool) {}
	}
	ir := &idleReader{r: body, rc: http.NewResponseController(w), idle: p.cfg.UploadIdleTimeout}
	return ir, ir.done
}
