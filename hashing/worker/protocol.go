// Package worker decodes and PDQ-hashes images in child processes.
//
// Decoding is the one heavy, hostile-input step on the request path. In
// its own process it cannot take the proxy down (a decoder crash or a
// memory blow-up ends one child, which is restarted), its garbage never
// triggers the proxy's garbage collector, and the kernel can run it at
// the lowest priority: a niced thread inside a Go process still holds one of the
// runtime's Ps, so while it is descheduled, and especially during a GC
// mark phase that takes another P, proxying has none.
//
// The child is the running executable itself (/proc/self/exe on Linux),
// started with an environment marker; this package's init turns such a
// process into a worker before main runs, so any binary that links the
// package (Caddy with mediaguard, a test binary) can serve as its own
// worker.
package worker

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// One request is a 12-byte header, then the body:
//
//	u32 body length | u32 max pixels | u8 flags | u8 search | 2 bytes zero | body
//
// and its answer a 4-byte header, the message, then (status ok) the hash:
//
//	u8 status | u8 0 | u16 message length | message |
//	32 hash | u32 quality | u8 dihedral count (0 or 8) | count × 32 |
//	u16 form count | count × (u8 name length | name | u8 variant | 32 hash | u8 quality)
//
// search is the pdq.Search level; variant is the form's kind as its index
// in variantCodes.
//
// Everything is big-endian. The worker reads the whole body before it
// answers, so the parent can write then read without a second goroutine.
const (
	reqHeaderLen  = 12
	respHeaderLen = 4
	flagDihedral  = 1 << 0
	flagResize512 = 1 << 1
	flagViewed    = 1 << 2
	flagExact     = 1 << 3
	// maxForms bounds the forms of one answer (frames × forms per frame,
	// variants included); an answer keeps the first ones, the stored
	// picture's before later frames'.
	maxForms = 1024
	// maxMessage bounds an error message on the wire.
	maxMessage = 1024
	// MaxBody is the largest body a worker accepts (the u32 length).
	MaxBody = 1<<32 - 1
)

// Statuses carry the pdq error a caller branches on across the pipe.
const (
	statusOK byte = iota
	statusNotImage
	statusTooManyPixels
	statusCorrupt
	statusCrafted
)

// variantCodes are the form kinds an answer can carry, by their code on
// the wire. Code 0 is a form without a kind. New kinds go at the end; a
// kind missing here fails TestEveryVariantHasACode, not a request.
var variantCodes = [...]string{
	"",
	pdq.VariantStored,
	pdq.VariantFrame,
	pdq.VariantDisplayed,
	pdq.VariantComposited,
	pdq.VariantColourManaged,
	pdq.VariantEmbedded,
	pdq.VariantTrimmed,
	pdq.VariantPeeled,
	pdq.VariantDegapped,
	pdq.VariantQuadrant,
	pdq.VariantNegative,
	pdq.VariantStretched,
	pdq.VariantWindow,
	pdq.VariantRotated,
}

// variantCode is the wire code of a form's kind. The kinds are this
// binary's own constants, so an unknown one is a bug the test catches;
// should one slip through, the form still crosses, without a kind: its
// hash is what blocks, and failing the answer would make the worker's
// death look like a corrupt image.
func variantCode(v string) byte {
	for i, s := range variantCodes {
		if s == v {
			return byte(i)
		}
	}
	return 0
}

func writeRequest(w io.Writer, body io.Reader, size int64, dopt pdq.DecodeOptions, opt pdq.Options) error {
	if size < 0 || size > MaxBody {
		return fmt.Errorf("worker: body of %d bytes", size)
	}
	if opt.Search > pdq.SearchDeep {
		return fmt.Errorf("worker: unknown pdq search level %v", opt.Search)
	}
	var h [reqHeaderLen]byte
	binary.BigEndian.PutUint32(h[0:], uint32(size))
	binary.BigEndian.PutUint32(h[4:], uint32(min(uint64(max(dopt.MaxPixels, 0)), math.MaxUint32)))
	if opt.Dihedral {
		h[8] |= flagDihedral
	}
	if opt.Resize512 {
		h[8] |= flagResize512
	}
	if dopt.Viewed {
		h[8] |= flagViewed
	}
	if dopt.Exact {
		h[8] |= flagExact
	}
	h[9] = byte(opt.Search)
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	// body holds exactly size bytes (Hash measured it): a plain Copy lets
	// an in-memory body write itself to the pipe with no copy buffer.
	n, err := io.Copy(w, body)
	if err == nil && n != size {
		err = errors.New("body changed size")
	}
	if err != nil {
		return fmt.Errorf("worker: sent %d of %d bytes: %w", n, size, err)
	}
	return nil
}

type request struct {
	size int64
	dopt pdq.DecodeOptions
	opt  pdq.Options
}

func readRequest(r io.Reader) (request, error) {
	var h [reqHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return request{}, err
	}
	q := request{size: int64(binary.BigEndian.Uint32(h[0:]))}
	q.dopt.MaxPixels = int(binary.BigEndian.Uint32(h[4:]))
	q.opt.Dihedral = h[8]&flagDihedral != 0
	q.opt.Resize512 = h[8]&flagResize512 != 0
	q.dopt.Viewed = h[8]&flagViewed != 0
	q.dopt.Exact = h[8]&flagExact != 0
	if h[9] > byte(pdq.SearchDeep) || h[10] != 0 || h[11] != 0 {
		return request{}, fmt.Errorf("malformed request header % x", h[8:])
	}
	q.opt.Search = pdq.Search(h[9])
	// The worker hashes one image at a time on its one thread.
	q.opt.Workers = 1
	return q, nil
}

func writeResponse(w *bufio.Writer, res pdq.Result, err error) error {
	var h [respHeaderLen]byte
	var msg string
	if err != nil {
		h[0] = statusCorrupt
		switch {
		case errors.Is(err, pdq.ErrNotImage):
			h[0] = statusNotImage
		case errors.Is(err, pdq.ErrTooManyPixels):
			h[0] = statusTooManyPixels
		case errors.Is(err, pdq.ErrCrafted):
			h[0] = statusCrafted
		}
		msg = err.Error()
		if len(msg) > maxMessage {
			msg = msg[:maxMessage]
		}
	}
	binary.BigEndian.PutUint16(h[2:], uint16(len(msg)))
	w.Write(h[:])
	w.WriteString(msg)
	if err == nil {
		w.Write(appendHash(nil, res.Hash))
		var q [5]byte
		binary.BigEndian.PutUint32(q[:], uint32(res.Quality))
		if res.Dihedral != nil {
			q[4] = 8
		}
		w.Write(q[:])
		if res.Dihedral != nil {
			var b []byte
			for _, d := range res.Dihedral {
				b = appendHash(b, d)
			}
			w.Write(b)
		}
		forms := res.Forms[:min(len(res.Forms), maxForms)]
		b := binary.BigEndian.AppendUint16(nil, uint16(len(forms)))
		for _, f := range forms {
			name := f.Name[:min(len(f.Name), 255)]
			b = append(b, byte(len(name)))
			b = append(b, name...)
			b = append(b, variantCode(f.Variant))
			b = appendHash(b, f.Hash)
			b = append(b, byte(min(max(f.Quality, 0), 100)))
		}
		w.Write(b)
	}
	return w.Flush()
}

// errProtocol marks an answer that does not follow the protocol: the
// worker is not trusted again.
var errProtocol = errors.New("worker: malformed answer")

func readResponse(r io.Reader) (pdq.Result, error) {
	var h [respHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return pdq.Result{}, err
	}
	n := int(binary.BigEndian.Uint16(h[2:]))
	if n > maxMessage || h[1] != 0 {
		return pdq.Result{}, errProtocol
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		return pdq.Result{}, err
	}
	switch h[0] {
	case statusOK:
	case statusNotImage:
		return pdq.Result{}, pdq.ErrNotImage
	case statusTooManyPixels:
		return pdq.Result{}, remoteError{pdq.ErrTooManyPixels, string(msg)}
	case statusCorrupt:
		return pdq.Result{}, remoteError{pdq.ErrCorrupt, string(msg)}
	case statusCrafted:
		return pdq.Result{}, remoteError{pdq.ErrCrafted, string(msg)}
	default:
		return pdq.Result{}, errProtocol
	}
	var res pdq.Result
	var q [hashLen + 5]byte
	if _, err := io.ReadFull(r, q[:]); err != nil {
		return pdq.Result{}, err
	}
	res.Hash = getHash(q[:])
	res.Quality = int(binary.BigEndian.Uint32(q[hashLen:]))
	switch q[hashLen+4] {
	case 0:
	case 8:
		var b [8 * hashLen]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return pdq.Result{}, err
		}
		res.Dihedral = new([8]pdq.Hash)
		for i := range res.Dihedral {
			res.Dihedral[i] = getHash(b[i*hashLen:])
		}
	default:
		return pdq.Result{}, errProtocol
	}
	if res.Quality < 0 || res.Quality > 100 {
		return pdq.Result{}, errProtocol
	}
	var nb [2]byte
	if _, err := io.ReadFull(r, nb[:]); err != nil {
		return pdq.Result{}, err
	}
	n = int(binary.BigEndian.Uint16(nb[:]))
	if n > maxForms {
		return pdq.Result{}, errProtocol
	}
	if n > 0 {
		res.Forms = make([]pdq.Form, n)
	}
	for i := range res.Forms {
		var l [1]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return pdq.Result{}, err
		}
		b := make([]byte, int(l[0])+1+hashLen+1)
		if _, err := io.ReadFull(r, b); err != nil {
			return pdq.Result{}, err
		}
		f := &res.Forms[i]
		f.Name = string(b[:l[0]])
		code := int(b[l[0]])
		if code >= len(variantCodes) {
			return pdq.Result{}, errProtocol
		}
		f.Variant = variantCodes[code]
		f.Hash = getHash(b[l[0]+1:])
		f.Quality = int(b[len(b)-1])
		if f.Quality > 100 {
			return pdq.Result{}, errProtocol
		}
	}
	return res, nil
}

// hashLen is a hash on the wire: its four words, big-endian.
const hashLen = 32

func appendHash(b []byte, h pdq.Hash) []byte {
	for _, w := range h {
		b = binary.BigEndian.AppendUint64(b, w)
	}
	return b
}

func getHash(b []byte) (h pdq.Hash) {
	for i := range h {
		h[i] = binary.BigEndian.Uint64(b[8*i:])
	}
	return h
}

// remoteError is a pdq error as the worker worded it.
type remoteError struct {
	kind error
	msg  string
}

func (e remoteError) Error() string { return e.msg }
func (e remoteError) Unwrap() error { return e.kind }
