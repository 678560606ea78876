package carve

import (
	"crypto/rand"
	"testing"
)

// BenchmarkCarveRandom is the cost paid on every encrypted attachment:
// 10 MB of random bytes, from which nothing is carved.
func BenchmarkCarveRandom(b *testing.B) {
	buf := make([]byte, 10<<20)
	rand.Read(buf)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if parts := Carve(buf, Limits{}); len(parts) != 0 {
			b.Fatalf("carved %d parts from random bytes", len(parts))
		}
	}
}

// BenchmarkCarveContainers carves every test container once per iteration.
func BenchmarkCarveContainers(b *testing.B) {
	cs := cases(b)
	total := 0
	for _, tc := range cs {
		total += len(tc.in)
	}
	b.SetBytes(int64(total))
	b.ReportAllocs()
	for b.Loop() {
		for _, tc := range cs {
			Carve(tc.in, Limits{})
		}
	}
}
