package caddymodule

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// faultyRepo is a media repository that misbehaves on demand: it answers
// uploads (200 {"content_uri"}) and serves downloads of any ID with a
// body of zeros of the size its digits name ("a1000": 1000 bytes); IDs
// starting with "reset" send part of
// the body and then reset the connection, and an upload with
// ?reset=1 is reset after part of its body was read.
type faultyRepo struct {
	*httptest.Server
	stored atomic.Int64
}

func newFaultyRepo(t *testing.T) *faultyRepo {
	f := &faultyRepo{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "POST":
			if r.URL.Query().Get("reset") == "1" {
				io.CopyN(io.Discard, r.Body, 10_000)
				reset(w)
				return
			}
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				return
			}
			f.stored.Add(1)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"content_uri":"mxc://hs.example/m%d"}`, f.stored.Load())
		case r.Method == "GET":
			id := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
			var size int
			fmt.Sscanf(strings.TrimLeft(id, "abcdefghijklmnopqrstuvwxyz"), "%d", &size)
			w.Header().Set("Content-Type", "video/mp4")
			w.Header().Set("Content-Length", fmt.Sprint(size))
			if strings.HasPrefix(id, "reset") {
				w.Write(make([]byte, size/2))
				w.(http.Flusher).Flush()
				reset(w)
				return
			}
			w.Write(make([]byte, size))
		}
	}))
	t.Cleanup(f.Close)
	return f
}

// reset aborts the connection with a TCP RST, as a crashing homeserver or
// a middlebox would.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
}

type matrixError struct {
	status  int
	errcode string
}

func doRequest(t *testing.T, c *http.Client, method, url string, body []byte) (matrixError, []byte, error) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := c.Do(req)
	if err != nil {
		return matrixError{}, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	var e struct {
		Errcode string `json:"errcode"`
	}
	json.Unmarshal(b, &e)
	return matrixError{resp.StatusCode, e.Errcode}, b, err
}

// TestProxyFaultsThroughCaddy puts a real Caddy with mediaguard in front
// of a homeserver that is down or resets connections mid-upload and
// mid-download, and clients that hang up mid-upload and mid-download.
// Every case ends in a Matrix error or a cut connection, never a complete
// body that was not judged; no spool file is left, the in-memory budget
// is returned, and the goroutine count comes back.
func TestProxyFaultsThroughCaddy(t *testing.T) {
	repo := newFaultyRepo(t)
	dead := testkit.FreePort(t) // nothing listens here
	dir := t.TempDir()
	port, downPort := testkit.FreePort(t), testkit.FreePort(t)
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	skip_install_trust
	mediaguard {
		temp_dir %s
		memory_buffer 64KB
		max_download_buffer 1MB
		upload_idle_timeout 2s
	}
}
http://127.0.0.1:%d {
	mediaguard
	reverse_proxy %s
}
http://127.0.0.1:%d {
	mediaguard
	reverse_proxy 127.0.0.1:%d
}
`, dir, port, strings.TrimPrefix(repo.URL, "http://"), downPort, dead), "caddyfile")
	front := fmt.Sprintf("http://127.0.0.1:%d", port)
	down := fmt.Sprintf("http://127.0.0.1:%d", downPort)
	spool := filepath.Join(dir, fmt.Sprintf("mediaguard-%d", os.Getuid()))
	client := &http.Client{Timeout: 10 * time.Second}
	img := testimg.PNG(testimg.Photo(5, 200, 150))
	big := make([]byte, 300<<10) // over memory_buffer: spooled to disk

	// Warm up so Caddy's own pools exist before counting goroutines.
	if got, _, err := doRequest(t, client, "POST", front+"/_matrix/media/v3/upload", img); err != nil || got.status != 200 {
		t.Fatalf("warm-up upload: %v %v", got, err)
	}
	client.CloseIdleConnections()
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()

	for round := range 5 {
		// The homeserver is down: uploads and downloads get 502 M_UNKNOWN.
		for _, c := range []struct {
			method, path string
			body         []byte
		}{
			{"POST", "/_matrix/media/v3/upload", img},
			{"POST", "/_matrix/media/v3/upload", big},
			{"GET", "/_matrix/media/v3/download/hs.example/a1000", nil},
			{"GET", "/_matrix/client/v1/media/download/hs.example/a1000", nil},
		} {
			got, body, err := doRequest(t, client, c.method, down+c.path, c.body)
			if err != nil || got != (matrixError{502, "M_UNKNOWN"}) {
				t.Fatalf("homeserver down, %s %s: %v %s %v", c.method, c.path, got, body, err)
			}
		}
		// The homeserver resets the connection while reading an upload.
		for _, body := range [][]byte{img, big} {
			got, _, err := doRequest(t, client, "POST", front+"/_matrix/media/v3/upload?reset=1", body)
			if err != nil || got != (matrixError{502, "M_UNKNOWN"}) {
				t.Fatalf("reset mid-upload: %v %v", got, err)
			}
		}
		// The homeserver resets mid-download. A buffered download (under
		// max_download_buffer) has sent nothing yet: 502 M_UNKNOWN. A
		// streamed one has sent its headers: the client's connection is
		// cut, and it never gets the whole body.
		id := fmt.Sprintf("reset%d", 200_000+round)
		if got, _, err := doRequest(t, client, "GET", front+"/_matrix/media/v3/download/hs.example/"+id, nil); err != nil || got != (matrixError{502, "M_UNKNOWN"}) {
			t.Fatalf("reset mid buffered download: %v %v", got, err)
		}
		id = fmt.Sprintf("reset%d", 4_000_000+round)
		if _, b, err := doRequest(t, client, "GET", front+"/_matrix/media/v3/download/hs.example/"+id, nil); err == nil && len(b) == 4_000_000+round {
			t.Fatal("reset mid streamed download: the client got a complete body")
		}
		// A client hangs up mid-upload (spooled to disk) ...
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: 2000000\r\n\r\n")
		conn.Write(big)
		conn.Close()
		// ... and mid-download of media being buffered and of media being
		// streamed.
		for _, size := range []int{900_000, 8_000_000} {
			conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(conn, "GET /_matrix/media/v3/download/hs.example/c%d HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", size+round)
			bufio.NewReader(conn).Peek(1) // the first byte of the answer
			conn.Close()
		}
	}
	// A client that stops sending mid-upload is cut off after
	// upload_idle_timeout through Caddy's response writers too.
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: 2000000\r\n\r\n")
	conn.Write(big)
	conn.SetReadDeadline(time.Now().Add(6 * time.Second))
	stallStart := time.Now()
	stalled, err := http.ReadResponse(bufio.NewReader(conn), nil)
	t.Logf("stalled answer after %s", time.Since(stallStart))
	if err != nil || stalled.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("stalled upload through Caddy: %v %v", stalled, err)
	}
	conn.Close()
	storedBefore := repo.stored.Load()

	client.CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	var spoolLeft []os.DirEntry
	var buffered float64
	for {
		spoolLeft, _ = os.ReadDir(spool)
		m := scrapeMetrics(t, "http://localhost:2999/metrics")
		buffered = m["caddy_mediaguard_buffered_bytes"]
		if (len(spoolLeft) == 0 && buffered == 0 && runtime.NumGoroutine() <= before+5) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(spoolLeft) != 0 {
		t.Errorf("%d spool files left", len(spoolLeft))
	}
	if buffered != 0 {
		t.Errorf("%v bytes of the memory budget never returned", buffered)
	}
	if n := runtime.NumGoroutine(); n > before+5 {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d before the faults, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
	if storedBefore != 1 {
		t.Errorf("%d uploads were stored; only the warm-up should be", storedBefore)
	}
	// And it still serves.
	if got, _, err := doRequest(t, client, "POST", front+"/_matrix/media/v3/upload", big); err != nil || got.status != 200 {
		t.Fatalf("after the faults: %v %v", got, err)
	}
}
