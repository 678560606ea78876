// mgstarve measures whether crafted images can starve hashing: it puts a
// mediaguard proxy (the real mediaproxy, with hashing in worker processes
// as in production) in front of a loopback homeserver stand-in, has N
// clients upload decompression-bomb PNGs back to back, and meanwhile
// uploads a legitimate photo at a fixed interval. It reports the
// legitimate uploads' latency with and without the bombs, in the same
// run, and judges its goal: the
// legitimate p99 stays within 2 s.
//
//	go run ./bench/mgstarve [-duration 30s] [-bombers 10] [-every 500ms]
//
// Everything listens on 127.0.0.1 and stops by itself.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

func main() {
	duration := flag.Duration("duration", 30*time.Second, "how long each phase runs")
	bombers := flag.Int("bombers", 10, "clients uploading bombs back to back")
	every := flag.Duration("every", 500*time.Millisecond, "interval between legitimate uploads")
	side := flag.Int("bomb-side", 7000, "the bomb's width and height")
	flag.Parse()

	dir, err := os.MkdirTemp("", "mgstarve-")
	must(err)
	defer os.RemoveAll(dir)
	bank := filepath.Join(dir, "b.bank")
	must(os.WriteFile(bank, []byte("md5 00000000000000000000000000000001\n"), 0o600))
	local, err := matcher.NewLocal(matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "B", Path: bank}}, ReloadInterval: -1})
	must(err)

	var stored atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		n := stored.Add(1)
		fmt.Fprintf(w, `{"content_uri":"mxc://hs.example/m%d"}`, n)
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	outcomes := &counter{m: map[string]int{}}
	p, err := mediaproxy.New(mediaproxy.Config{Matcher: local, TempDir: dir, Observer: outcomes, MaxUploadSize: 100 << 20})
	must(err)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.ServeHTTP(w, r, func(w http.ResponseWriter, r *http.Request) error { rp.ServeHTTP(w, r); return nil })
	}))
	defer front.Close()

	photo := legitimatePhoto()
	bomb := makeBomb(*side)
	fmt.Printf("machine: %d cores, %s; photo %d KB (2000x1500 JPEG, grain added), bomb %d KB (%dx%d RGBA PNG); %d bombers; one photo every %v for %v\n",
		runtime.NumCPU(), runtime.Version(), len(photo)>>10, len(bomb)>>10, *side, *side, *bombers, *every, *duration)

	upload := func(body []byte, ct string) (time.Duration, int) {
		start := time.Now()
		resp, err := http.Post(front.URL+"/_matrix/media/v3/upload", ct, bytes.NewReader(body))
		if err != nil {
			return time.Since(start), 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(start), resp.StatusCode
	}
	// Warm the workers.
	upload(photo, "image/jpeg")

	phase := func(name string, bombs int) []time.Duration {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var bombsDone atomic.Int64
		for range bombs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					upload(bomb, "image/png")
					bombsDone.Add(1)
				}
			}()
		}
		var lat []time.Duration
		var mu sync.Mutex
		var lw sync.WaitGroup
		t := time.NewTicker(*every)
		end := time.After(*duration)
	loop:
		for {
			select {
			case <-end:
				break loop
			case <-t.C:
				lw.Add(1)
				go func() {
					defer lw.Done()
					d, st := upload(photo, "image/jpeg")
					if st != 200 {
						fmt.Printf("  legitimate upload answered %d\n", st)
					}
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}()
			}
		}
		t.Stop()
		lw.Wait()
		close(stop)
		wg.Wait()
		slices.Sort(lat)
		fmt.Printf("%-12s legitimate uploads: n=%d p50=%v p99=%v max=%v; bombs judged: %d\n", name, len(lat),
			pct(lat, 50).Round(time.Millisecond), pct(lat, 99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), bombsDone.Load())
		return lat
	}
	base := phase("baseline", 0)
	under := phase("under bombs", *bombers)
	fmt.Printf("bomb outcomes: %v\n", outcomes.snapshot())
	r := float64(pct(under, 99)) / float64(pct(base, 99))
	verdict := "PASS"
	if pct(under, 99) > 2*time.Second {
		verdict = "FAIL"
	}
	fmt.Printf("legitimate p99 under bombs / baseline p99 = %.2fx; goal p99 <= 2s: %s\n", r, verdict)
}

// legitimatePhoto is a 2000×1500 JPEG of about 1 MB: the synthetic test
// photo with sensor-like grain, which is what makes real photos large.
func legitimatePhoto() []byte {
	img := testimg.Photo(1, 2000, 1500)
	x := uint32(2463534242)
	for i := range img.Pix {
		if i%4 == 3 {
			continue
		}
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		v := int(img.Pix[i]) + int(x%25) - 12
		img.Pix[i] = uint8(min(max(v, 0), 255))
	}
	return testimg.JPEG(img, 92)
}

func makeBomb(side int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	// A few coloured stripes: compresses to ~200 KB, decodes to 196 MB.
	for y := 0; y < side; y += 97 {
		row := img.Pix[y*img.Stride : (y+1)*img.Stride]
		for i := range row {
			row[i] = byte(y)
		}
	}
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	must(enc.Encode(&b, img))
	return b.Bytes()
}

func pct(s []time.Duration, p int) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

type counter struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counter) Observe(d *mediaproxy.Decision) {
	if d.Request.Header.Get("Content-Type") != "image/png" {
		return
	}
	c.mu.Lock()
	c.m[string(d.Outcome)]++
	c.mu.Unlock()
}

func (c *counter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps(c.m)
}

func maps(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "mgstarve:", err)
		os.Exit(1)
	}
}
