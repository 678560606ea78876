package ledger

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// retroKeep keeps the retro benchmark's generated ledgers for later runs
// (generating 10M records takes minutes); by default they are deleted
// when the test binary ends.
var retroKeep = flag.Bool("ledger.keep", false, "keep the retro benchmark's generated ledgers in $TMPDIR/mediaguard-retrobench for later runs")

// retroSeed picks the generated ledger; part of the cached file's name.
const retroSeed = 20260314

// retroFixture is a generated ledger file and the bank change planted in
// it, with the hits a linear scan finds.
type retroFixture struct {
	path        string
	base, added []string
	// want maps the reference's hits to their verdict before the scan
	// (to put them back between runs).
	want map[Key]Verdict
}

var (
	retroFixturesMu sync.Mutex
	retroFixtures   = map[int]*retroFixture{}
)

func retroDir() string { return filepath.Join(os.TempDir(), "mediaguard-retrobench") }

// removeRetroFixtures deletes the generated ledgers unless -ledger.keep.
func removeRetroFixtures() {
	if *retroKeep || len(retroFixtures) == 0 {
		return
	}
	for _, fx := range retroFixtures {
		os.Remove(fx.path)
		os.Remove(fx.path + ".ok")
	}
	os.Remove(retroDir())
}

// retroFixtureFor returns the fixture of n records, generating the ledger
// file once per process (or reusing one kept by -ledger.keep).
func retroFixtureFor(b *testing.B, n int) *retroFixture {
	retroFixturesMu.Lock()
	defer retroFixturesMu.Unlock()
	if fx := retroFixtures[n]; fx != nil {
		return fx
	}
	fx := &retroFixture{path: filepath.Join(retroDir(), fmt.Sprintf("seed%d-%d.ledger", retroSeed, n))}
	if _, err := os.Stat(fx.path + ".ok"); err != nil {
		os.Remove(fx.path)
		start := time.Now()
		writeRetroLedger(b, fx.path, n)
		if err := os.WriteFile(fx.path+".ok", nil, 0o600); err != nil {
			b.Fatal(err)
		}
		st, _ := os.Stat(fx.path)
		b.Logf("generated %d records in %s: %s, %d bytes (%.0f bytes/media)", n, time.Since(start).Round(time.Second), fx.path, st.Size(), float64(st.Size())/float64(n))
	}
	rng := rand.New(rand.NewPCG(retroSeed, 1))
	fx.base = genBaseBank(rng, 5000)
	// 400 targets spread over the ledger: about half get a planted PDQ
	// line, half an exact one.
	var targets []Record
	for k := range 400 {
		targets = append(targets, genRecord(k*(n/400)+k%7, retroSeed))
	}
	fx.added = genChange(rng, targets, 1000, 1000)
	start := time.Now()
	fx.want = linearWant(b, fx.added, n)
	b.Logf("linear scan of %d generated records against the %d added lines: %d hits (%s)", n, len(fx.added), len(fx.want), time.Since(start).Round(time.Millisecond))
	retroFixtures[n] = fx
	return fx
}

// linearWant is the reference hits: every generated record asked of a
// Local holding only the added lines (from the generator, not the store,
// so the store's encoding is checked too).
func linearWant(b *testing.B, added []string, n int) map[Key]Verdict {
	l := linearLocal(b, added, false)
	const workers = 4
	var mu sync.Mutex
	want := map[Key]Verdict{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				r := genRecord(i, retroSeed)
				if _, hit := linearHit(l, &r); hit {
					mu.Lock()
					want[r.Key] = r.Verdict
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return want
}

// writeRetroLedger writes records 0..n-1 into a new embedded ledger at
// path in key order (a bulk load: in random order a 10M-record file takes
// hours, each commit rewriting pages all over the tree), through the same
// putTx as Put, without an fsync per commit. Pages split on sequential
// inserts are half full as bbolt leaves them, as many as random inserts
// leave or more: the scan reads no fewer pages than a ledger grown by
// uploads.
func writeRetroLedger(b *testing.B, path string, n int) {
	type ik struct {
		key []byte
		i   int32
	}
	s, err := OpenBolt(path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.db.NoSync = true
	// The first records intern the servers (and the bank fingerprint),
	// whose ids begin the keys to sort by.
	serverIDs := make([]uint64, len(genServers))
	if err := s.db.Update(func(tx *bolt.Tx) error {
		for i := range genServers {
			r := genRecord(i, retroSeed)
			var err error
			if serverIDs[i], _, err = s.putTx(tx, &r); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	order := make([]ik, n)
	for i := range n {
		rng := rand.New(rand.NewPCG(uint64(i), retroSeed))
		order[i] = ik{recordKey(serverIDs[i%len(genServers)], genMediaID(rng)), int32(i)}
	}
	slices.SortFunc(order, func(a, b ik) int { return bytes.Compare(a.key, b.key) })
	const chunk = 50_000
	for lo := 0; lo < n; lo += chunk {
		err := s.db.Update(func(tx *bolt.Tx) error {
			for _, o := range order[lo:min(lo+chunk, n)] {
				r := genRecord(int(o.i), retroSeed)
				sid, _, err := s.putTx(tx, &r)
				if err != nil {
					return err
				}
				if !bytes.Equal(recordKey(sid, r.Key.ID), o.key) {
					return fmt.Errorf("record %d: server %s has id %d, not the one sorted by", o.i, r.Key.Server, sid)
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
}

// memPeak samples the process's memory while a retro-scan runs.
type memPeak struct {
	stop chan struct{}
	done chan struct{}
	// Baselines and peaks: heap objects (runtime/metrics
	// /memory/classes/heap/objects:bytes, live and not yet swept), the
	// runtime's memory from the OS (/memory/classes/total:bytes less
	// heap/released: MemStats.Sys less HeapReleased), and the anonymous
	// resident memory (RssAnon in /proc/self/status: everything but the
	// ledger file's pages that bbolt's mmap maps in).
	heap0, heapMax, rt0, rtMax, anon0, anonMax uint64
	// rss0 is VmRSS before; VmHWM is reset to it (clear_refs 5) so that
	// VmHWM after is the peak resident memory during the scan, file
	// pages included.
	rss0 uint64
}

func readRuntime() (heap, rt uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64() - s[2].Value.Uint64()
}

// procStatus reads fields of /proc/self/status in bytes; 0 when absent.
func procStatus(fields ...string) []uint64 {
	out := make([]uint64, len(fields))
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		for i, want := range fields {
			if name == want {
				kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
				out[i] = kb << 10
			}
		}
	}
	return out
}

func startMemPeak() *memPeak {
	runtime.GC()
	debug.FreeOSMemory()
	m := &memPeak{stop: make(chan struct{}), done: make(chan struct{})}
	m.heap0, m.rt0 = readRuntime()
	m.heapMax, m.rtMax = m.heap0, m.rt0
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	st := procStatus("RssAnon", "VmRSS")
	m.anon0, m.anonMax, m.rss0 = st[0], st[0], st[1]
	go func() {
		defer close(m.done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for tick := 0; ; tick++ {
			h, r := readRuntime()
			m.heapMax, m.rtMax = max(m.heapMax, h), max(m.rtMax, r)
			if tick%10 == 0 {
				m.anonMax = max(m.anonMax, procStatus("RssAnon")[0])
			}
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

// end stops the sampling and returns the peaks above the baselines, in
// MB: heap objects, runtime memory, anonymous RSS, and RSS including the
// mapped file (VmHWM after less VmRSS before).
func (m *memPeak) end() (heap, rt, anon, hwm float64) {
	close(m.stop)
	<-m.done
	st := procStatus("RssAnon", "VmHWM")
	m.anonMax = max(m.anonMax, st[0])
	mb := func(peak, base uint64) float64 {
		if peak < base {
			return 0
		}
		return float64(peak-base) / (1 << 20)
	}
	return mb(m.heapMax, m.heap0), mb(m.rtMax, m.rt0), mb(m.anonMax, m.anon0), mb(st[1], m.rss0)
}

// cpuTime is the process's user and system CPU time so far: on a busy
// machine (other builds on the same two cores) the CPU a scan took says
// more than its wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRetro times Book.Retro end to end (the lock, the marks, a
// Scan that reads and decodes every record, the matching, the hits'
// SetVerdict) over an embedded ledger of -ledger.records media (default
// 1M; see genRecord for the mix) after a bank gained 1,000 PDQ and 1,000
// exact entries, the change built as the service builds it
// (serviceChange). Some of the new entries were planted to hit stored
// media at PDQ distances up to the threshold and just past it, by their
// forms, embedded files and exact digests; every run's hits are checked
// against a linear scan of Local.Match over a Local holding only the new
// lines. It reports records/s and the peak memory above the baseline
// while the scan runs (see memPeak), and cpu-ms/op: the CPU time (user
// and system, both cores, the memory sampler's included) of one scan: heap-MB, runtime-MB, rssanon-MB and
// rss-MB (the last includes the ledger file's pages mapped in by bbolt,
// which are page cache, not the process's own).
//
// The ledger is generated once per process into
// $TMPDIR/mediaguard-retrobench (10M records: about 2 minutes, and 25 s
// for the linear scan) and deleted at the end unless -ledger.keep. Each
// -count run opens the file afresh, so its first scan is the first after
// a start: bbolt's mmap faults every page in (about 1.5 s of 10M's 4 s);
// -benchtime 1x times only such scans, more iterations mostly later ones:
//
//	go test -tags nodynamic -run '^$' -bench BenchmarkRetro -benchtime 1x -count 3 ./ledger/
//	go test -tags nodynamic -run '^$' -bench BenchmarkRetro -benchtime 5x -count 3 ./ledger/
//	go test -tags nodynamic -run '^$' -bench BenchmarkRetro -benchtime 1x -count 4 -timeout 1h ./ledger/ -args -ledger.records=10000000
//	go test -tags nodynamic -run '^$' -bench BenchmarkRetro -benchtime 3x -count 2 -timeout 1h ./ledger/ -args -ledger.records=10000000
func BenchmarkRetro(b *testing.B) {
	n := *benchRecords
	fx := retroFixtureFor(b, n)
	s, err := OpenBolt(fx.path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ch, local := serviceChange(b, fx.base, fx.added, "", false)
	book := NewBook(BookConfig{Store: s, Matcher: local, Fingerprint: local.Fingerprint})
	defer book.Close()
	ctx := context.Background()
	var (
		took, cpu              time.Duration
		scanned                int
		heap, rt, anon, rssHWM float64
	)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		// Put the ledger back as it was before the change: the hits of the
		// last run clean again, the consistency mark at the change's From,
		// and a change ID not scanned yet.
		for k, v := range fx.want {
			if _, err := s.SetVerdict(ctx, k, v, "", genBanks); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.SetMeta(ctx, metaConsistent, ch.From); err != nil {
			b.Fatal(err)
		}
		ch.ID = fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i)
		got := map[Key]bool{}
		mp := startMemPeak()
		cpu0 := cpuTime()
		start := time.Now()
		b.StartTimer()
		st, err := book.Retro(ctx, ch, func(h Hit) { got[h.Record.Key] = true }, nil)
		b.StopTimer()
		took += time.Since(start)
		cpu += cpuTime() - cpu0
		h, r, a, w := mp.end()
		heap, rt, anon, rssHWM = max(heap, h), max(rt, r), max(anon, a), max(rssHWM, w)
		if err != nil {
			b.Fatal(err)
		}
		scanned += st.Scanned
		if st.CatchUp || st.Skipped || st.Scanned != n || st.Hits != len(fx.want) {
			b.Fatalf("retro-scan %+v; want %d scanned and %d hits, not a catch-up", st, n, len(fx.want))
		}
		for k := range fx.want {
			if !got[k] {
				b.Fatalf("the linear scan hits %s, the retro-scan did not", k)
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(scanned)/took.Seconds(), "records/s")
	b.ReportMetric(float64(len(fx.want)), "hits")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
	b.ReportMetric(heap, "heap-MB")
	b.ReportMetric(rt, "runtime-MB")
	b.ReportMetric(anon, "rssanon-MB")
	b.ReportMetric(rssHWM, "rss-MB")
}
