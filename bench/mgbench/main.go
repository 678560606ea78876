// Command mgbench measures mediaguard inside a real Caddy against plain
// reverse_proxy to the same upstream, in one run, on this machine:
//
//   - download throughput of a 10 MB known-clean media (mediaguard vs plain)
//   - p50 latency of a 1 MB clean image upload (mediaguard vs plain), next
//     to the in-process hashing time of that image
//   - the lookup API with 1M PDQ hashes banked: p50 latency and requests/s,
//     and Caddy's RSS holding the bank
//   - peak RSS during 50 concurrent 40 MB uploads (spooled to disk)
//
// It starts bin/caddy itself (build it first with `make build`) and an
// in-process upstream that answers like a homeserver's media repository.
// Everything runs on loopback and every loop is bounded in count and time.
//
//	go run ./bench/mgbench [-caddy bin/caddy] [-duration 5s]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mediaguard/mediaguard/bench/internal/harness"
	"github.com/mediaguard/mediaguard/hashing"
	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/hashing/worker"
	"github.com/mediaguard/mediaguard/internal/testimg"
)

var (
	caddyBin = flag.String("caddy", "bin/caddy", "Caddy binary built with mediaguard")
	duration = flag.Duration("duration", 5*time.Second, "length of each throughput run")
	bankSize = flag.Int("bank", 1_000_000, "PDQ hashes in the lookup bank")
	skip     = flag.String("skip", "", "comma-separated scenarios to skip: download,upload,lookup,memory")
)

func main() {
	flag.Parse()
	dir, err := os.MkdirTemp("", "mgbench-")
	check(err)
	defer os.RemoveAll(dir)

	up := startUpstream()
	fmt.Printf("machine: %d CPUs; upstream %s\n", harness.NProc(), up)

	bank := filepath.Join(dir, "bench.bank")
	t0 := time.Now()
	queries := writeBank(bank, *bankSize)
	fmt.Printf("bank: %d PDQ hashes written in %v\n", *bankSize, time.Since(t0).Round(time.Millisecond))

	plain, guarded, lookup := freePort(), freePort(), freePort()
	spool := filepath.Join(dir, "spool")
	check(os.Mkdir(spool, 0o700))
	t0 = time.Now()
	caddy, err := harness.StartCaddy(*caddyBin, dir, harness.Caddyfile{
		Admin:      "off",
		Mediaguard: []string{"bank BENCH " + bank, "max_upload_size 64MB", "temp_dir " + spool},
		Plain:      plain, Guarded: guarded, Upstream: up,
		Extra: fmt.Sprintf("http://127.0.0.1:%d {\n\tmediaguard_lookup\n}\n", lookup),
	}, filepath.Join(os.TempDir(), "mgbench-caddy.log"))
	check(err)
	defer caddy.Stop()
	check(harness.WaitHealthy(context.Background(), http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/", lookup), 120*time.Second, caddy.Exited))
	fmt.Printf("caddy: started and loaded the bank in %v; RSS %s\n", time.Since(t0).Round(time.Millisecond), rss(caddy.PID))
	pURL := fmt.Sprintf("http://127.0.0.1:%d", plain)
	gURL := fmt.Sprintf("http://127.0.0.1:%d", guarded)

	skipped := func(s string) bool { return slices.Contains(strings.Split(*skip, ","), s) }
	if !skipped("download") {
		benchDownload(pURL, gURL)
	}
	if !skipped("upload") {
		benchUpload(pURL, gURL)
	}
	if !skipped("lookup") {
		benchLookup(fmt.Sprintf("http://127.0.0.1:%d/", lookup), queries, caddy.PID)
	}
	if !skipped("memory") {
		benchMemory(gURL, caddy.PID, spool)
	}
}

// --- upstream: a homeserver's media repository, minimal ---

var (
	mediaMu sync.RWMutex
	media   = map[string][]byte{}
	nextID  atomic.Int64
)

func startUpstream() string {
	addr, err := harness.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/upload"):
			n, err := io.Copy(io.Discard, r.Body)
			if err != nil || n != r.ContentLength {
				http.Error(w, `{"errcode":"M_UNKNOWN"}`, 400)
				return
			}
			fmt.Fprintf(w, `{"content_uri":"mxc://bench.local/u%d"}`, nextID.Add(1))
		case strings.Contains(r.URL.Path, "/download/"):
			id := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
			mediaMu.RLock()
			b, ok := media[id]
			mediaMu.RUnlock()
			if !ok {
				http.Error(w, `{"errcode":"M_NOT_FOUND"}`, 404)
				return
			}
			w.Header().Set("Content-Type", "video/mp4")
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			w.Write(b)
		default:
			http.NotFound(w, r)
		}
	}))
	check(err)
	return addr
}

// --- scenarios ---

func benchDownload(pURL, gURL string) {
	big := randomBytes(10<<20, 1)
	mediaMu.Lock()
	media["big"] = big
	mediaMu.Unlock()
	path := "/_matrix/media/v3/download/bench.local/big"
	// First request through mediaguard judges it (streamed: 10 MB is
	// under the 16 MB buffer, so buffered and hashed), later ones are known.
	get(gURL + path)
	// Alternate short rounds so drift on a shared 2-core machine (the
	// load generator competes with Caddy) hits both sides alike; compare
	// medians.
	const rounds = 7
	for _, conc := range []int{1, 4} {
		var ps, gs []float64
		for range rounds {
			ps = append(ps, throughput(pURL+path, conc, *duration/rounds))
			gs = append(gs, throughput(gURL+path, conc, *duration/rounds))
		}
		p, g := medianF(ps), medianF(gs)
		fmt.Printf("download 10MB known-clean, %d conn, median of %d alternating rounds: plain %.0f MB/s, mediaguard %.0f MB/s, ratio %.3f\n", conc, rounds, p, g, g/p)
	}
}

func medianF(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func throughput(url string, conc int, d time.Duration) float64 {
	var total atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				total.Add(drain(url))
			}
		}()
	}
	wg.Wait()
	return float64(total.Load()) / d.Seconds() / 1e6
}

// drain GETs url and discards the body without buffering it, so the load
// generator's own garbage does not dominate the measurement.
func drain(url string) int64 {
	resp, err := http.Get(url)
	check(err)
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	check(err)
	if resp.StatusCode != 200 {
		fatalf("GET %s: %d", url, resp.StatusCode)
	}
	return n
}

func benchUpload(pURL, gURL string) {
	// About 1 MB of JPEG: a 1600×1200 picture with sensor-like noise.
	pic := testimg.Photo(5, 1600, 1200)
	rng := rand.New(rand.NewPCG(5, 5))
	for i := range pic.Pix {
		if i%4 != 3 {
			pic.Pix[i] = uint8(min(255, max(0, int(pic.Pix[i])+rng.IntN(61)-30)))
		}
	}
	img := testimg.JPEG(pic, 93)
	// Interleave plain upload, guarded upload and the in-process hashing
	// of the same bytes (digests + decode + PDQ) request by request, so
	// drift on a shared 2-core machine hits all three alike.
	var p, g, hashTimes []time.Duration
	for range 60 {
		p = append(p, uploadLatencies(pURL, img, 1)...)
		g = append(g, uploadLatencies(gURL, img, 1)...)
		t := time.Now()
		d := hashing.NewDigester()
		d.Write(img)
		d.Sum()
		// What the proxy runs by default: decoded as viewed, every form,
		// and the pdq_search default variants of each.
		worker.HashViewed(bytes.NewReader(img), pdq.DecodeOptions{Viewed: true}, pdq.Options{Workers: 1, Search: pdq.SearchDefault})
		hashTimes = append(hashTimes, time.Since(t))
	}
	h := median(hashTimes)
	fmt.Printf("upload %.2f MB JPEG, p50: plain %v, mediaguard %v, added %v; in-process hashing %v; added minus hashing %v (budget 5ms)\n",
		float64(len(img))/1e6, median(p), median(g), median(g)-median(p), h, median(g)-median(p)-h)
}

func uploadLatencies(base string, body []byte, n int) []time.Duration {
	var out []time.Duration
	for range n {
		t := time.Now()
		resp, err := http.Post(base+"/_matrix/media/v3/upload?filename=x.jpg", "image/jpeg", bytes.NewReader(body))
		check(err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			fatalf("upload answered %d", resp.StatusCode)
		}
		out = append(out, time.Since(t))
	}
	return out
}

func benchLookup(url string, queries []string, pid int) {
	bodies := make([][]byte, len(queries))
	for i, q := range queries {
		bodies[i], _ = json.Marshal(map[string]any{"hashes": map[string]string{"pdq": q, "md5": fmt.Sprintf("%032x", i)}, "mediaType": "m.image", "userId": "@bench:local"})
	}
	// p50 latency from one connection, then throughput at 8 connections.
	var lat []time.Duration
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for i := range 2000 {
		t := time.Now()
		post(client, url, bodies[i%len(bodies)])
		lat = append(lat, time.Since(t))
	}
	var n atomic.Int64
	deadline := time.Now().Add(*duration)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; time.Now().Before(deadline); i++ {
				post(client, url, bodies[i%len(bodies)])
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	fmt.Printf("lookup API, %d PDQ banked: p50 %v, p99 %v (1 conn); %.0f requests/s (8 conns); caddy RSS %s\n",
		*bankSize, lat[len(lat)/2], lat[len(lat)*99/100], float64(n.Load())/duration.Seconds(), rss(pid))
}

func post(c *http.Client, url string, body []byte) {
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	check(err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		fatalf("lookup answered %d", resp.StatusCode)
	}
}

func benchMemory(gURL string, pid int, spool string) {
	const n, size = 50, 40 << 20
	body := randomBytes(size, 2)
	before := hwm(pid)
	var wg sync.WaitGroup
	var failed atomic.Int64
	t := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(gURL+"/_matrix/media/v3/upload", "application/octet-stream", bytes.NewReader(body))
			if err != nil {
				failed.Add(1)
				fmt.Fprintf(os.Stderr, "upload failed: %v\n", err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failed.Add(1)
				fmt.Fprintf(os.Stderr, "upload answered %d: %.200s\n", resp.StatusCode, b)
			}
		}()
	}
	wg.Wait()
	left, _ := os.ReadDir(spool)
	fmt.Printf("memory: %d concurrent %d MB uploads in %v, %d failed; caddy peak RSS %s (before %s); spool files left %d\n",
		n, size>>20, time.Since(t).Round(time.Millisecond), failed.Load(), hwm(pid), before, len(left))
}

// --- helpers ---

// randomBytes is incompressible content, like encrypted media.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	r.Read(b)
	return b
}

func writeBank(path string, n int) []string {
	var queries []string
	check(harness.WriteBank(path, func(w *bufio.Writer) { queries = fillBank(w, n) }))
	return queries
}

func fillBank(w *bufio.Writer, n int) []string {
	rng := rand.New(rand.NewPCG(3, 3))
	var queries []string
	for i := range n {
		var h pdq.Hash
		for j := range h {
			h[j] = rng.Uint64()
		}
		fmt.Fprintf(w, "pdq %s\n", h)
		if i%(n/500+1) == 0 { // some queries near banked hashes
			h[0] ^= 0x0f0f
			queries = append(queries, h.String())
		}
	}
	for range 500 {
		var h pdq.Hash
		for j := range h {
			h[j] = rng.Uint64()
		}
		queries = append(queries, h.String())
	}
	return queries
}

func get(url string) []byte {
	resp, err := http.Get(url)
	check(err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	check(err)
	if resp.StatusCode != 200 {
		fatalf("GET %s: %d", url, resp.StatusCode)
	}
	return b
}

// procStatus formats a kB field of /proc/PID/status, "?" if unreadable.
func procStatus(pid int, key string) string {
	kb, ok := harness.ProcKB(pid, key)
	if !ok {
		return "?"
	}
	return harness.MB(kb)
}

func rss(pid int) string { return procStatus(pid, "VmRSS") }
func hwm(pid int) string { return procStatus(pid, "VmHWM") }

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
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
	fmt.Fprintf(os.Stderr, "mgbench: "+f+"\n", a...)
	os.Exit(1)
}
