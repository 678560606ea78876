package mediaproxy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// flakyRemote is an enforcing remote that lists every media once it is up
// and is unavailable while down.
type flakyRemote struct{ down atomic.Bool }

func (f *flakyRemote) Match(context.Context, matcher.Query) (matcher.Verdict, error) {
	if f.down.Load() {
		return matcher.Verdict{}, fmt.Errorf("%w: test remote down", matcher.ErrUnavailable)
	}
	return matcher.Verdict{Match: true, Bank: "REMOTE", HashType: matcher.SHA256, Source: "service:x",
		Evidence: []matcher.Evidence{{Bank: "REMOTE", HashType: matcher.SHA256, Source: "service:x"}}}, nil
}

type lastOutcome struct{ v atomic.Value }

func (o *lastOutcome) Observe(d *mediaproxy.Decision) { o.v.Store(d.Outcome) }

// A would-block reached while an enforcing remote could not be asked
// (fail-open) is not remembered as clean: once the remote is back and
// lists the media, the next download is judged again and refused. (Found
// by review: the would-block was remembered, and served known_clean.)
func TestWouldBlockWhileRemoteDownIsNotRemembered(t *testing.T) {
	dir := t.TempDir()
	body := []byte("the bytes of a file a trial list holds")
	sum := sha256.Sum256(body)
	bank := filepath.Join(dir, "trial.bank")
	if err := os.WriteFile(bank, []byte("sha256 "+hex.EncodeToString(sum[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	local, err := matcher.NewLocal(matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "TRIAL", Path: bank, Mode: matcher.ModeReport}}, ReloadInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	remote := &flakyRemote{}
	remote.down.Store(true)
	g, err := matcher.NewGuard(matcher.GuardConfig{Local: local, Remotes: []matcher.Remote{{Name: "service:x", Matcher: remote}},
		FailPolicy: matcher.FailOpen, Cache: matcher.CacheConfig{MaxEntries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	o := &lastOutcome{}
	p, err := mediaproxy.New(mediaproxy.Config{Matcher: g, Observer: o, TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	get := func() int {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, httptest.NewRequest("GET", "/_matrix/media/v3/download/hs.example/abc", nil), func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.WriteHeader(200)
			_, err := io.Copy(w, bytes.NewReader(body))
			return err
		})
		return w.Code
	}
	if c := get(); c != 200 || o.v.Load() != mediaproxy.WouldBlock {
		t.Fatalf("remote down: %d %v, want 200 would_block", c, o.v.Load())
	}
	remote.down.Store(false)
	if c := get(); c != 404 || o.v.Load() != mediaproxy.Blocked {
		t.Fatalf("remote back and listing it: %d %v, want 404 blocked", c, o.v.Load())
	}
}
