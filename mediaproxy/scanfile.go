package mediaproxy

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/mediaguard/mediaguard/hashing"
	"github.com/mediaguard/mediaguard/hashing/picture"
	"github.com/mediaguard/mediaguard/hashing/worker"
	"github.com/mediaguard/mediaguard/matcher"
)

// FileScan is what ScanFile found in one stored file: the query the proxy
// would have matched had the file crossed it.
type FileScan struct {
	// Query holds the exact digests and, for a picture or a decodable
	// video, every PDQ form and variant, plus the embedded files.
	Query matcher.Query
	// Digests are the file's exact digests (Size included).
	Digests hashing.Digests
	// Format is the image format or video container by the bytes
	// ("jpeg", "mp4", ...), "" for anything else.
	Format string
	// Unscannable says why no perceptual hash was possible where one
	// could have mattered ("" otherwise), as the proxy records it.
	Unscannable string
	// Undecodable says why an image by its bytes could not be decoded.
	Undecodable string
	// ExactOnly is set for a file larger than max_upload_size: the proxy
	// would only ever have streamed it with its exact digests, so it is
	// judged by those alone and nothing is decoded.
	ExactOnly bool
}

// ScanFile judges a stored file exactly as the proxy judges a body it
// spooled to disk: the exact digests in one streaming pass, then the same
// decoders, forms, variants, hashing lanes, worker processes, CPU budgets
// and carving of embedded files as an upload (scan), reading the file
// through a mapping rather than into memory. It is for tools that judge
// media already stored (a backfill of the homeserver's media store).
// contentType is the declared type where known, "" otherwise. The error
// is a read error, a file whose length is not size, or ctx's error when it
// ended mid-scan (the result then judges nothing).
func (p *Proxy) ScanFile(ctx context.Context, f *os.File, size int64, contentType string) (FileScan, error) {
	dg := hashing.NewDigester()
	buf := copyBuffers.Get().(*[]byte)
	n, err := io.CopyBuffer(dg, io.NewSectionReader(f, 0, size+1), *buf)
	copyBuffers.Put(buf)
	if err != nil {
		dg.Close()
		return FileScan{}, err
	}
	if n != size {
		dg.Close()
		return FileScan{}, fmt.Errorf("mediaproxy: %s is %d bytes, not %d (changed while read?)", f.Name(), n, size)
	}
	// A section of the whole file is what a spooled body reads as, so the
	// carver maps it instead of copying it (mapSpooled).
	return p.scanWhole(ctx, io.NewSectionReader(f, 0, size), size, dg.Sum(), contentType)
}

// scanWhole judges a whole body whose exact digests are known, read
// through r (a spool's reader, or a section of a file): ScanFile's and
// SpooledBody.Scan's one way of doing it.
func (p *Proxy) scanWhole(ctx context.Context, r io.ReadSeeker, size int64, d hashing.Digests, contentType string) (FileScan, error) {
	fs := FileScan{Digests: d, Format: fileFormat(r)}
	if size > p.cfg.MaxUploadSize {
		fs.Query, fs.ExactOnly = exactQuery(d, contentType), true
		return fs, nil
	}
	sc := p.scan(ctx, r, contentType, d)
	if err := ctx.Err(); err != nil {
		return FileScan{}, err
	}
	fs.Query, fs.Unscannable, fs.Undecodable = sc.query, sc.unscannable, sc.undecodable
	return fs, nil
}

// fileFormat names the image format or video container r's bytes are.
func fileFormat(r io.ReadSeeker) string {
	defer r.Seek(0, io.SeekStart)
	head := make([]byte, 4096)
	k, _ := io.ReadFull(r, head)
	if format := picture.Sniff(head[:k]); format != "" {
		return format
	}
	r.Seek(0, io.SeekStart)
	return worker.VideoByBytes(r)
}
