package mediaproxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/ledger"
	"github.com/mediaguard/mediaguard/matcher"
)

// countingRecall is the service's Book-backed Ledger (service.bookRecall)
// counting its questions, so the benchmark knows which path it measured.
type countingRecall struct {
	b     *ledger.Book
	calls atomic.Int64
}

func (l *countingRecall) Recall(ctx context.Context, k MediaKey) (bool, string, bool) {
	l.calls.Add(1)
	return l.b.Recall(ctx, ledger.Key{Server: k.Server, ID: k.ID})
}

// knownLedgerRecords is how many media the benchmark's ledger holds, so a
// Get walks a B+tree of realistic depth rather than one page.
const knownLedgerRecords = 100_000

// knownKeys is how many of them the benchmark downloads, in turn.
const knownKeys = 1000

// BenchmarkDownloadKnown is the cost of a download of known clean media
// (64 KiB, through the proxy to the fake Synapse as BenchmarkDownloadUnknown)
// decided three ways, with the real Book over an embedded ledger of
// 100,000 records behind Config.Ledger as the service wires it:
//
//   - store=memory: the verdict is in the proxy's Memory (the ledger is
//     configured but not asked);
//   - store=ledger: Memory holds one entry and the downloads cycle over
//     1,000 keys, so every one misses Memory and is decided by a ledger
//     Get (the banks unchanged since the verdict);
//   - store=ledger-rederive: as ledger, but the banks changed since the
//     verdicts were reached, so each is re-derived from the stored digests
//     by the local matcher.
//
// None buffers or hashes: the benchmark fails if a request took another
// path. The figure is store=ledger less store=memory:
//
//	go test -tags nodynamic -run '^$' -bench BenchmarkDownloadKnown -count 6 ./mediaproxy/ | tee known.txt
//	~/go/bin/benchstat -col /store known.txt
func BenchmarkDownloadKnown(b *testing.B) {
	storeFor, keys := knownLedgers(b)
	body := bytes.Repeat([]byte{0x5a, 0xa5, 0x3c, 0x01}, 64<<10/4)
	for _, c := range []struct {
		name     string
		memory   int
		rederive bool
	}{{"memory", 0, false}, {"ledger", 1, false}, {"ledger-rederive", 1, true}} {
		b.Run("store="+c.name, func(b *testing.B) {
			var recall *countingRecall
			e := newEnv(b, []string{"md5 " + fmt.Sprintf("%032x", 1)}, func(cfg *Config) {
				if c.memory > 0 {
					cfg.Memory = NewMemory(c.memory, 0)
				}
				recall = &countingRecall{}
				cfg.Ledger = recall
			})
			banks := e.local.Fingerprint()
			if c.rederive {
				banks = "sha256:an-older-version-of-the-banks"
			}
			book := ledger.NewBook(ledger.BookConfig{Store: storeFor(banks), Matcher: e.local, Fingerprint: e.local.Fingerprint})
			b.Cleanup(func() { book.Close() })
			recall.b = book
			for _, id := range keys {
				e.up.Put(id, body, "application/octet-stream")
			}
			client := e.front.Client()
			get := func(id string) {
				resp, err := client.Get(e.front.URL + "/_matrix/media/v3/download/hs.example/" + id)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || n != int64(len(body)) {
					b.Fatalf("%d, %d bytes", resp.StatusCode, n)
				}
			}
			// Warm up: Memory learns every key (store=memory), the client's
			// connection and the ledger's pages are in place.
			for _, id := range keys {
				get(id)
			}
			hashed := len(e.obs.decisions())
			asked := recall.calls.Load()
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				get(keys[i%len(keys)])
			}
			b.StopTimer()
			calls := recall.calls.Load() - asked
			want := int64(b.N)
			if c.memory == 0 {
				want = 0
			}
			if calls != want {
				b.Fatalf("the ledger was asked %d times in %d downloads, want %d", calls, b.N, want)
			}
			for _, d := range e.obs.decisions()[hashed:] {
				if d.Outcome != KnownClean {
					b.Fatalf("a download was decided %v, not from memory or the ledger", d.Outcome)
				}
			}
			b.ReportMetric(float64(calls)/float64(b.N), "recalls/op")
		})
	}
}

// knownLedgers returns ledgers of knownLedgerRecords clean media, one per
// bank fingerprint their verdicts hold, each filled once (a sub-benchmark
// runs several times as b.N grows), and knownKeys of the media IDs spread
// over them.
func knownLedgers(b *testing.B) (storeFor func(banks string) ledger.Store, keys []string) {
	dir := b.TempDir()
	stores := map[string]ledger.Store{}
	storeFor = func(banks string) ledger.Store {
		if s := stores[banks]; s != nil {
			return s
		}
		s, err := ledger.Open(context.Background(), ledger.Spec{Path: filepath.Join(dir, fmt.Sprint(len(stores)), "media.ledger")})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		fillKnownLedger(b, s, banks)
		stores[banks] = s
		return s
	}
	keys = make([]string, knownKeys)
	for i := range keys {
		keys[i] = fmt.Sprint("k", i*(knownLedgerRecords/knownKeys)+i%97)
	}
	return storeFor, keys
}

// BenchmarkRecallKnown is BenchmarkDownloadKnown's decision alone, without
// the HTTP round trips that dominate a download's time and hide a few
// microseconds in their noise: the proxy's recall of a known clean
// original from Memory (store=memory), from the Book over the embedded
// ledger on a Memory miss (store=ledger), and the same with a re-derived
// verdict (store=ledger-rederive).
//
//	go test -tags nodynamic -run '^$' -bench BenchmarkRecallKnown -count 6 ./mediaproxy/ | tee recall.txt
//	~/go/bin/benchstat -col /store recall.txt
func BenchmarkRecallKnown(b *testing.B) {
	storeFor, keys := knownLedgers(b)
	for _, c := range []struct {
		name     string
		memory   int
		rederive bool
	}{{"memory", 0, false}, {"ledger", 1, false}, {"ledger-rederive", 1, true}} {
		b.Run("store="+c.name, func(b *testing.B) {
			recall := &countingRecall{}
			e := newEnv(b, []string{"md5 " + fmt.Sprintf("%032x", 1)}, func(cfg *Config) {
				if c.memory > 0 {
					cfg.Memory = NewMemory(c.memory, 0)
				}
				cfg.Ledger = recall
			})
			banks := e.local.Fingerprint()
			if c.rederive {
				banks = "sha256:an-older-version-of-the-banks"
			}
			book := ledger.NewBook(ledger.BookConfig{Store: storeFor(banks), Matcher: e.local, Fingerprint: e.local.Fingerprint})
			b.Cleanup(func() { book.Close() })
			recall.b = book
			rs := make([]Rendition, len(keys))
			for i, id := range keys {
				rs[i] = MediaKey{Server: "hs.example", ID: id}.Original()
			}
			ctx := context.Background()
			for _, r := range rs {
				if j, ok := e.proxy.recall(ctx, r); !ok || j.Blocked {
					b.Fatalf("%v: recall = %+v, %v", r, j, ok)
				}
			}
			asked := recall.calls.Load()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if j, ok := e.proxy.recall(ctx, rs[i%len(rs)]); !ok || j.Blocked {
					b.Fatalf("recall = %+v, %v", j, ok)
				}
			}
			b.StopTimer()
			calls := recall.calls.Load() - asked
			if want := map[bool]int64{true: 0, false: int64(b.N)}[c.memory == 0]; calls != want {
				b.Fatalf("the ledger was asked %d times in %d recalls, want %d", calls, b.N, want)
			}
		})
	}
}

// fillKnownLedger writes knownLedgerRecords clean records for media
// hs.example/k0..., judged against banks.
func fillKnownLedger(b *testing.B, s ledger.Store, banks string) {
	ctx := context.Background()
	ch := make(chan ledger.Record)
	var wg sync.WaitGroup
	var failed atomic.Value
	// Concurrent Puts share the embedded store's commits.
	for range 256 {
		wg.Go(func() {
			for r := range ch {
				if err := s.Put(ctx, r); err != nil {
					failed.Store(err)
				}
			}
		})
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range knownLedgerRecords {
		q := matcher.Query{Has: matcher.HasMD5 | matcher.HasSHA1 | matcher.HasSHA256 | matcher.HasPDQ, PDQQuality: 90, Kind: matcher.KindImage}
		for j := range q.MD5 {
			q.MD5[j] = byte(rng.Uint32())
		}
		for j := range q.SHA1 {
			q.SHA1[j] = byte(rng.Uint32())
		}
		for j := range q.SHA256 {
			q.SHA256[j] = byte(rng.Uint32())
		}
		for j := range q.PDQ {
			q.PDQ[j] = rng.Uint64()
		}
		ch <- ledger.Record{Key: ledger.Key{Server: "hs.example", ID: fmt.Sprint("k", i)}, Size: 64 << 10, Type: "png", Query: q,
			FirstSeen: knownTime, LastSeen: knownTime, Verdict: ledger.Clean, Banks: banks}
	}
	close(ch)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

// knownTime is when the ledger's media were seen.
var knownTime = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// decisions returns the decisions recorded so far.
func (r *recorder) decisions() []Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Decision(nil), r.ds...)
}
