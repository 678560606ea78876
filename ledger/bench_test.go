package ledger

import (
	"context"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// benchRecords is how many records the benchmarks write: the issue's
// figure is for a million media.
var benchRecords = flag.Int("ledger.records", 1_000_000, "records the ledger benchmarks write")

// loadBolt writes n sample records with extra further forms each into a
// new embedded ledger, in transactions of 10,000 in random key order (as
// uploads arrive), through the same putTx as Put but without Batch's
// per-commit fsync (the page layout is the same; the time is not what is
// measured).
func loadBolt(b *testing.B, n, extra int) (*Bolt, string) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "media.ledger")
	s, err := OpenBolt(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	s.db.NoSync = true
	defer func() { s.db.NoSync = false }()
	order := rand.New(rand.NewPCG(1, 2)).Perm(n)
	const chunk = 10_000
	for lo := 0; lo < n; lo += chunk {
		err := s.db.Update(func(tx *bolt.Tx) error {
			for _, i := range order[lo:min(lo+chunk, n)] {
				r := sampleRecord(i, extra)
				if _, _, err := s.putTx(tx, &r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := s.db.Sync(); err != nil {
		b.Fatal(err)
	}
	return s, path
}

func fileSize(b *testing.B, path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return st.Size()
}

// BenchmarkLedgerSize writes -ledger.records still images (the stored
// form's PDQ and the exact digests, 24-character media IDs, a bank
// fingerprint), with 0 and 3 further PDQ forms each, and reports the
// file's bytes per media as written (bytes/media-live: pages split by
// random inserts are about half full) and after Compact (bytes/media:
// the file; bytes/media-pages: the pages in use, without the up to 16 MB
// bbolt grows the file by ahead of need). It ignores b.N: run it with
// -benchtime 1x.
func BenchmarkLedgerSize(b *testing.B) {
	for _, c := range []struct {
		name  string
		extra int
	}{{"still", 0}, {"still+3forms", 3}} {
		b.Run(c.name, func(b *testing.B) {
			n := *benchRecords
			for range b.N {
				s, path := loadBolt(b, n, c.extra)
				live := fileSize(b, path)
				dst := filepath.Join(b.TempDir(), "compact.ledger")
				if err := s.Compact(dst); err != nil {
					b.Fatal(err)
				}
				compact := fileSize(b, dst)
				c, err := OpenBolt(dst)
				if err != nil {
					b.Fatal(err)
				}
				var used int64
				c.db.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil })
				c.Close()
				b.ReportMetric(float64(live)/float64(n), "bytes/media-live")
				b.ReportMetric(float64(compact)/float64(n), "bytes/media")
				b.ReportMetric(float64(used)/float64(n), "bytes/media-pages")
				s.Close()
			}
		})
	}
}

// BenchmarkScan reports how many records a second Scan delivers from the
// embedded store (still images with one further form), with one and four
// parts.
func BenchmarkScan(b *testing.B) {
	n := *benchRecords
	s, _ := loadBolt(b, n, 1)
	for _, parts := range []int{1, 4} {
		b.Run("parts="+strconv.Itoa(parts), func(b *testing.B) {
			var seen atomic.Int64
			start := time.Now()
			for range b.N {
				if err := s.Scan(context.Background(), parts, func(*Record) error {
					seen.Add(1)
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			if got := seen.Load(); got != int64(n*b.N) {
				b.Fatalf("scanned %d, want %d", got, n*b.N)
			}
			b.ReportMetric(float64(seen.Load())/time.Since(start).Seconds(), "records/s")
		})
	}
}

// BenchmarkGet reports the latency of a Get of a random stored record in
// the embedded store, from one goroutine and from all.
func BenchmarkGet(b *testing.B) {
	n := *benchRecords
	s, _ := loadBolt(b, n, 0)
	keys := make([]Key, 4096)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range keys {
		keys[i] = sampleRecord(rng.IntN(n), 0).Key
	}
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, ok, err := s.Get(ctx, keys[i%len(keys)]); !ok || err != nil {
				b.Fatal(ok, err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(len(keys))
			for pb.Next() {
				if _, ok, err := s.Get(ctx, keys[i%len(keys)]); !ok || err != nil {
					b.Error(ok, err)
					return
				}
				i++
			}
		})
	})
}
