package carve

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"errors"
	"io"
)

// readAll reads r up to the remaining budget and charges what it read,
// kept or not, so that inflating is bounded by Limits.MaxBytes in total
// (add the result with addDecoded). When r has more to give than the budget
// allows (a bomb, or just too much) nothing is returned: no later part could
// be afforded anyway. complete is false when the stream was cut short by
// corruption or truncation; what was decoded is returned. hint is the size
// the container announces (0 if none), to allocate once.
func (c *carver) readAll(r io.Reader, hint int64) (out []byte, complete bool) {
	limit := c.budget
	if limit <= 0 {
		return nil, false
	}
	buf := make([]byte, 0, min(max(hint+1, 4096), limit+1))
	r = io.LimitReader(r, limit+1)
	var err error
	for err == nil {
		if len(buf) == cap(buf) { // double: append grows large slices by 1.25
			buf = append(make([]byte, 0, min(2*cap(buf), int(limit)+1)), buf...)
		}
		var n int
		n, err = r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
	}
	if int64(len(buf)) > limit {
		c.budget = 0
		c.starve("the carving budget of " + itoa64(c.maxBytes) + " bytes ran out while inflating")
		return nil, false
	}
	c.spend(len(buf))
	return buf, err == io.EOF
}

// readUpTo reads at most limit bytes of r, outside the parts' budget.
func readUpTo(r io.Reader, limit int64) ([]byte, bool) {
	c := carver{budget: limit}
	out, complete := c.readAll(r, 0)
	return out, complete
}

// errReader stands for a stream that cannot be decoded.
var errReader = errors.New("carve: unsupported stream")

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errReader }

// zlibOrFlate opens a zlib stream, or raw deflate when the zlib header is
// missing (as in some broken PDFs).
func zlibOrFlate(b []byte) io.Reader {
	if len(b) >= 2 && b[0]&0x0f == 8 && (int(b[0])<<8|int(b[1]))%31 == 0 {
		if r, err := zlib.NewReader(bytes.NewReader(b)); err == nil {
			return checksumTolerant{r}
		}
	}
	return flate.NewReader(bytes.NewReader(b))
}

// checksumTolerant ignores a wrong or missing Adler-32: readers show the
// picture anyway, so a corrupted checksum must not hide it.
type checksumTolerant struct{ r io.Reader }

func (c checksumTolerant) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if errors.Is(err, zlib.ErrChecksum) || (err == io.ErrUnexpectedEOF && n == 0) {
		err = io.EOF
	}
	return n, err
}
