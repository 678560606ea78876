// Command mgload is mediaguard's load test: it drives mixed
// Matrix media traffic through a real Caddy for a bounded time at
// increasing concurrency, once against a mediaguard + reverse_proxy site
// and once against a plain reverse_proxy site to the same in-process
// upstream, and reports throughput, p50/p99 latency per request kind,
// errors, listed media let through, and Caddy's RSS and open files.
//
// The mix, drawn per request: 1% listed media (half uploads, half
// downloads), which mediaguard must refuse (403 and 404); of the rest, 70%
// downloads of known media (judged once before measuring, so mediaguard's
// verdict memory passes them straight through), 20% downloads of unknown
// media (a fresh media ID each: buffered and hashed on first sight) and
// 10% image uploads (JPEG and PNG of a few hundred KB: digests and PDQ).
// The plain site gets the same mix; there the listed media are simply
// served.
//
// The goals it checks: no errors and no listed item
// missed at 200 connections, Caddy RSS under 300 MB, and the p99 latency of
// known downloads through mediaguard within 1.2× of plain reverse_proxy at
// the same load.
//
// It starts bin/caddy itself (build it first with `make build`) with
// `homeserver` set, so blocks resolve their requester with whoami like a
// real deployment, and an audit log. By default each level is a closed
// loop (N connections, each sending its next request when the last one is
// answered); -rate paces both sites at the same requests/s instead, with N
// as the bound on requests in flight. Everything runs on loopback, every
// loop is bounded in time, and Caddy and the temp files are removed on exit
// and on Ctrl-C.
//
//	go run ./bench/mgload [-caddy bin/caddy] [-levels 10,50,100,200] [-duration 10s] [-rate 0]
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mediaguard/mediaguard/bench/internal/harness"
	"github.com/mediaguard/mediaguard/internal/testimg"
)

var (
	caddyBin   = flag.String("caddy", "bin/caddy", "Caddy binary built with mediaguard")
	duration   = flag.Duration("duration", 10*time.Second, "length of each measured run (one per site and level)")
	levelsFlag = flag.String("levels", "10,50,100,200", "comma-separated concurrency levels (connections)")
	rate       = flag.Float64("rate", 0, "requests/s for both sites (open loop, at most LEVEL in flight); 0 = closed loop")
	nKnown     = flag.Int("known", 50, "known media items (judged once before measuring)")
	nUploads   = flag.Int("uploads", 32, "distinct images in the upload pool")
	mixFlag    = flag.String("mix", "70,20,10", "weights of known downloads, unknown downloads and uploads")
	listedPct  = flag.Float64("listed", 1, "percent of all requests that are listed media (half uploads, half downloads)")
	opaque     = flag.Float64("opaque", 0, "fraction of known and unknown media served as application/octet-stream (encrypted attachments)")
	filler     = flag.Int("filler", 10000, "random sha256 and PDQ entries banked besides the listed media")
	rssLimit   = flag.Float64("rss-limit", 300, "goal: Caddy peak RSS below this many MB")
	ratioLimit = flag.Float64("ratio-limit", 1.2, "goal: p99(known download, mediaguard) / p99(known download, plain) at most this")
	goalLevel  = flag.Int("goal-level", 200, "concurrency at which errors and missed listed items must be 0 (the highest level if absent)")
	strict     = flag.Bool("strict", false, "exit with status 1 when a goal is not met")
	memLimit   = flag.String("gomemlimit", "", "GOMEMLIMIT for Caddy only (e.g. 250MiB); empty = Caddy's default")
	maxProcs   = flag.Int("gomaxprocs", 0, "GOMAXPROCS for Caddy only; 0 = Caddy's default")
	goGC       = flag.String("gogc", "", "GOGC for Caddy only (e.g. 400 or off); empty = Caddy's default")
	mgOptions  = flag.String("options", "", "extra lines for the mediaguard global block, ';'-separated (e.g. \"max_concurrent_hashing 2\")")
	admin      = flag.String("admin", "off", "Caddy's admin endpoint (e.g. 127.0.0.1:2999 for /debug/pprof/ while it runs)")
)

const (
	serverName = "hs.example"
	nTokens    = 2000 // access tokens in use: whoami keeps being asked as new ones appear
)

// --- request kinds ---

type class int

const (
	known class = iota
	unknown
	upload
	listedUp
	listedDown
	nClasses
)

var classNames = [nClasses]string{"known", "unknown", "upload", "listed_upload", "listed_download"}

// mix holds the weights of known, unknown and upload (-mix).
var mix [3]int

// pick draws a request kind: -listed percent listed (half each way), the
// rest by the -mix weights (70/20/10).
func pick(rng *rand.Rand) class {
	if rng.Float64()*100 < *listedPct {
		if rng.IntN(2) == 0 {
			return listedUp
		}
		return listedDown
	}
	r := rng.IntN(mix[0] + mix[1] + mix[2])
	switch {
	case r < mix[0]:
		return known
	case r < mix[0]+mix[1]:
		return unknown
	}
	return upload
}

// --- media ---

type item struct {
	body []byte
	ct   string
	clen string
}

func newItem(b []byte, ct string) item { return item{b, ct, strconv.Itoa(len(b))} }

var (
	knownMedia   []item // served as k<i>
	unknownMedia []item // served as u<n>, n % len; every n is used once
	listedMedia  []item // served as l<n>, n % len
	uploadPool   []item // distinct images to upload
	listedImages []item // listed media that are images: the listed uploads

	unknownSeq atomic.Int64
	listedSeq  atomic.Int64
	uploadSeq  atomic.Int64
)

// bases are the clean pictures variants are made from: testimg.Photo is
// the slow part, noise and encoding are cheap.
var bases = map[[3]int]*image.NRGBA{}

func base(w, h, group int) *image.NRGBA {
	k := [3]int{w, h, group}
	if b, ok := bases[k]; ok {
		return b
	}
	b := testimg.Photo(w*7+h*13+group*101, w, h)
	bases[k] = b
	return b
}

func jpegItem(w, h, group int, seed uint64, amp, q int) item {
	return newItem(testimg.JPEG(testimg.Noisy(base(w, h, group), seed, amp), q), "image/jpeg")
}

func pngItem(w, h, group int, seed uint64, amp int) item {
	return newItem(testimg.PNG(testimg.Noisy(base(w, h, group), seed, amp)), "image/png")
}

func blob(size int, seed uint64, ct string) item {
	b := make([]byte, size)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), 'm', 'g'}).Read(b)
	return newItem(b, ct)
}

// mediaItem is the i-th item of a media repository with realistic sizes
// (50 KB–2 MB): thumbnails, photos of several sizes, a PNG, video.
func mediaItem(i int, seed uint64) item {
	if *opaque > 0 && float64((i*37)%100) < *opaque*100 {
		return blob(100<<10+int(seed%(1900<<10)), seed, "application/octet-stream")
	}
	g := i % 2
	switch i % 10 {
	case 0, 1:
		return jpegItem(400, 300, g, seed, 24, 92)
	case 2, 3:
		return jpegItem(800, 600, g, seed, 20, 88)
	case 4:
		return jpegItem(1280, 960, g, seed, 20, 90)
	case 5:
		return jpegItem(1600, 1200, g, seed, 24, 92)
	case 6:
		return jpegItem(2048, 1536, g, seed, 22, 88)
	case 7:
		return pngItem(640, 480, g, seed, 4)
	}
	return blob(200<<10+int(seed*2654435761%(1848<<10)), seed, "video/mp4")
}

func makeMedia() {
	for i := range *nKnown {
		knownMedia = append(knownMedia, mediaItem(i, uint64(1000+i)))
	}
	for i := range max(20, *nKnown/2) {
		unknownMedia = append(unknownMedia, mediaItem(i, uint64(5000+i)))
	}
	for i := range *nUploads {
		switch i % 4 {
		case 3:
			uploadPool = append(uploadPool, pngItem(480, 360, i%2, uint64(9000+i), 6))
		case 1:
			uploadPool = append(uploadPool, jpegItem(800, 600, i%2, uint64(9000+i), 22, 90))
		default:
			uploadPool = append(uploadPool, jpegItem(1024, 768, i%2, uint64(9000+i), 18, 88))
		}
	}
	listedImages = []item{
		jpegItem(800, 600, 7, 77, 20, 88),
		pngItem(480, 360, 7, 78, 6),
		jpegItem(1280, 960, 7, 79, 20, 90),
	}
	listedMedia = append(slices.Clone(listedImages), blob(600<<10, 80, "video/mp4"))
}

func describe(items []item) string {
	lo, hi, sum := math.MaxInt, 0, 0
	for _, it := range items {
		lo, hi, sum = min(lo, len(it.body)), max(hi, len(it.body)), sum+len(it.body)
	}
	return fmt.Sprintf("%d items, %s–%s, mean %s", len(items), size(lo), size(hi), size(sum/max(1, len(items))))
}

func size(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KB", n>>10)
}

// --- upstream: a homeserver's media repository and whoami ---

type upstream struct {
	whoami  atomic.Int64
	uploads atomic.Int64
	mu      sync.Mutex
	stored  map[string][]byte
	order   []string
}

// keepUploads bounds what the upstream keeps of uploads, so a long run does
// not grow the load generator.
const keepUploads = 256

func startUpstream() (string, *upstream) {
	u := &upstream{stored: map[string][]byte{}}
	addr, err := harness.Serve(u)
	check(err)
	return addr, u
}

func matrixError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errcode":%q,"error":"mgload upstream"}`, code)
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/_matrix/client/v3/account/whoami":
		tok := bearer(r)
		if tok == "" {
			matrixError(w, 401, "M_MISSING_TOKEN")
			return
		}
		u.whoami.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"user_id":"@%s:%s"}`, tok, serverName)
	case r.Method == http.MethodPost && p == "/_matrix/media/v3/upload":
		if r.ContentLength < 0 { // Synapse refuses chunked uploads
			matrixError(w, 411, "M_UNKNOWN")
			return
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		if err != nil || int64(len(b)) != r.ContentLength {
			matrixError(w, 400, "M_UNKNOWN")
			return
		}
		id := "up" + strconv.FormatInt(u.uploads.Add(1), 10)
		u.mu.Lock()
		u.stored[id] = b
		u.order = append(u.order, id)
		if len(u.order) > keepUploads {
			delete(u.stored, u.order[0])
			u.order = u.order[1:]
		}
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"content_uri":"mxc://%s/%s"}`, serverName, id)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		rest, ok := strings.CutPrefix(p, "/_matrix/media/v3/download/")
		if !ok {
			if rest, ok = strings.CutPrefix(p, "/_matrix/client/v1/media/download/"); ok && bearer(r) == "" {
				matrixError(w, 401, "M_MISSING_TOKEN")
				return
			}
		}
		server, id, _ := strings.Cut(rest, "/")
		id, _, _ = strings.Cut(id, "/") // an optional file name
		it, found := u.lookup(id)
		if !ok || server != serverName || !found {
			matrixError(w, 404, "M_NOT_FOUND")
			return
		}
		h := w.Header()
		h.Set("Content-Type", it.ct)
		h.Set("Content-Length", it.clen)
		h.Set("Content-Disposition", "inline")
		h.Set("Cache-Control", "public,max-age=86400,s-maxage=86400")
		w.Write(it.body)
	default:
		matrixError(w, 404, "M_UNRECOGNIZED")
	}
}

func (u *upstream) lookup(id string) (item, bool) {
	if strings.HasPrefix(id, "up") {
		u.mu.Lock()
		b, ok := u.stored[id]
		u.mu.Unlock()
		return newItem(b, "application/octet-stream"), ok
	}
	if len(id) < 2 {
		return item{}, false
	}
	n, err := strconv.Atoi(id[1:])
	if err != nil || n < 0 {
		return item{}, false
	}
	switch id[0] {
	case 'k':
		if n < len(knownMedia) {
			return knownMedia[n], true
		}
	case 'u':
		return unknownMedia[n%len(unknownMedia)], true
	case 'l':
		return listedMedia[n%len(listedMedia)], true
	}
	return item{}, false
}

func bearer(r *http.Request) string {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// --- bank ---

func writeBank(path string) {
	check(harness.WriteBank(path, fillBank))
}

func fillBank(w *bufio.Writer) {
	fmt.Fprintln(w, "# mgload: the listed media by SHA-256, then random filler entries")
	for i, it := range listedMedia {
		sum := sha256.Sum256(it.body)
		fmt.Fprintf(w, "sha256 %s mgload-listed-%d\n", hex.EncodeToString(sum[:]), i)
	}
	rng := rand.New(rand.NewPCG(11, 11))
	var b [32]byte
	for range *filler {
		for j := 0; j < 32; j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				b[j+k] = byte(v >> (8 * k))
			}
		}
		fmt.Fprintf(w, "sha256 %s filler\n", hex.EncodeToString(b[:]))
		for j := 0; j < 32; j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				b[j+k] = byte(v >> (8 * k))
			}
		}
		fmt.Fprintf(w, "pdq %s filler\n", hex.EncodeToString(b[:]))
	}
}

// --- the load ---

type site struct {
	name    string
	base    string
	guarded bool
}

type sample struct {
	lat      [nClasses][]time.Duration
	errors   int
	missed   int
	refused  int
	reasons  map[string]int
	requests int
}

type result struct {
	site    string
	conc    int
	elapsed time.Duration
	s       sample
	behind  int64
	rssEnd  int // KB, VmRSS at the end
	rssPeak int // KB, VmHWM (reset at the start) or the largest VmRSS sampled
	// workersPeak is the hashing worker processes' RSS (KB): the largest
	// sum sampled, or the sum of their VmHWMs if larger (an upper bound).
	workersPeak int
	// pssPeak is the largest sum sampled of Caddy's and its workers'
	// PSS (KB): shared pages (the binary, mapped by every process)
	// apportioned, not counted once per process as the RSS sum does.
	pssPeak  int
	fdEnd    int
	fdMax    int
	whoami   int64
	verdicts map[string]float64
}

var (
	client    *http.Client
	transport *http.Transport
	caddyPID  int
	metricURL string
)

var addrRE = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+:\d+|\[::1?\]:\d+`)

// one sends a request of kind c to s and records its outcome.
func one(ctx context.Context, s site, c class, rng *rand.Rand, out *sample) {
	var req *http.Request
	var want item
	tok := "Bearer loaduser" + strconv.Itoa(rng.IntN(nTokens))
	download := func(id string) {
		p := "/_matrix/media/v3/download/" + serverName + "/" + id
		if rng.IntN(2) == 0 {
			p = "/_matrix/client/v1/media/download/" + serverName + "/" + id
		}
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, s.base+p, nil)
	}
	post := func(it item) {
		name := "x.jpg"
		if it.ct == "image/png" {
			name = "x.png"
		}
		req, _ = http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/_matrix/media/v3/upload?filename="+name, bytes.NewReader(it.body))
		req.Header.Set("Content-Type", it.ct)
	}
	switch c {
	case known:
		i := rng.IntN(len(knownMedia))
		want = knownMedia[i]
		download("k" + strconv.Itoa(i))
	case unknown:
		n := unknownSeq.Add(1)
		want = unknownMedia[n%int64(len(unknownMedia))]
		download("u" + strconv.FormatInt(n, 10))
	case listedDown:
		// Each listed ID is asked for twice: hashed and blocked the first
		// time, refused from memory the second (when the first is done).
		n := listedSeq.Add(1) / 2
		want = listedMedia[n%int64(len(listedMedia))]
		download("l" + strconv.FormatInt(n, 10))
	case upload:
		post(uploadPool[uploadSeq.Add(1)%int64(len(uploadPool))])
	case listedUp:
		post(listedImages[rng.IntN(len(listedImages))])
	}
	req.Header.Set("Authorization", tok)

	t0 := time.Now()
	status, n, body, err := do(req, c == upload || c == listedUp)
	d := time.Since(t0)
	if ctx.Err() != nil {
		return // interrupted: not a result
	}
	out.requests++
	out.lat[c] = append(out.lat[c], d)
	fail := func(why string) {
		out.errors++
		if out.reasons == nil {
			out.reasons = map[string]int{}
		}
		out.reasons[classNames[c]+": "+why]++
	}
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		fail(addrRE.ReplaceAllString(err.Error(), "ADDR"))
		return
	}
	listed := c == listedUp || c == listedDown
	switch {
	case listed && s.guarded && status == 200:
		out.missed++
		fmt.Fprintf(os.Stderr, "MISSED: listed %s %s answered 200 through mediaguard\n", req.Method, req.URL.Path)
	case listed && s.guarded:
		wantStatus := 404
		if c == listedUp {
			wantStatus = 403
		}
		if status != wantStatus {
			fail(fmt.Sprintf("status %d (want %d)", status, wantStatus))
			return
		}
		out.refused++
	case status != 200:
		fail(fmt.Sprintf("status %d: %.80s", status, body))
	case c == upload || c == listedUp:
		if !bytes.Contains(body, []byte(`"content_uri":"mxc://`+serverName+"/")) {
			fail(fmt.Sprintf("upload answer without content_uri: %.80s", body))
		}
	case n != int64(len(want.body)):
		fail("short body")
	}
}

// do sends req and drains the answer without buffering it (the load
// generator shares the CPUs with Caddy); small answers are kept when keep.
func do(req *http.Request, keep bool) (status int, n int64, body []byte, err error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, nil, err
	}
	defer resp.Body.Close()
	if keep || resp.StatusCode != 200 {
		body, err = io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return resp.StatusCode, int64(len(body)), body, err
	}
	n, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, n, nil, err
}

// run drives s with conc connections for d and samples Caddy meanwhile.
func run(ctx context.Context, s site, conc int, d time.Duration, up *upstream, seed uint64) result {
	harness.ResetHWM(caddyPID)
	for _, pid := range harness.Children(caddyPID) {
		harness.ResetHWM(pid)
	}
	before := scrapeVerdicts()
	who0 := up.whoami.Load()
	res := result{site: s.name, conc: conc}

	stopSampling := make(chan struct{})
	var sampled sync.WaitGroup
	sampled.Add(1)
	go func() {
		defer sampled.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			res.rssPeak = max(res.rssPeak, procKB(caddyPID, "VmRSS"))
			res.workersPeak = max(res.workersPeak, childrenKB("VmRSS"))
			res.pssPeak = max(res.pssPeak, groupPSS())
			res.fdMax = max(res.fdMax, harness.FDs(caddyPID))
			select {
			case <-stopSampling:
				return
			case <-t.C:
			}
		}
	}()

	start := time.Now()
	deadline := start.Add(d)
	var tokens chan struct{}
	var behind atomic.Int64
	if *rate > 0 {
		// Open loop: arrivals at a fixed rate. Up to conc of them wait
		// for a free connection; more are counted as behind and dropped.
		// Latency is measured from when a request is sent.
		tokens = make(chan struct{}, conc)
		go func() {
			defer close(tokens)
			t := time.NewTicker(2 * time.Millisecond)
			defer t.Stop()
			sent := 0
			for now := range t.C {
				if now.After(deadline) || ctx.Err() != nil {
					return
				}
				for due := int(now.Sub(start).Seconds() * *rate); sent < due; sent++ {
					select {
					case tokens <- struct{}{}:
					default:
						behind.Add(1)
					}
				}
			}
		}()
	}
	samples := make([]sample, conc)
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for ctx.Err() == nil {
				if tokens != nil {
					if _, ok := <-tokens; !ok {
						return
					}
				} else if !time.Now().Before(deadline) {
					return
				}
				one(ctx, s, pick(rng), rng, &samples[w])
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	close(stopSampling)
	sampled.Wait()

	for _, sm := range samples {
		for c := range nClasses {
			res.s.lat[c] = append(res.s.lat[c], sm.lat[c]...)
		}
		res.s.errors += sm.errors
		res.s.missed += sm.missed
		res.s.refused += sm.refused
		res.s.requests += sm.requests
		for k, v := range sm.reasons {
			if res.s.reasons == nil {
				res.s.reasons = map[string]int{}
			}
			res.s.reasons[k] += v
		}
	}
	for c := range nClasses {
		slices.Sort(res.s.lat[c])
	}
	res.behind = behind.Load()
	res.rssEnd = procKB(caddyPID, "VmRSS")
	res.rssPeak = max(res.rssPeak, res.rssEnd, procKB(caddyPID, "VmHWM"))
	res.workersPeak = max(res.workersPeak, childrenKB("VmHWM"))
	res.fdEnd = harness.FDs(caddyPID)
	res.fdMax = max(res.fdMax, res.fdEnd)
	res.whoami = up.whoami.Load() - who0
	after := scrapeVerdicts()
	res.verdicts = map[string]float64{}
	for k, v := range after {
		if dv := v - before[k]; dv > 0 {
			res.verdicts[k] = dv
		}
	}
	return res
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/1e6) }

func (r result) rps() float64 { return float64(r.s.requests) / r.elapsed.Seconds() }

func (r result) print() {
	fmt.Printf("  %-10s %4d conn: %6.1f req/s (%d in %v)", r.site, r.conc, r.rps(), r.s.requests, r.elapsed.Round(10*time.Millisecond))
	if r.behind > 0 {
		fmt.Printf(", %d arrivals behind", r.behind)
	}
	fmt.Println()
	for _, c := range []class{known, unknown, upload} {
		l := r.s.lat[c]
		fmt.Printf("    %-8s n=%-6d p50 %7s ms  p99 %7s ms\n", classNames[c], len(l), ms(pct(l, .5)), ms(pct(l, .99)))
	}
	nl := len(r.s.lat[listedUp]) + len(r.s.lat[listedDown])
	fmt.Printf("    listed   n=%-6d refused %d, missed %d; errors %d; whoami calls %d\n", nl, r.s.refused, r.s.missed, r.s.errors, r.whoami)
	fmt.Printf("    caddy: VmRSS %s at the end, VmHWM %s; open FDs %d at the end, %d max\n", harness.MB(r.rssEnd), harness.MB(r.rssPeak), r.fdEnd, r.fdMax)
	if r.workersPeak > 0 {
		fmt.Printf("    hashing workers: peak RSS %s; Caddy and workers: peak PSS %s (sampled)\n", harness.MB(r.workersPeak), harness.MB(r.pssPeak))
	}
	if len(r.verdicts) > 0 {
		keys := slices.Sorted(maps.Keys(r.verdicts))
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%.0f", k, r.verdicts[k]))
		}
		fmt.Printf("    mediaguard verdicts: %s\n", strings.Join(parts, " "))
	}
	reasons := slices.SortedFunc(maps.Keys(r.s.reasons), func(a, b string) int { return r.s.reasons[b] - r.s.reasons[a] })
	for i, k := range reasons {
		if i == 8 {
			fmt.Printf("    error: … %d more kinds\n", len(reasons)-i)
			break
		}
		fmt.Printf("    error: %dx %s\n", r.s.reasons[k], k)
	}
}

// --- main ---

func main() {
	flag.Parse()
	levels := parseInts("levels", *levelsFlag)
	if m := parseInts("mix", *mixFlag); len(m) == 3 {
		copy(mix[:], m)
	}
	if mix[0]+mix[1]+mix[2] == 0 {
		fatalf("-mix wants three weights: known,unknown,upload")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer cleanup()

	dir, err := os.MkdirTemp("", "mgload-")
	check(err)
	atCleanup(func() { os.RemoveAll(dir) })

	t0 := time.Now()
	makeMedia()
	stopIfInterrupted(ctx)
	fmt.Printf("machine: %d CPUs, %s\n", harness.NProc(), strings.TrimSpace(harness.CPUModel()))
	fmt.Printf("media generated in %v:\n  known   %s\n  unknown %s (a fresh ID per download)\n  uploads %s\n  listed  %s\n",
		time.Since(t0).Round(time.Millisecond), describe(knownMedia), describe(unknownMedia), describe(uploadPool), describe(listedMedia))

	upAddr, up := startUpstream()
	bank := filepath.Join(dir, "load.bank")
	writeBank(bank)
	spool := filepath.Join(dir, "spool")
	check(os.Mkdir(spool, 0o700))
	plain, guarded, metrics := freePort(), freePort(), freePort()
	var env []string
	if *memLimit != "" {
		env = append(env, "GOMEMLIMIT="+*memLimit)
	}
	if *goGC != "" {
		env = append(env, "GOGC="+*goGC)
	}
	if *maxProcs > 0 {
		env = append(env, fmt.Sprintf("GOMAXPROCS=%d", *maxProcs))
	}
	mgLines := []string{"bank LOAD " + bank, "homeserver http://" + upAddr, "audit_log " + filepath.Join(dir, "audit.log"), "temp_dir " + spool}
	if *mgOptions != "" {
		mgLines = append(mgLines, strings.Split(*mgOptions, ";")...)
	}
	logPath := filepath.Join(os.TempDir(), "mgload-caddy.log")
	caddy, err := harness.StartCaddy(*caddyBin, dir, harness.Caddyfile{
		Admin:      *admin,
		Mediaguard: mgLines,
		Plain:      plain, Guarded: guarded, Upstream: upAddr,
		Extra: fmt.Sprintf("http://127.0.0.1:%d {\n\tmetrics\n}\n", metrics),
	}, logPath, env...)
	check(err)
	caddyPID = caddy.PID
	exited := caddy.Exited
	atCleanup(caddy.Stop)

	maxConc := slices.Max(levels)
	transport = &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: maxConc + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	client = &http.Client{Transport: transport, Timeout: 60 * time.Second}
	metricURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics)
	sites := [2]site{
		{"mediaguard", fmt.Sprintf("http://127.0.0.1:%d", guarded), true},
		{"plain", fmt.Sprintf("http://127.0.0.1:%d", plain), false},
	}
	err = harness.WaitHealthy(ctx, client, sites[1].base+"/_matrix/media/v3/download/"+serverName+"/k0", 60*time.Second, exited)
	stopIfInterrupted(ctx)
	check(err)
	fmt.Printf("caddy: pid %d, log %s; RSS %s, open FDs %d\n", caddyPID, logPath, harness.MB(procKB(caddyPID, "VmRSS")), harness.FDs(caddyPID))

	prepare(ctx, sites, up)
	// A short unmeasured run per site: connections, heap and caches settle.
	for _, s := range sites {
		run(ctx, s, 10, time.Second, up, 99)
	}
	idleFD, idleRSS := settle()
	fmt.Printf("after warm-up: caddy RSS %s, open FDs %d (idle)\n", harness.MB(idleRSS), idleFD)
	mode := "closed loop: each connection sends its next request when the last is answered"
	if *rate > 0 {
		mode = fmt.Sprintf("open loop at %.0f requests/s, at most LEVEL in flight", *rate)
	}
	fmt.Printf("\nmeasuring %v per site and level (%s)\n", *duration, mode)

	var results [][2]result // per level: [mediaguard, plain]
	for li, conc := range levels {
		if ctx.Err() != nil {
			break
		}
		fmt.Printf("level %d:\n", conc)
		var pair [2]result
		order := []int{0, 1}
		if li%2 == 1 {
			order = []int{1, 0} // alternate who goes first: drift hits both alike
		}
		for _, si := range order {
			pair[si] = run(ctx, sites[si], conc, *duration, up, uint64(li*2+si))
			if ctx.Err() != nil {
				break
			}
			pair[si].print()
			// Let the client's idle connections go, so the next run's FD
			// count is its own.
			transport.CloseIdleConnections()
			time.Sleep(500 * time.Millisecond)
		}
		if ctx.Err() == nil {
			results = append(results, pair)
		}
	}
	stopIfInterrupted(ctx)
	endFD, endRSS := settle()
	fmt.Printf("\nafter all levels (idle): caddy RSS %s, open FDs %d (after warm-up: %d), spool files left %d\n", harness.MB(endRSS), endFD, idleFD, harness.CountFiles(spool))
	ok := summary(results)
	logSummary(logPath)
	if !ok && *strict {
		cleanup()
		os.Exit(1)
	}
}

// prepare has mediaguard judge the known media once and checks that the
// setup behaves as expected before anything is measured.
func prepare(ctx context.Context, sites [2]site, up *upstream) {
	t0 := time.Now()
	for i, it := range knownMedia {
		path := fmt.Sprintf("/_matrix/media/v3/download/%s/k%d", serverName, i)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, sites[0].base+path, nil)
		status, n, _, err := do(req, false)
		if err != nil || status != 200 || n != int64(len(it.body)) {
			stopIfInterrupted(ctx)
			fatalf("judging known media k%d through mediaguard: status %d, %d of %d bytes, %v", i, status, n, len(it.body), err)
		}
	}
	fmt.Printf("known media judged by mediaguard in %v\n", time.Since(t0).Round(time.Millisecond))
	who0 := up.whoami.Load()
	expect := func(s site, c class, want int) {
		var sm sample
		rng := rand.New(rand.NewPCG(1, uint64(c)))
		one(ctx, s, c, rng, &sm)
		stopIfInterrupted(ctx)
		got := 200
		switch {
		case sm.errors > 0:
			fatalf("setup check: %s %s: %v", s.name, classNames[c], sm.reasons)
		case sm.refused > 0:
			got = want
		}
		if got != want {
			fatalf("setup check: %s %s answered %d, want %d", s.name, classNames[c], got, want)
		}
	}
	expect(sites[0], listedUp, 403)
	expect(sites[0], listedDown, 404)
	expect(sites[0], upload, 200)
	expect(sites[0], unknown, 200)
	expect(sites[1], listedUp, 200)
	expect(sites[1], listedDown, 200)
	if up.whoami.Load() == who0 {
		fatalf("setup check: mediaguard asked no whoami for a block; is `homeserver` configured?")
	}
	fmt.Println("setup checks passed: listed upload 403, listed download 404 through mediaguard; served plain; whoami asked")
}

// settle closes the client's idle connections, waits a moment and returns
// Caddy's open FDs and RSS (KB).
func settle() (int, int) {
	transport.CloseIdleConnections()
	time.Sleep(time.Second)
	return harness.FDs(caddyPID), procKB(caddyPID, "VmRSS")
}

// summary prints the table of all levels and the goals; it reports whether
// every goal was met.
func summary(results [][2]result) bool {
	if len(results) == 0 {
		return false
	}
	fmt.Println("\nsummary (latency in ms; RSS = Caddy's VmHWM during the run: one process serves both sites, so a run\nafter a mediaguard run starts from the heap that one left)")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "conns\tsite\treq/s\tknown p50\tknown p99\tunknown p50\tunknown p99\tupload p50\tupload p99\tlisted\tmissed\terrors\tRSS MB\tworkers MB\tFDs max\t")
	for _, pair := range results {
		for _, r := range pair {
			missed := strconv.Itoa(r.s.missed)
			if r.site != "mediaguard" {
				missed = "-"
			}
			fmt.Fprintf(tw, "%d\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%.0f\t%.0f\t%d\t\n", r.conc, r.site, r.rps(),
				ms(pct(r.s.lat[known], .5)), ms(pct(r.s.lat[known], .99)),
				ms(pct(r.s.lat[unknown], .5)), ms(pct(r.s.lat[unknown], .99)),
				ms(pct(r.s.lat[upload], .5)), ms(pct(r.s.lat[upload], .99)),
				len(r.s.lat[listedUp])+len(r.s.lat[listedDown]), missed, r.s.errors, float64(r.rssPeak)/1024, float64(r.workersPeak)/1024, r.fdMax)
		}
	}
	tw.Flush()

	verdict := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "FAIL"
	}
	// The latency goal compares the sites at the same load, which only
	// the open loop (-rate) gives: in a closed loop mediaguard's
	// connections wait on hashing while plain's do not, so plain serves
	// ten times the requests and the two p99s are of different loads.
	sameLoad := *rate > 0
	all := !sameLoad || allRatios(results)
	fmt.Printf("\np99 of known downloads, mediaguard / plain (goal ≤ %.2f; a level run more than once is judged on\nall its runs' samples pooled, one p99 from a few thousand samples being noisy):\n", *ratioLimit)
	for _, pair := range results {
		g, p := pct(pair[0].s.lat[known], .99), pct(pair[1].s.lat[known], .99)
		fmt.Printf("  %4d conns: %s / %s ms = %.2f\n", pair[0].conc, ms(g), ms(p), ratioOf(g, p))
	}
	for _, lv := range pooled(results) {
		g, p := pct(lv.lat[0], .99), pct(lv.lat[1], .99)
		fmt.Printf("  %4d conns, %d run(s) pooled (%d / %d known downloads): %s / %s ms = %.2f  %s\n", lv.conc, lv.runs, len(lv.lat[0]), len(lv.lat[1]), ms(g), ms(p), ratioOf(g, p), verdict(ratioOf(g, p) <= *ratioLimit))
	}

	goal := results[len(results)-1][0]
	for _, pair := range results {
		if pair[0].conc == *goalLevel {
			goal = pair[0]
		}
	}
	fmt.Println("goals:")
	okErr := goal.s.errors == 0 && goal.s.missed == 0 && goal.s.refused > 0
	all = all && okErr
	fmt.Printf("  %s  no errors and no listed item missed at %d conns (mediaguard): %d errors, %d missed, %d listed refused\n",
		verdict(okErr), goal.conc, goal.s.errors, goal.s.missed, goal.s.refused)
	var errs, missed, peak, pss int
	for _, pair := range results {
		errs += pair[0].s.errors + pair[1].s.errors
		missed += pair[0].s.missed
		peak = max(peak, pair[0].rssPeak+pair[0].workersPeak, pair[1].rssPeak+pair[1].workersPeak)
		pss = max(pss, pair[0].pssPeak, pair[1].pssPeak)
	}
	fmt.Printf("        (all levels, both sites: %d errors, %d missed)\n", errs, missed)
	okRSS := float64(peak)/1024 < *rssLimit
	all = all && okRSS
	fmt.Printf("  %s  peak RSS of Caddy and its hashing workers below %.0f MB: %s\n", verdict(okRSS), *rssLimit, harness.MB(peak))
	fmt.Printf("  info  peak PSS of Caddy and its hashing workers, sampled every 200 ms: %s (the RSS sum counts the\n        binary's shared pages once per process; PSS shares them out)\n", harness.MB(pss))
	if sameLoad {
		fmt.Printf("  %s  known-download p99 within %.2f× of plain at the same load, every level (above)\n", verdict(allRatios(results)), *ratioLimit)
	} else {
		fmt.Printf("  n/a   known-download p99 within %.2f× of plain at the same load: judged with -rate (a closed loop runs the\n        sites at different loads; the ratios above are for reference)\n", *ratioLimit)
	}
	fmt.Printf("overall: %s\n", verdict(all))
	return all
}

func allRatios(results [][2]result) bool {
	for _, lv := range pooled(results) {
		if ratioOf(pct(lv.lat[0], .99), pct(lv.lat[1], .99)) > *ratioLimit {
			return false
		}
	}
	return true
}

func ratioOf(g, p time.Duration) float64 {
	if p <= 0 {
		return math.Inf(1)
	}
	return float64(g) / float64(p)
}

// level is one concurrency level's known-download latencies, pooled over
// its runs: [mediaguard, plain], sorted.
type level struct {
	conc, runs int
	lat        [2][]time.Duration
}

func pooled(results [][2]result) []level {
	var out []level
	for _, pair := range results {
		i := slices.IndexFunc(out, func(l level) bool { return l.conc == pair[0].conc })
		if i < 0 {
			out = append(out, level{conc: pair[0].conc})
			i = len(out) - 1
		}
		out[i].runs++
		for si := range pair {
			out[i].lat[si] = append(out[i].lat[si], pair[si].s.lat[known]...)
		}
	}
	for i := range out {
		for si := range out[i].lat {
			slices.Sort(out[i].lat[si])
		}
	}
	return out
}

// logSummary counts Caddy's warnings and errors by message.
func logSummary(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	counts := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e struct{ Level, Logger, Msg string }
		if json.Unmarshal(sc.Bytes(), &e) != nil || (e.Level != "warn" && e.Level != "error" && e.Level != "panic" && e.Level != "fatal") {
			continue
		}
		counts[e.Level+" "+e.Logger+": "+e.Msg]++
	}
	if len(counts) == 0 {
		fmt.Printf("caddy log %s: no warnings or errors\n", path)
		return
	}
	fmt.Printf("caddy log %s, warnings and errors:\n", path)
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		fmt.Printf("  %6d  %s\n", counts[k], k)
	}
}

// --- helpers ---

func parseInts(name, s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 || (n == 0 && name == "levels") {
			fatalf("bad -%s %q", name, s)
		}
		out = append(out, n)
	}
	return out
}

func scrapeVerdicts() map[string]float64 {
	out := map[string]float64{}
	resp, err := client.Get(metricURL)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "caddy_mediaguard_requests_total{")
		if !ok {
			continue
		}
		labels, val, _ := strings.Cut(line, "} ")
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		out[label(labels, "direction")+":"+label(labels, "verdict")] = v
	}
	return out
}

func label(labels, name string) string {
	_, rest, ok := strings.Cut(labels, name+`="`)
	if !ok {
		return "?"
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// procKB reads a kB field (VmRSS, VmHWM) of /proc/PID/status, 0 if
// unreadable.
func procKB(pid int, key string) int {
	kb, _ := harness.ProcKB(pid, key)
	return kb
}

// groupPSS sums the PSS (KB) of Caddy and its children, from
// /proc/PID/smaps_rollup; 0 where unreadable.
func groupPSS() int {
	sum := 0
	for _, pid := range append([]int{caddyPID}, harness.Children(caddyPID)...) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "Pss:"); ok {
				kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
				sum += kb
				break
			}
		}
	}
	return sum
}

// childrenKB sums a kB field over Caddy's children: mediaguard's hashing
// workers.
func childrenKB(key string) int {
	sum := 0
	for _, pid := range harness.Children(caddyPID) {
		sum += procKB(pid, key)
	}
	return sum
}

func freePort() int {
	p, err := harness.FreePort()
	check(err)
	return p
}

var (
	cleanMu  sync.Mutex
	cleanups []func()
)

func atCleanup(f func()) {
	cleanMu.Lock()
	cleanups = append(cleanups, f)
	cleanMu.Unlock()
}

// cleanup stops Caddy and removes the temp files; it runs once, last
// registered first.
func cleanup() {
	cleanMu.Lock()
	fs := cleanups
	cleanups = nil
	cleanMu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// stopIfInterrupted ends the program after Ctrl-C, cleaning up first.
func stopIfInterrupted(ctx context.Context) {
	if ctx.Err() != nil {
		fmt.Println("\ninterrupted")
		cleanup()
		os.Exit(130)
	}
}

func check(err error) {
	if err != nil {
		fatalf("%v", err)
	}
}

func fatalf(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "mgload: "+f+"\n", a...)
	cleanup()
	os.Exit(1)
}
