package pdqindex

import (
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// pdqBenchBank is a random bank with its index, built once per process so
// that -count and several benchmarks share it.
type pdqBenchBank struct {
	once    sync.Once
	n       int
	hashes  []pdq.Hash
	ix      *Index
	queries []pdq.Hash
	build   time.Duration
}

var (
	pdqBank1M  = &pdqBenchBank{n: 1_000_000}
	pdqBank10M = &pdqBenchBank{n: 10_000_000}
)

func (bb *pdqBenchBank) get(b *testing.B) *pdqBenchBank {
	bb.once.Do(func() {
		bb.hashes = pdqRandomHashes(bb.n, 42)
		start := time.Now()
		// The index owns its slice (for big banks it keeps a copy on
		// huge pages); LinearSearch scans the index's own hashes, so that
		// both read the same memory.
		bb.ix = Build(slices.Clone(bb.hashes))
		bb.build = time.Since(start)
		rng := rand.New(rand.NewPCG(42, 43))
		bb.queries = pdqQueries(rng, bb.hashes, 1024)
	})
	b.Logf("bank of %d built in %v, %.2f bytes/hash", bb.n, bb.build, float64(bb.ix.MemoryBytes())/float64(bb.n))
	return bb
}

func pdqSkip10M(b *testing.B) {
	if testing.Short() || os.Getenv("MEDIAGUARD_BENCH_10M") != "1" {
		b.Skip("set MEDIAGUARD_BENCH_10M=1 (and no -short) to run the 10M benchmarks")
	}
}

// pdqBenchSearch times one query per iteration at the default threshold and
// reports the median alongside the mean.
func pdqBenchSearch(b *testing.B, bb *pdqBenchBank, linear bool) {
	var dst []Hit
	times := make([]time.Duration, 0, b.N)
	hits := 0
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		q := bb.queries[i%len(bb.queries)]
		t0 := time.Now()
		if linear {
			dst = LinearSearch(dst[:0], bb.ix.hashes, q, DefaultThreshold)
		} else {
			dst = bb.ix.Search(dst[:0], q, DefaultThreshold)
		}
		times = append(times, time.Since(t0))
		hits += len(dst)
	}
	b.StopTimer()
	slices.Sort(times)
	if len(times) > 0 {
		b.ReportMetric(float64(times[len(times)/2].Nanoseconds()), "median-ns/query")
	}
	b.ReportMetric(float64(bb.ix.MemoryBytes())/float64(bb.n), "bytes/hash")
	b.ReportMetric(float64(hits)/float64(max(len(times), 1)), "hits/query")
}

func BenchmarkIndex1M(b *testing.B)  { pdqBenchSearch(b, pdqBank1M.get(b), false) }
func BenchmarkLinear1M(b *testing.B) { pdqBenchSearch(b, pdqBank1M.get(b), true) }

func BenchmarkIndex10M(b *testing.B) {
	pdqSkip10M(b)
	pdqBenchSearch(b, pdqBank10M.get(b), false)
}

func BenchmarkLinear10M(b *testing.B) {
	pdqSkip10M(b)
	pdqBenchSearch(b, pdqBank10M.get(b), true)
}

// The speed-up over a linear scan is judged within one run: on a shared
// virtual machine the cost of a random read drifts by half between
// minutes, which moves separate runs of the index apart more than the
// goal's margin. These interleave one linear scan per 16 index queries
// (other queries, so neither warms the cache for the other) and report
// both medians and their ratio.

func BenchmarkIndexVsLinear1M(b *testing.B) { pdqBenchRatio(b, pdqBank1M.get(b)) }

func BenchmarkIndexVsLinear10M(b *testing.B) {
	pdqSkip10M(b)
	pdqBenchRatio(b, pdqBank10M.get(b))
}

func pdqBenchRatio(b *testing.B, bb *pdqBenchBank) {
	var dst []Hit
	var ix, lin []time.Duration
	for i := 0; b.Loop(); i++ {
		q := bb.queries[i%len(bb.queries)]
		t0 := time.Now()
		dst = bb.ix.Search(dst[:0], q, DefaultThreshold)
		ix = append(ix, time.Since(t0))
		if i%16 == 0 {
			q = bb.queries[(i+len(bb.queries)/2)%len(bb.queries)]
			t0 = time.Now()
			dst = LinearSearch(dst[:0], bb.ix.hashes, q, DefaultThreshold)
			lin = append(lin, time.Since(t0))
		}
	}
	b.StopTimer()
	median := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2].Nanoseconds())
	}
	mi, ml := median(ix), median(lin)
	b.ReportMetric(mi, "index-median-ns")
	b.ReportMetric(ml, "linear-median-ns")
	b.ReportMetric(ml/mi, "speedup")
}

func BenchmarkBuild1M(b *testing.B) {
	hs := pdqRandomHashes(1_000_000, 42)
	var ix *Index
	for b.Loop() {
		ix = Build(hs)
	}
	b.ReportMetric(float64(ix.MemoryBytes())/float64(ix.Len()), "bytes/hash")
}
