package caddymodule

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// drain closes exactly once, and only when released with nothing in
// flight.
func TestDrain(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps string // e enter, l leave, r release
		want  []int  // closes counted after each step
	}{
		{"released idle", "r", []int{1}},
		{"released twice", "rr", []int{1, 1}},
		{"in flight at release", "erl", []int{0, 0, 1}},
		{"two in flight", "eerll", []int{0, 0, 0, 0, 1}},
		{"requests before release", "elelr", []int{0, 0, 0, 0, 1}},
		{"release, then the last leaves, then release again", "erlr", []int{0, 0, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			closes := 0
			d := &drain{close: func() { closes++ }}
			for i, s := range tc.steps {
				switch s {
				case 'e':
					d.enter()
				case 'l':
					d.leave()
				case 'r':
					d.release()
				}
				if closes != tc.want[i] {
					t.Fatalf("after %q: %d closes, want %d", tc.steps[:i+1], closes, tc.want[i])
				}
			}
		})
	}
}

// A config reload, or a stop, while an upload is being received: the
// old config's app is stopped and cleaned up while its server still
// serves that upload, which must still be judged and refused with its
// audit record written, on the old app's service. Caddy stops a config's
// apps in no set order and on a reload does not wait for the old
// servers' requests; caddy.Stop in a process does not wait either (an
// exiting process does, but may stop this app first).
func TestStopKeepsInFlightRequests(t *testing.T) {
	listed := testimg.JPEG(testimg.Photo(77, 160, 120), 90)
	sum := sha256.Sum256(listed)
	for _, tc := range []struct {
		name string
		stop func(config func(int) []byte) error
	}{
		{"reload", func(config func(int) []byte) error { return caddy.Load(config(2000), true) }},
		{"stop", func(func(int) []byte) error { return caddy.Stop() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			bank := filepath.Join(dir, "listed.bank")
			os.WriteFile(bank, []byte("sha256 "+hex.EncodeToString(sum[:])+"\n"), 0o600)
			auditPath := filepath.Join(dir, "audit.log")
			hs := fakes.NewSynapse(t)
			port := testkit.FreePort(t)
			config := func(memoryEntries int) []byte {
				// No admin endpoint: other tests (and other processes) use it.
				return []byte(fmt.Sprintf(`{"admin":{"disabled":true,"config":{"persist":false}},"apps":{
					"mediaguard":{"banks":[{"name":"T","path":%q}],"audit_log":%q,"hashing":"inline","temp_dir":%q,"memory_entries":%d},
					"http":{"servers":{"s":{"listen":["127.0.0.1:%d"],"routes":[{"handle":[
						{"handler":"mediaguard"},{"handler":"reverse_proxy","upstreams":[{"dial":%q}]}]}]}}}}}`,
					bank, auditPath, dir, memoryEntries, port, strings.TrimPrefix(hs.URL, "http://")))
			}
			if err := caddy.Load(config(1000), true); err != nil {
				t.Fatal(err)
			}
			defer caddy.Stop()

			body, w := io.Pipe()
			req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/_matrix/media/v3/upload?filename=x.jpg", port), body)
			req.ContentLength = int64(len(listed))
			req.Header.Set("Content-Type", "image/jpeg")
			type result struct {
				status int
				err    error
			}
			done := make(chan result, 1)
			go func() {
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					done <- result{err: err}
					return
				}
				resp.Body.Close()
				done <- result{status: resp.StatusCode}
			}()
			half := len(listed) / 2
			if _, err := w.Write(listed[:half]); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond) // the request is in the handler, reading its body
			if err := tc.stop(config); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			w.Write(listed[half:])
			w.Close()
			var r result
			select {
			case r = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("the upload in flight was never answered")
			}
			if r.err != nil || r.status != http.StatusForbidden {
				t.Fatalf("listed upload across a %s: %d %v, want 403", tc.name, r.status, r.err)
			}
			testkit.Eventually(t, "the block's audit record", func() bool {
				blocks := 0
				audit.Read(auditPath, time.Time{}, func(rec audit.Record) error {
					if rec.Kind == audit.KindBlock {
						blocks++
					}
					return nil
				})
				return blocks == 1
			})
		})
	}
}
