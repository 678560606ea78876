package matcher

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/fakes"
)

// randomPDQQuery is an image query with a random PDQ hash (listed nowhere)
// and n-1 random forms.
func randomPDQQuery(r *rand.Rand, n int) Query {
	h := func() pdq.Hash { return pdq.Hash{r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64()} }
	q := Query{Has: HasPDQ, PDQ: h(), PDQQuality: 100, Kind: KindImage}
	for i := 1; i < n; i++ {
		q.Forms = append(q.Forms, pdq.Form{Name: fmt.Sprint("frame ", i+1), Variant: pdq.VariantFrame, Hash: h(), Quality: 90})
	}
	return q
}

// Concurrent lookups of different queries share requests, and each still
// gets its own answer: the listed ones match, the others do not.
func TestArachnidBatchesConcurrentLookups(t *testing.T) {
	f := newFakeArachnid(t)
	a := newTestArachnid(t, ArachnidConfig{URL: f.URL, BatchWindow: 50 * time.Millisecond})
	r := rand.New(rand.NewPCG(1, 2))
	const n = 24
	qs := make([]Query, n)
	for i := range qs {
		qs[i] = randomPDQQuery(r, 1+i%3)
		if i%4 == 0 {
			qs[i].PDQ, _ = pdq.ParseHex(hmaNear8) // listed
		}
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range qs {
		wg.Go(func() {
			<-start
			v, err := a.Match(context.Background(), qs[i])
			switch {
			case err != nil:
				errs[i] = err
			case v.Match != (i%4 == 0):
				errs[i] = fmt.Errorf("query %d: match %v (%+v)", i, v.Match, v)
			}
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	sent := f.SentHashes()
	hashes := 0
	for _, s := range sent {
		hashes += len(s)
	}
	reqs, lookups := a.batchStats()
	t.Logf("%d lookups of %d hashes in %d requests", lookups, hashes, len(sent))
	if lookups != n || int(reqs) != len(sent) || len(sent) > 3 {
		t.Fatalf("%d lookups in %d requests (batcher says %d); want at most 3 shared requests", lookups, len(sent), reqs)
	}
	// Every distinct hash of a request asked once: the listed one is the
	// same in six queries.
	if hashes > 48 || (len(sent) == 1 && hashes != 48-5) {
		t.Fatalf("%d hashes sent in %d requests; want 43 in one", hashes, len(sent))
	}
}

// A batch is sent as soon as it holds MaxBatch hashes, and never more: a
// query that would overflow it goes in the next one.
func TestArachnidBatchMaxSize(t *testing.T) {
	f := newFakeArachnid(t)
	a := newTestArachnid(t, ArachnidConfig{URL: f.URL, BatchWindow: time.Hour, MaxBatch: 64})
	r := rand.New(rand.NewPCG(3, 4))
	var wg sync.WaitGroup
	for range 8 {
		q := randomPDQQuery(r, 16)
		wg.Go(func() {
			if _, err := a.Match(context.Background(), q); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait() // with an hour's window, only full batches are ever sent
	sent := f.SentHashes()
	if len(sent) != 2 || len(sent[0]) != 64 || len(sent[1]) != 64 {
		t.Fatalf("batches of %v hashes; want two of 64", lens(sent))
	}
}

func lens(s [][]string) []int {
	out := make([]int, len(s))
	for i := range s {
		out[i] = len(s[i])
	}
	return out
}

// A caller that goes away leaves the others' batch alone; a batch every
// caller left is never sent.
func TestArachnidBatchCallersLeaving(t *testing.T) {
	f := newFakeArachnid(t)
	a := newTestArachnid(t, ArachnidConfig{URL: f.URL, BatchWindow: 100 * time.Millisecond})
	gone, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := a.Match(gone, pdqQuery(t, hmaFar, 100)); !errors.Is(err, context.Canceled) {
			t.Errorf("leaving caller: %v", err)
		}
	})
	time.Sleep(10 * time.Millisecond)
	v, err := func() (Verdict, error) {
		time.AfterFunc(10*time.Millisecond, cancel)
		return a.Match(context.Background(), pdqQuery(t, hmaBase, 100))
	}()
	wg.Wait()
	if err != nil || !v.Match {
		t.Fatalf("staying caller: %+v, %v", v, err)
	}
	if sent := f.SentHashes(); len(sent) != 1 || len(sent[0]) != 2 {
		t.Fatalf("sent %v; want one request with both hashes", sent)
	}

	lone, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := a.Match(lone, pdqQuery(t, hmaNear8, 100)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lone caller: %v", err)
	}
	time.Sleep(150 * time.Millisecond)
	if n := len(f.SentHashes()); n != 1 {
		t.Fatalf("%d requests; the abandoned batch must not be sent", n)
	}
}

// BenchmarkArachnidConcurrent measures what batching does to 32 goroutines
// looking up distinct pictures (stored hash and 2 forms) against a fake
// service 5 ms away: requests per lookup and the time a lookup takes.
func BenchmarkArachnidConcurrent(b *testing.B) {
	for _, window := range []time.Duration{-1, DefaultArachnidBatchWindow, 5 * time.Millisecond} {
		name := "off"
		if window > 0 {
			name = window.String()
		}
		b.Run("batch="+name, func(b *testing.B) {
			f := fakes.NewArachnid(b, arachnidUser, arachnidPass)
			f.SetDelay(5 * time.Millisecond)
			a := newTestArachnid(b, ArachnidConfig{URL: f.URL, BatchWindow: window})
			var seed sync.Mutex
			r := rand.New(rand.NewPCG(5, 6))
			b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0))) // 32 goroutines
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					seed.Lock()
					q := randomPDQQuery(r, 3)
					seed.Unlock()
					if _, err := a.Match(context.Background(), q); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			n := int64(f.PDQLookups.Load())
			b.ReportMetric(float64(n)/float64(b.N), "requests/lookup")
		})
	}
}
