package hmaapi

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// benchJPEG is about 1 MB of JPEG: a 1600×1200 picture with sensor-like
// noise at quality 93 (bench/mgbench's upload picture).
func benchJPEG() []byte {
	pic := testimg.Photo(5, 1600, 1200)
	rng := rand.New(rand.NewPCG(5, 5))
	for i := range pic.Pix {
		if i%4 != 3 {
			pic.Pix[i] = uint8(min(255, max(0, int(pic.Pix[i])+rng.IntN(61)-30)))
		}
	}
	return testimg.JPEG(pic, 93)
}

// BenchmarkHash1MB compares POST /h/hash of a 1 MB JPEG over loopback HTTP
// (multipart framing, spooling, the proxy's hashing, the answer) with the
// proxy's hashing of the same bytes alone (Proxy.ScanFile: the same
// decoders, forms, variants and worker processes). Each iteration does
// both, in alternating order, so drift on a shared machine hits both
// alike; it reports the medians of each (scan-ms, http-ms) and of the
// per-iteration difference (added-ms; goal ≤ 2 ms). ns/op is the pair.
func BenchmarkHash1MB(b *testing.B) {
	e := newEnv(b, envOpt{})
	// The proxy as a default configuration builds it (memory_buffer 4 MB,
	// pdq_search default, worker processes), not the tests' small one.
	p, err := mediaproxy.New(mediaproxy.Config{Matcher: e.guard, TempDir: b.TempDir(), Runner: testRunner})
	if err != nil {
		b.Fatal(err)
	}
	h := mustNew(b, Config{Matcher: e.guard, Proxy: p})
	img := benchJPEG()
	path := filepath.Join(b.TempDir(), "pic.jpg")
	if err := os.WriteFile(path, img, 0o600); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("photo", "x")
	fw.Write(img)
	mw.Close()
	ct := mw.FormDataContentType()
	scan := func() time.Duration {
		t := time.Now()
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		fs, err := p.ScanFile(context.Background(), f, int64(len(img)), "")
		f.Close()
		if err != nil || fs.Query.Has&matcher.HasPDQ == 0 {
			b.Fatalf("scan: %v", err)
		}
		return time.Since(t)
	}
	post := func() time.Duration {
		t := time.Now()
		resp, err := client.Post(srv.URL+"/h/hash", ct, bytes.NewReader(body.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(out) != 75 {
			b.Fatalf("%d %s", resp.StatusCode, out)
		}
		return time.Since(t)
	}
	scan() // the worker processes start
	post()
	var scans, posts, added []time.Duration
	i := 0
	b.SetBytes(2 * int64(len(img)))
	for b.Loop() {
		var s, h time.Duration
		if i%2 == 0 {
			s, h = scan(), post()
		} else {
			h, s = post(), scan()
		}
		i++
		scans, posts, added = append(scans, s), append(posts, h), append(added, h-s)
	}
	ms := func(d []time.Duration) float64 { return float64(percentile(d, 50)) / 1e6 }
	b.ReportMetric(ms(scans), "scan-ms")
	b.ReportMetric(ms(posts), "http-ms")
	b.ReportMetric(ms(added), "added-ms")
}

// percentile is the p-th percentile of d (d is sorted in place).
func percentile(d []time.Duration, p int) time.Duration {
	slices.Sort(d)
	return d[min(len(d)-1, len(d)*p/100)]
}

// lookupBench is a handler over one bank of a million random PDQ hashes
// and the queries to send it: one in 500 within distance 8 of a banked
// hash, the rest random (no match), as bench/mgbench's lookup API run.
var lookupBench struct {
	once    sync.Once
	h       http.Handler
	queries []string
	err     error
}

func lookupBenchSetup(b *testing.B) {
	lookupBench.once.Do(func() {
		dir, err := os.MkdirTemp("", "hmaapi-bench-")
		if err != nil {
			lookupBench.err = err
			return
		}
		path := filepath.Join(dir, "bench.bank")
		f, err := os.Create(path)
		if err != nil {
			lookupBench.err = err
			return
		}
		w := bufio.NewWriterSize(f, 1<<20)
		rng := rand.New(rand.NewPCG(3, 3))
		const n = 1_000_000
		var queries []string
		for i := range n {
			var h pdq.Hash
			for j := range h {
				h[j] = rng.Uint64()
			}
			fmt.Fprintf(w, "pdq %s\n", h)
			if i%(n/500) == 0 {
				queries = append(queries, flip(h, 8).String())
			}
		}
		for range 2000 {
			var h pdq.Hash
			for j := range h {
				h[j] = rng.Uint64()
			}
			queries = append(queries, h.String())
		}
		w.Flush()
		f.Close()
		local, err := matcher.NewLocal(matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "BENCH", Path: path}}, ReloadInterval: -1})
		os.RemoveAll(dir)
		if err != nil {
			lookupBench.err = err
			return
		}
		g, err := matcher.NewGuard(matcher.GuardConfig{Local: local})
		if err != nil {
			lookupBench.err = err
			return
		}
		rng.Shuffle(len(queries), func(i, j int) { queries[i], queries[j] = queries[j], queries[i] })
		lookupBench.h, lookupBench.err = New(Config{Matcher: g, Local: local, Remote: g})
		lookupBench.queries = queries
	})
	if lookupBench.err != nil {
		b.Fatal(lookupBench.err)
	}
}

// BenchmarkLookup1M: GET /m/lookup over loopback HTTP with 1M PDQ hashes
// banked, one request at a time, reporting p50/p90/p99 latency beside the
// mean; conn=keepalive reuses the connection (Go's default client, which
// policyserv uses), conn=new opens one per lookup (as HMA forces: it
// closes after every answer). Goal: p50 ≤ 0.5 ms.
func BenchmarkLookup1M(b *testing.B) {
	lookupBenchSetup(b)
	srv := httptest.NewServer(lookupBench.h)
	defer srv.Close()
	for _, conn := range []string{"keepalive", "new"} {
		b.Run("conn="+conn, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableKeepAlives: conn == "new"}}
			defer client.CloseIdleConnections()
			var lat []time.Duration
			i := 0
			for b.Loop() {
				q := lookupBench.queries[i%len(lookupBench.queries)]
				i++
				t := time.Now()
				resp, err := client.Get(srv.URL + "/m/lookup?signal_type=pdq&signal=" + q)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(t))
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			pct := func(p int) float64 { return float64(percentile(lat, p)) }
			b.ReportMetric(pct(50), "p50-ns")
			b.ReportMetric(pct(90), "p90-ns")
			b.ReportMetric(pct(99), "p99-ns")
		})
	}
}
