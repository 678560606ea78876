package service

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// blocksPNG is a deterministic picture of random blocks: a PDQ hash of
// high quality.
func blocksPNG(t *testing.T, seed uint64) []byte {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	img := image.NewRGBA(image.Rect(0, 0, 128, 128))
	for by := 0; by < 16; by++ {
		for bx := 0; bx < 16; bx++ {
			c := color.RGBA{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), 255}
			for y := by * 8; y < by*8+8; y++ {
				for x := bx * 8; x < bx*8+8; x++ {
					img.Set(x, y, c)
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// nearEntry is a bank line for a PDQ hash at distance d from img's.
func nearEntry(t *testing.T, img []byte, d int, label string) string {
	t.Helper()
	res, _, err := pdq.HashBytes(img, pdq.DecodeOptions{}, pdq.Options{})
	if err != nil || res.Quality < matcher.DefaultMinPDQQuality {
		t.Fatalf("test picture: quality %d, %v", res.Quality, err)
	}
	h := res.Hash
	for k := 0; k < d; k++ {
		h[k/64] ^= 1 << (k % 64)
	}
	return "pdq " + h.String() + " " + label + "\n"
}

type outcomeLog struct {
	mu  sync.Mutex
	got []mediaproxy.Decision
}

func (o *outcomeLog) Observe(d *mediaproxy.Decision) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, *d)
}

func (o *outcomeLog) last() mediaproxy.Decision {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.got[len(o.got)-1]
}

// A near-duplicate in the review band passes and is recorded for review;
// confirming it (concurrently, many times) banks it once and refuses its
// next upload; dismissing another allowlists it, so it passes clean from
// then on. Unknown and repeated decisions answer clearly.
func TestConfirmAndDismiss(t *testing.T) {
	dir := t.TempDir()
	a, b := blocksPNG(t, 1), blocksPNG(t, 2)
	listed := filepath.Join(dir, "listed.txt")
	if err := os.WriteFile(listed, []byte(nearEntry(t, a, 36, "case-a")+nearEntry(t, b, 40, "case-b")), 0o600); err != nil {
		t.Fatal(err)
	}
	log, err := audit.Open(audit.Options{Path: filepath.Join(dir, "audit.log")})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	obs := &outcomeLog{}
	confirmed, allow := filepath.Join(dir, "confirmed.txt"), filepath.Join(dir, "allow.txt")
	s, err := New(Config{
		Local: matcher.LocalConfig{ReviewThreshold: 45, Banks: []matcher.BankConfig{
			{Name: "LISTED", Path: listed}, {Name: "CONFIRMED", Path: confirmed}, {Name: "FALSE_POSITIVES", Path: allow, Allow: true}}},
		ConfirmedBank: "CONFIRMED", Allowlist: "FALSE_POSITIVES",
		Proxy:    mediaproxy.Config{TempDir: dir, Hashing: mediaproxy.HashingInline},
		Audit:    log,
		Observer: obs,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	upload := func(body []byte, name string) (int, mediaproxy.Decision) {
		w := httptest.NewRecorder()
		s.Proxy().ServeHTTP(w, httptest.NewRequest("POST", "/_matrix/media/v3/upload", bytes.NewReader(body)), func(w http.ResponseWriter, r *http.Request) error {
			w.Write([]byte(`{"content_uri":"mxc://hs/` + name + `"}`))
			return nil
		})
		return w.Code, obs.last()
	}
	reviewID := func() string {
		var id string
		audit.Read(log.Path(), time.Time{}, func(r audit.Record) error {
			if r.Kind == audit.KindReview {
				id = r.ID
			}
			return nil
		})
		return id
	}

	if code, d := upload(a, "A1"); code != 200 || d.Outcome != mediaproxy.Review || d.Verdict.Distance != 36 {
		t.Fatalf("near-duplicate A: %d %s %+v", code, d.Outcome, d.Verdict)
	}
	idA := reviewID()

	const n = 8
	replies := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.ConfirmDetection(ctx, idA, "@mod:hs")
			if err != nil {
				t.Error(err)
			}
			replies[i] = r
		}()
	}
	wg.Wait()
	fresh := 0
	for _, r := range replies {
		switch {
		case strings.HasPrefix(r, "confirmed detection "+idA+": "):
			fresh++
			if !strings.Contains(r, "mxc://hs/A1 is blocked") {
				t.Errorf("reply %q", r)
			}
		case strings.Contains(r, "already confirmed (by @mod:hs)"):
		default:
			t.Errorf("reply %q", r)
		}
	}
	if fresh != 1 {
		t.Fatalf("%d confirmations took effect: %q", fresh, replies)
	}
	file, _ := os.ReadFile(confirmed)
	lines := strings.Split(strings.TrimSpace(string(file)), "\n")
	// The header, md5, sha1, sha256 and the stored picture's PDQ: once.
	if len(lines) != 5 || strings.Count(string(file), idA) != 4 {
		t.Fatalf("confirmed bank:\n%s", file)
	}
	if code, d := upload(a, "A2"); code != 403 || d.Outcome != mediaproxy.Blocked || d.Verdict.Bank != "CONFIRMED" {
		t.Fatalf("A after confirmation: %d %s %+v", code, d.Outcome, d.Verdict)
	}
	if blocked, _ := s.Proxy().Memory().Get(mediaproxy.MediaKey{Server: "hs", ID: "A1"}.Original()); !blocked.Blocked {
		t.Errorf("stored A not blocked in memory: %+v", blocked)
	}

	if code, d := upload(b, "B1"); code != 200 || d.Outcome != mediaproxy.Review {
		t.Fatalf("near-duplicate B: %d %s", code, d.Outcome)
	}
	idB := reviewID()
	if r, err := s.DismissDetection(ctx, idB, "@mod2:hs"); err != nil || !strings.Contains(r, "allowlist FALSE_POSITIVES") {
		t.Fatalf("dismiss: %q, %v", r, err)
	}
	if r, err := s.DismissDetection(ctx, idB, "@mod2:hs"); err != nil || !strings.Contains(r, "already dismissed (by @mod2:hs)") {
		t.Fatalf("second dismissal: %q, %v", r, err)
	}
	if r, err := s.ConfirmDetection(ctx, idB, "@mod:hs"); err != nil || !strings.Contains(r, "already dismissed") {
		t.Fatalf("confirming a dismissed detection: %q, %v", r, err)
	}
	for i := range 2 {
		if code, d := upload(b, "B2"); code != 200 || d.Outcome != mediaproxy.Clean || d.Verdict.Allowlisted != "FALSE_POSITIVES" {
			t.Fatalf("B after dismissal (%d): %d %s %+v", i, code, d.Outcome, d.Verdict)
		}
	}
	if _, err := s.ConfirmDetection(ctx, "0123", "@mod:hs"); !errors.Is(err, ErrUnknownDetection) {
		t.Errorf("unknown id: %v", err)
	}
	var decided []string
	audit.Read(log.Path(), time.Time{}, func(r audit.Record) error {
		if r.Kind == audit.KindAction && (r.Action == audit.ActionConfirm || r.Action == audit.ActionDismiss) {
			decided = append(decided, r.Action+" "+r.Ref+" "+r.User)
		}
		return nil
	})
	if want := []string{"confirm " + idA + " @mod:hs", "dismiss " + idB + " @mod2:hs"}; strings.Join(decided, ",") != strings.Join(want, ",") {
		t.Errorf("audited decisions %q, want %q", decided, want)
	}
}

// Under review_action hold, a held upload stores nothing and is refused
// until a moderator dismisses it; then the client's retry passes. A held
// download answers 404 until the dismissal releases it.
func TestHeldUntilDismissed(t *testing.T) {
	dir := t.TempDir()
	img := blocksPNG(t, 3)
	listed := filepath.Join(dir, "listed.txt")
	if err := os.WriteFile(listed, []byte(nearEntry(t, img, 40, "case-c")), 0o600); err != nil {
		t.Fatal(err)
	}
	log, err := audit.Open(audit.Options{Path: filepath.Join(dir, "audit.log")})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	obs := &outcomeLog{}
	s, err := New(Config{
		Local: matcher.LocalConfig{ReviewThreshold: 45, Banks: []matcher.BankConfig{
			{Name: "LISTED", Path: listed}, {Name: "FALSE_POSITIVES", Path: filepath.Join(dir, "allow.txt"), Allow: true}}},
		Allowlist: "FALSE_POSITIVES",
		Proxy:     mediaproxy.Config{TempDir: dir, Hashing: mediaproxy.HashingInline, ReviewAction: mediaproxy.ReviewHold, ServerName: "hs"},
		Audit:     log,
		Observer:  obs,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	forwarded := 0
	serve := func(method, path string, body []byte) int {
		w := httptest.NewRecorder()
		s.Proxy().ServeHTTP(w, httptest.NewRequest(method, path, bytes.NewReader(body)), func(w http.ResponseWriter, r *http.Request) error {
			forwarded++
			if method == "POST" {
				w.Write([]byte(`{"content_uri":"mxc://hs/C1"}`))
				return nil
			}
			w.Header().Set("Content-Type", "image/png")
			w.Write(img)
			return nil
		})
		return w.Code
	}
	if code := serve("POST", "/_matrix/media/v3/upload", img); code != 403 || forwarded != 0 || obs.last().Outcome != mediaproxy.Held {
		t.Fatalf("held upload: %d, %d forwarded, %s", code, forwarded, obs.last().Outcome)
	}
	if code := serve("GET", "/_matrix/client/v1/media/download/hs/stored", nil); code != 404 || obs.last().Outcome != mediaproxy.Held {
		t.Fatalf("held download: %d %s", code, obs.last().Outcome)
	}
	var ids []string
	audit.Read(log.Path(), time.Time{}, func(r audit.Record) error {
		if r.Kind == audit.KindReview {
			ids = append(ids, r.ID)
		}
		return nil
	})
	if len(ids) != 2 {
		t.Fatalf("review records %q", ids)
	}
	for _, id := range ids {
		if r, err := s.DismissDetection(ctx, id, "@mod:hs"); err != nil || !strings.Contains(r, "dismissed detection") {
			t.Fatalf("dismiss %s: %q %v", id, r, err)
		}
	}
	if code := serve("POST", "/_matrix/media/v3/upload", img); code != 200 || obs.last().Outcome != mediaproxy.Clean {
		t.Fatalf("retried upload: %d %s", code, obs.last().Outcome)
	}
	if code := serve("GET", "/_matrix/client/v1/media/download/hs/stored", nil); code != 200 {
		t.Fatalf("released download: %d %s", code, obs.last().Outcome)
	}
}
