package hashing

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"hash"
	"testing"
)

// The figure: the three digests together at >= 0.9x the throughput
// of MD5 alone (the slowest). Compare BenchmarkDigester with BenchmarkMD5 in
// the same run (make bench, then benchstat).

const benchPayload = 16 << 20 // a large upload
const benchChunk = 32 << 10   // io.Copy's buffer size

var benchData = make([]byte, benchPayload)

func benchStd(b *testing.B, hs ...func() hash.Hash) {
	b.SetBytes(benchPayload)
	for b.Loop() {
		for _, mk := range hs {
			h := mk()
			for p := benchData; len(p) > 0; p = p[benchChunk:] {
				h.Write(p[:benchChunk])
			}
			h.Sum(nil)
		}
	}
}

func BenchmarkMD5(b *testing.B)    { benchStd(b, md5.New) }
func BenchmarkSHA1(b *testing.B)   { benchStd(b, sha1.New) }
func BenchmarkSHA256(b *testing.B) { benchStd(b, sha256.New) }

// BenchmarkSerial3 is the naive baseline: the three one after another.
func BenchmarkSerial3(b *testing.B) { benchStd(b, md5.New, sha1.New, sha256.New) }

func BenchmarkDigester(b *testing.B) {
	b.SetBytes(benchPayload)
	b.ReportAllocs()
	for b.Loop() {
		d := NewDigester()
		for p := benchData; len(p) > 0; p = p[benchChunk:] {
			d.Write(p[:benchChunk])
		}
		d.Sum()
	}
}

// BenchmarkDigesterSmall is a thumbnail-sized body: hashed inline.
func BenchmarkDigesterSmall(b *testing.B) {
	data := benchData[:20<<10]
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		d := NewDigester()
		d.Write(data)
		d.Sum()
	}
}
