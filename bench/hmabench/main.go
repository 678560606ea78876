// Command hmabench measures the HMA-compatible surface (mediaguard_hma)
// inside a real Caddy (bin/caddy) on loopback, in one run:
//
//   - GET /m/lookup with 1M PDQ hashes banked: p50/p90/p99 latency, one
//     request at a time, over a kept-alive connection (Go's default client,
//     which policyserv uses) and over a new connection per lookup (what HMA
//     forces: it closes after every answer);
//   - POST /h/hash of a 1 MB JPEG, interleaved request by request with the
//     proxy's hashing of the same bytes in this process (Proxy.ScanFile: the
//     same decoders, forms, variants and worker processes), so drift on a
//     shared machine hits both alike; the difference is what the surface
//     adds (goal ≤ 2 ms).
//
// Build bin/caddy first (make build).
//
//	go run -tags nodynamic ./bench/hmabench [-caddy bin/caddy] [-bank 1000000] [-lookups 3000] [-hashes 40]
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/mediaguard/mediaguard/bench/internal/harness"
	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

var (
	caddyBin = flag.String("caddy", "bin/caddy", "Caddy binary built with mediaguard")
	bankSize = flag.Int("bank", 1_000_000, "PDQ hashes in the bank")
	lookups  = flag.Int("lookups", 3000, "lookups per connection mode")
	hashes   = flag.Int("hashes", 40, "/h/hash requests (and as many in-process scans)")
)

func main() {
	flag.Parse()
	dir, err := os.MkdirTemp("", "hmabench-")
	check(err)
	defer os.RemoveAll(dir)
	fmt.Printf("machine: %s, %d CPUs\n", harness.CPUModel(), harness.NProc())

	bank := filepath.Join(dir, "bench.bank")
	var queries []string
	check(harness.WriteBank(bank, func(w *bufio.Writer) { queries = fillBank(w, *bankSize) }))
	spool := filepath.Join(dir, "spool")
	check(os.Mkdir(spool, 0o700))
	port := freePort()
	t0 := time.Now()
	caddy, err := harness.StartCaddy(*caddyBin, dir, harness.Caddyfile{
		Admin:      "off",
		Mediaguard: []string{"bank BENCH " + bank, "temp_dir " + spool},
		// The plain and guarded sites harness always writes are not used.
		Plain: freePort(), Guarded: freePort(), Upstream: "127.0.0.1:9",
		Extra: fmt.Sprintf("http://127.0.0.1:%d {\n\tbind 127.0.0.1\n\tmediaguard_hma\n}\n", port),
	}, filepath.Join(os.TempDir(), "hmabench-caddy.log"))
	check(err)
	defer caddy.Stop()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	check(harness.WaitHealthy(context.Background(), http.DefaultClient, base+"/readyz", 120*time.Second, caddy.Exited))
	fmt.Printf("caddy: ready with %d PDQ banked in %v\n", *bankSize, time.Since(t0).Round(time.Millisecond))

	benchLookup(base, queries)
	benchHash(base, dir)
}

func benchLookup(base string, queries []string) {
	for _, conn := range []string{"keep-alive", "new connection"} {
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableKeepAlives: conn != "keep-alive"}}
		for i := range 200 { // warm up
			get(c, base+"/m/lookup?signal_type=pdq&signal="+queries[i%len(queries)])
		}
		var lat []time.Duration
		matched := 0
		for i := range *lookups {
			t := time.Now()
			body := get(c, base+"/m/lookup?signal_type=pdq&signal="+queries[i%len(queries)])
			lat = append(lat, time.Since(t))
			if len(body) > 3 {
				matched++
			}
		}
		fmt.Printf("/m/lookup, %d PDQ banked, %s, %d lookups (%d matched): p50 %v, p90 %v, p99 %v\n",
			*bankSize, conn, len(lat), matched, pct(lat, 50), pct(lat, 90), pct(lat, 99))
	}
}

func benchHash(base, dir string) {
	img := benchJPEG()
	path := filepath.Join(dir, "pic.jpg")
	check(os.WriteFile(path, img, 0o600))
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("photo", "x")
	fw.Write(img)
	mw.Close()
	// The proxy's hashing in this process, configured as Caddy's is by
	// default (pdq_search default, worker processes, cores - 1 slots).
	p, err := mediaproxy.New(mediaproxy.Config{Matcher: nothing{}, TempDir: dir})
	check(err)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	post := func() {
		resp, err := c.Post(base+"/h/hash", mw.FormDataContentType(), bytes.NewReader(body.Bytes()))
		check(err)
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(out) != 75 {
			fatalf("/h/hash: %d %s", resp.StatusCode, out)
		}
	}
	scan := func() {
		f, err := os.Open(path)
		check(err)
		defer f.Close()
		fs, err := p.ScanFile(context.Background(), f, int64(len(img)), "")
		check(err)
		if fs.Query.Has&matcher.HasPDQ == 0 {
			fatalf("no PDQ")
		}
	}
	for range 3 { // warm up both (worker processes start)
		post()
		scan()
	}
	var viaHTTP, inProcess, added []time.Duration
	timed := func(f func()) time.Duration { t := time.Now(); f(); return time.Since(t) }
	for i := range *hashes {
		// Alternate which goes first, so neither always meets a warm or
		// a busy machine.
		var h, s time.Duration
		if i%2 == 0 {
			h, s = timed(post), timed(scan)
		} else {
			s, h = timed(scan), timed(post)
		}
		viaHTTP, inProcess, added = append(viaHTTP, h), append(inProcess, s), append(added, h-s)
	}
	h, s := pct(viaHTTP, 50), pct(inProcess, 50)
	fmt.Printf("/h/hash %.2f MB JPEG, %d pairs: p50 %v through Caddy, hashing alone (ScanFile) p50 %v, ratio %.3f; added per pair p50 %v (goal ≤ 2ms)\n",
		float64(len(img))/1e6, len(viaHTTP), h, s, float64(h)/float64(s), pct(added, 50))
}

// benchJPEG is about 1 MB of JPEG (bench/mgbench's upload picture): a
// 1600×1200 picture with sensor-like noise at quality 93.
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

// fillBank writes n random PDQ hashes and returns the queries: one in 500
// near a banked hash (distance 8), 2000 random.
func fillBank(w *bufio.Writer, n int) []string {
	rng := rand.New(rand.NewPCG(3, 3))
	var queries []string
	for i := range n {
		var h pdq.Hash
		for j := range h {
			h[j] = rng.Uint64()
		}
		fmt.Fprintf(w, "pdq %s\n", h)
		if i%(n/500+1) == 0 {
			h[0] ^= 0xff
			queries = append(queries, h.String())
		}
	}
	for range 2000 {
		var h pdq.Hash
		for j := range h {
			h[j] = rng.Uint64()
		}
		queries = append(queries, h.String())
	}
	rng.Shuffle(len(queries), func(i, j int) { queries[i], queries[j] = queries[j], queries[i] })
	return queries
}

type nothing struct{}

func (nothing) Match(context.Context, matcher.Query) (matcher.Verdict, error) {
	return matcher.Verdict{}, nil
}

func get(c *http.Client, u string) []byte {
	resp, err := c.Get(u)
	check(err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	check(err)
	if resp.StatusCode != 200 {
		fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return b
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func freePort() int {
	p, err := harness.FreePort()
	check(err)
	return p
}

func check(err error) {
	if err != nil {
		fatalf("%v", err)
	}
}

func fatalf(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "hmabench: "+f+"\n", a...)
	os.Exit(1)
}
