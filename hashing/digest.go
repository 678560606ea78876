// Package hashing computes the digests mediaguard matches on, in one pass
// over a stream: MD5, SHA-1 and SHA-256 (exact hash lists such as NCMEC's),
// with the perceptual PDQ hash in the pdq subpackage.
//
// It is the hash stage: hashing and its subpackages (pdq, picture,
// carve, worker, external, sched) turn bytes into digests and perceptual
// hashes and know nothing of matching, HTTP serving or Caddy; they must
// not import matcher, mediaproxy or caddymodule.
package hashing

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"
	"sync/atomic"
)

// Digests are the exact hashes of a byte stream.
type Digests struct {
	MD5    [md5.Size]byte
	SHA1   [sha1.Size]byte
	SHA256 [sha256.Size]byte
	// Size is the number of bytes hashed.
	Size int64
}

// MD5Hex, SHA1Hex and SHA256Hex return lowercase hex, the form bank files
// and the lookup API use.
func (d Digests) MD5Hex() string    { return hex.EncodeToString(d.MD5[:]) }
func (d Digests) SHA1Hex() string   { return hex.EncodeToString(d.SHA1[:]) }
func (d Digests) SHA256Hex() string { return hex.EncodeToString(d.SHA256[:]) }

// blockSize is the unit handed to the hashing goroutines: large enough that
// the hand-off is a rounding error, small enough that a few in flight cost
// little memory per concurrent upload.
const blockSize = 128 << 10

// blocksInFlight bounds the memory one Digester holds (4 × 128 KiB) and
// applies back-pressure to a writer that outruns the hashes.
const blocksInFlight = 4

type block struct {
	buf []byte
	// pending counts the lanes still reading buf; the last one recycles it.
	pending atomic.Int32
}

var blockPool = sync.Pool{New: func() any { return &block{buf: make([]byte, 0, blockSize)} }}

// Digester is an io.Writer that computes MD5, SHA-1 and SHA-256 of
// everything written to it, for the proxy to tee a body into.
//
// MD5 is the slowest of the three (no hardware assist), so it gets a lane to
// itself while SHA-1 and SHA-256 (SHA-NI on current x86) share the other:
// on two cores the three together run at nearly MD5's speed alone. Writes
// are copied into blocks and hashed asynchronously, so the caller's own work
// (reading the network, writing the spool) overlaps the hashing. Inputs
// smaller than one block are hashed inline with no goroutines at all.
//
// A Digester is not safe for concurrent Writes. Call Sum once, or Close to
// abandon it; either releases its goroutines.
type Digester struct {
	md5, sha1, sha256 hash.Hash
	cur               *block
	size              int64
	started           bool
	laneA, laneB      chan *block
	free              chan *block
	done              sync.WaitGroup
	finished          bool
}

// NewDigester returns a Digester ready for writing.
func NewDigester() *Digester {
	return &Digester{md5: md5.New(), sha1: sha1.New(), sha256: sha256.New()}
}

// Write never fails; it may block while all blocks are being hashed.
func (d *Digester) Write(p []byte) (int, error) {
	if d.finished {
		panic("hashing: Write after Sum or Close")
	}
	n := len(p)
	d.size += int64(n)
	for len(p) > 0 {
		if d.cur == nil {
			d.cur = d.getBlock()
		}
		k := copy(d.cur.buf[len(d.cur.buf):cap(d.cur.buf)], p)
		d.cur.buf = d.cur.buf[:len(d.cur.buf)+k]
		p = p[k:]
		if len(d.cur.buf) == cap(d.cur.buf) {
			d.dispatch()
		}
	}
	return n, nil
}

func (d *Digester) getBlock() *block {
	if !d.started {
		return blockPool.Get().(*block)
	}
	return <-d.free
}

// dispatch hands the current full block to both lanes, starting them on the
// first call.
func (d *Digester) dispatch() {
	if !d.started {
		d.start()
	}
	b := d.cur
	d.cur = nil
	b.pending.Store(2)
	d.laneA <- b
	d.laneB <- b
}

func (d *Digester) start() {
	d.started = true
	d.laneA = make(chan *block, blocksInFlight)
	d.laneB = make(chan *block, blocksInFlight)
	d.free = make(chan *block, blocksInFlight)
	// d.cur came from the pool before the lanes existed; the ring holds
	// the other blocksInFlight-1.
	for range blocksInFlight - 1 {
		d.free <- blockPool.Get().(*block)
	}
	d.done.Add(2)
	go d.lane(d.laneA, d.md5)
	go d.lane(d.laneB, d.sha1, d.sha256)
}

func (d *Digester) lane(in <-chan *block, hs ...hash.Hash) {
	defer d.done.Done()
	for b := range in {
		for _, h := range hs {
			h.Write(b.buf)
		}
		if b.pending.Add(-1) == 0 {
			b.buf = b.buf[:0]
			d.free <- b
		}
	}
}

// Sum finishes hashing and returns the digests. The Digester cannot be
// written to afterwards.
func (d *Digester) Sum() Digests {
	var out Digests
	out.Size = d.size
	if !d.started {
		if d.cur != nil {
			d.md5.Write(d.cur.buf)
			d.sha1.Write(d.cur.buf)
			d.sha256.Write(d.cur.buf)
		}
	} else if d.cur != nil && len(d.cur.buf) > 0 {
		d.dispatch()
	}
	d.finish()
	d.md5.Sum(out.MD5[:0])
	d.sha1.Sum(out.SHA1[:0])
	d.sha256.Sum(out.SHA256[:0])
	return out
}

// Close abandons the Digester (an aborted upload) and releases its
// goroutines and blocks. It is safe after Sum.
func (d *Digester) Close() {
	d.finish()
}

func (d *Digester) finish() {
	if d.finished {
		return
	}
	d.finished = true
	if d.started {
		close(d.laneA)
		close(d.laneB)
		d.done.Wait()
		close(d.free)
		for b := range d.free {
			blockPool.Put(b)
		}
	}
	if d.cur != nil {
		d.cur.buf = d.cur.buf[:0]
		blockPool.Put(d.cur)
		d.cur = nil
	}
}

// DigestBytes returns the digests of b.
func DigestBytes(b []byte) Digests {
	d := NewDigester()
	d.Write(b)
	return d.Sum()
}
