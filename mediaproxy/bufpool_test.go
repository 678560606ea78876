package mediaproxy

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"
)

func TestBodyClasses(t *testing.T) {
	for _, c := range []struct{ n, size int }{
		{1, 64 << 10},
		{64 << 10, 64 << 10},
		{64<<10 + 1, 80 << 10},
		{100 << 10, 112 << 10},
		{1 << 20, 1 << 20},
		{1<<20 + 1, 1<<20 + 256<<10},
		{1900 << 10, 2 << 20},
		{16 << 20, 16 << 20},
		{16<<20 + 1, 0},
		{0, 0},
	} {
		class, size := bodyClass(c.n)
		if size != c.size || (size == 0) != (class < 0) {
			t.Errorf("bodyClass(%d) = %d, %d; want size %d", c.n, class, size, c.size)
		}
		if size > 0 && (size < c.n || size > c.n+c.n/4+64<<10) {
			t.Errorf("bodyClass(%d) size %d: under the ask or more than a quarter over", c.n, size)
		}
		if b := getBody(c.n); cap(b) < c.n || len(b) != 0 {
			t.Errorf("getBody(%d): len %d cap %d", c.n, len(b), cap(b))
		}
	}
	seen := map[int]int{}
	for n := 1; n <= 16<<20; n += 4099 {
		class, size := bodyClass(n)
		if prev, ok := seen[class]; ok && prev != size {
			t.Fatalf("class %d holds sizes %d and %d", class, prev, size)
		}
		seen[class] = size
		if class >= len(bodyBuffers) {
			t.Fatalf("class %d out of range", class)
		}
	}
}

// slowWriter checks the one promise a recycled buffer needs: a slice
// passed to Write stays intact until Write returns. It holds each Write a
// moment, while other downloads run, then compares.
type slowWriter struct {
	h       http.Header
	code    int
	body    bytes.Buffer
	changed bool
}

func (w *slowWriter) Header() http.Header { return w.h }
func (w *slowWriter) WriteHeader(c int)   { w.code = c }
func (w *slowWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = 200
	}
	snap := bytes.Clone(p)
	time.Sleep(2 * time.Millisecond)
	if !bytes.Equal(snap, p) {
		w.changed = true
	}
	return w.body.Write(p)
}

// Recycled download buffers never leak one response's bytes into
// another's: many downloads of distinct media of one size class run at
// once and again, so buffers change hands, and each arrives exactly as
// stored, its bytes untouched while they were being written.
func TestRecycledBuffersKeepBodiesApart(t *testing.T) {
	e := newEnv(t, []string{"md5 " + md5Hex([]byte("nothing stored has this"))}, func(c *Config) { c.MaxDownloadBuffer = 4 << 20 })
	u, _ := url.Parse(e.up.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	next := func(w http.ResponseWriter, r *http.Request) error { rp.ServeHTTP(w, r); return nil }
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 32
	bodies := make([][]byte, n)
	for i := range bodies {
		b := make([]byte, 256<<10+1+rng.IntN(64<<10)) // all in the 320 KiB class
		for j := range b {
			b[j] = byte(i*31 + j)
		}
		bodies[i] = b
	}
	for round := range 4 {
		var wg sync.WaitGroup
		for i, want := range bodies {
			id := fmt.Sprintf("m%d-%d", round, i)
			e.up.Put(id, want, "application/octet-stream")
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := &slowWriter{h: http.Header{}}
				r := httptest.NewRequest("GET", "/_matrix/media/v3/download/hs.example/"+id, nil)
				if err := e.proxy.ServeHTTP(w, r, next); err != nil || w.code != 200 {
					t.Errorf("%s: %v, status %d", id, err, w.code)
					return
				}
				if w.changed || !bytes.Equal(w.body.Bytes(), want) {
					t.Errorf("%s: bytes changed during Write: %v; body equal: %v", id, w.changed, bytes.Equal(w.body.Bytes(), want))
				}
			}()
		}
		wg.Wait()
	}
	if b := e.proxy.Buffered(); b != 0 {
		t.Errorf("%d bytes still reserved", b)
	}
}
