package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/testkit"
	"github.com/mediaguard/mediaguard/ledger"
	"github.com/mediaguard/mediaguard/lookupapi"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

type countObserver struct{ outcomes []mediaproxy.Outcome }

func (c *countObserver) Observe(d *mediaproxy.Decision) { c.outcomes = append(c.outcomes, d.Outcome) }

// One Config builds a working whole: an upload of banked bytes is refused
// and on record before the adapter's observer hears of it, and the lookup
// API answers from the same banks.
func TestServiceWiresTheStages(t *testing.T) {
	dir := t.TempDir()
	listed := []byte("listed bytes, not an image")
	sum := sha256.Sum256(listed)
	bank := filepath.Join(dir, "b.bank")
	if err := os.WriteFile(bank, []byte("sha256 "+hex.EncodeToString(sum[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log, err := audit.Open(audit.Options{Path: filepath.Join(dir, "audit.log")})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	obs := &countObserver{}
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer hook.Close()
	var calls atomic.Int64
	s, err := New(Config{
		Local:         matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "TEST", Path: bank}}},
		Proxy:         mediaproxy.Config{TempDir: dir, Hashing: mediaproxy.HashingInline},
		Audit:         log,
		Webhook:       hook.URL,
		Observer:      obs,
		OnBackendCall: func(b string, _ time.Duration) { calls.Add(1) },
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
	upstream := 0
	next := func(w http.ResponseWriter, r *http.Request) error {
		upstream++
		w.Write([]byte(`{"content_uri":"mxc://hs/x"}`))
		return nil
	}
	w := httptest.NewRecorder()
	s.Proxy().ServeHTTP(w, httptest.NewRequest("POST", "/_matrix/media/v3/upload", bytes.NewReader(listed)), next)
	if w.Code != 403 || upstream != 0 {
		t.Fatalf("listed upload: %d, %d forwarded", w.Code, upstream)
	}
	if len(obs.outcomes) != 1 || obs.outcomes[0] != mediaproxy.Blocked {
		t.Fatalf("observer heard %v", obs.outcomes)
	}
	var kinds []string
	audit.Read(log.Path(), time.Time{}, func(r audit.Record) error { kinds = append(kinds, r.Kind); return nil })
	if len(kinds) != 1 || kinds[0] != audit.KindBlock {
		t.Fatalf("audit %v", kinds)
	}
	if calls.Load() != 1 {
		t.Fatalf("%d backend calls reported; want the local banks' one", calls.Load())
	}
	testkit.Eventually(t, "the webhook notice delivered", func() bool { return s.NoticeStats()["webhook"].Delivered == 1 })
	if _, ok := s.NoticeStats()["matrix"]; ok {
		t.Fatal("stats of a Matrix notifier that is not configured")
	}

	var answers []lookupapi.Answer
	h, err := s.Lookup(LookupConfig{OnAnswer: func(a lookupapi.Answer) { answers = append(answers, a) }})
	if err != nil {
		t.Fatal(err)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/", strings.NewReader(`{"hashes":{"sha256":"`+hex.EncodeToString(sum[:])+`"}}`)))
	if w.Code != 200 || !strings.Contains(w.Body.String(), "TEST") {
		t.Fatalf("lookup: %d %s", w.Code, w.Body)
	}
	if len(answers) != 1 || answers[0].Action != lookupapi.ActionBlock {
		t.Fatalf("answers reported: %+v", answers)
	}
	s.Close() // twice is fine
}

// A failing stage leaves nothing running and says which it was.
func TestNewFails(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Local: matcher.LocalConfig{PDQThreshold: 99}}, "threshold"},
		{Config{HMA: []matcher.HMAConfig{{URL: "::"}}}, "hma ::"},
		{Config{Services: []matcher.ServiceConfig{{URL: "::"}}}, "service ::"},
		{Config{Proxy: mediaproxy.Config{Hashing: "sideways"}}, "hashing"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want it to mention %q", tc.cfg, err, tc.want)
		}
	}
}

// Each closed-set option is read one way, empty being its default.
func TestParseOptions(t *testing.T) {
	if p, err := ParseFailPolicy(""); err != nil || p != matcher.FailOpen {
		t.Errorf("on_matcher_error empty: %v %v", p, err)
	}
	if p, err := ParseFailPolicy("closed"); err != nil || p != matcher.FailClosed {
		t.Errorf("closed: %v %v", p, err)
	}
	if v, err := ParseHashing(""); err != nil || v != mediaproxy.HashingProcess {
		t.Errorf("hashing empty: %v %v", v, err)
	}
	if v, err := ParseUndecodable("allow"); err != nil || v != mediaproxy.UndecodableAllow {
		t.Errorf("allow: %v %v", v, err)
	}
	if v, err := ParsePDQSearch(""); err != nil || v != pdq.SearchDefault {
		t.Errorf("pdq_search empty: %v %v", v, err)
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{second(ParseFailPolicy("maybe")), `on_matcher_error must be open or closed, not "maybe"`},
		{second(ParseHashing("remote")), `hashing must be process or inline, not "remote"`},
		{second(ParseUndecodable("maybe")), `on_undecodable_image must be block or allow, not "maybe"`},
		{second(ParsePDQSearch("sideways")), `pdq_search must be default, deep or off, not "sideways"`},
	} {
		var oe *OptionError
		if tc.err == nil || tc.err.Error() != tc.want || !errors.As(tc.err, &oe) {
			t.Errorf("%v, want %s", tc.err, tc.want)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// Media that passed as a would-block is in the ledger, clean under banks
// whose fingerprint carries the report mode: once the bank is enforced,
// the catch-up retro-scan at the next start finds it, blocks it and
// records the retro block, without the media being requested again.
// (Found by review: would-blocks were not recorded, so the switch
// re-judged nothing.)
func TestWouldBlockReJudgedWhenEnforced(t *testing.T) {
	dir := t.TempDir()
	body := []byte("bytes a trial list holds, not an image")
	sum := sha256.Sum256(body)
	bank := filepath.Join(dir, "trial.bank")
	if err := os.WriteFile(bank, []byte("sha256 "+hex.EncodeToString(sum[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := ledger.Open(context.Background(), ledger.Spec{Path: filepath.Join(dir, "media.ledger")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	log, err := audit.Open(audit.Options{Path: filepath.Join(dir, "audit.log")})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	start := func(mode string, obs mediaproxy.Observer) *Service {
		s, err := New(Config{
			Local:  matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "TRIAL", Path: bank, Mode: mode}}, ReloadInterval: -1},
			Proxy:  mediaproxy.Config{TempDir: dir, Hashing: mediaproxy.HashingInline},
			Ledger: store, Audit: log, Observer: obs,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	obs := &countObserver{}
	s := start(matcher.ModeReport, obs)
	w := httptest.NewRecorder()
	s.Proxy().ServeHTTP(w, httptest.NewRequest("POST", "/_matrix/media/v3/upload", bytes.NewReader(body)), func(w http.ResponseWriter, r *http.Request) error {
		w.Write([]byte(`{"content_uri":"mxc://hs.example/trial1"}`))
		return nil
	})
	if w.Code != 200 || len(obs.outcomes) != 1 || obs.outcomes[0] != mediaproxy.WouldBlock {
		t.Fatalf("upload in report mode: %d %v", w.Code, obs.outcomes)
	}
	s.Close() // drains the ledger's queue

	s = start(matcher.ModeEnforce, &countObserver{})
	defer s.Close()
	retro := func() bool {
		found := false
		audit.Read(log.Path(), time.Time{}, func(r audit.Record) error {
			found = found || r.Kind == audit.KindRetroBlock && r.Media == "hs.example/trial1"
			return nil
		})
		return found
	}
	testkit.Eventually(t, "the retro-scan blocks the would-block once enforced", retro)
}
