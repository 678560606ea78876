package matcher

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/fakes"
)

// pdqQuery is an image query carrying the PDQ hash hexHash of quality q.
func pdqQuery(t testing.TB, hexHash string, quality int) Query {
	t.Helper()
	h, err := pdq.ParseHex(hexHash)
	if err != nil {
		t.Fatal(err)
	}
	return Query{Has: HasPDQ, PDQ: h, PDQQuality: quality, Kind: KindImage}
}

func newTestHMA(t testing.TB, cfg HMAConfig) *HMA {
	t.Helper()
	h, err := NewHMA(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestNewHMAConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     HMAConfig
		wantErr string
	}{
		{"ok", HMAConfig{URL: "http://hma:5100", Banks: []string{"TEST_BANK", "_X9"}}, ""},
		{"no URL", HMAConfig{}, "URL is required"},
		{"relative URL", HMAConfig{URL: "hma:5100"}, "absolute"},
		{"ftp", HMAConfig{URL: "ftp://hma"}, "absolute"},
		{"lowercase bank", HMAConfig{URL: "http://hma", Banks: []string{"test bank"}}, "not an HMA bank name"},
		{"comma in bank", HMAConfig{URL: "http://hma", Banks: []string{"A,B"}}, "not an HMA bank name"},
		{"negative timeout", HMAConfig{URL: "http://hma", Timeout: -1}, "negative"},
		{"quality above 100", HMAConfig{URL: "http://hma", MinPDQQuality: new(int(101))}, "out of range"},
		{"negative quality", HMAConfig{URL: "http://hma", MinPDQQuality: new(int(-1))}, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := NewHMA(tc.cfg)
			if tc.wantErr == "" {
				if err != nil || h.timeout != DefaultRemoteTimeout || h.Name() != "hma" {
					t.Fatalf("NewHMA = %+v, %v; want defaults applied", h, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v; want it to mention %q", err, tc.wantErr)
			}
		})
	}
}

// The fake answers per bank, unsorted; the client must pick the closest
// content across banks, not the first key or first entry.
func TestHMAMatchPicksSmallestDistance(t *testing.T) {
	f := newFakeHMA(t)
	f.SetContents(
		fakes.HMAContent{Bank: "A_BANK", ID: 4, SignalType: "pdq", Signal: hmaShrink},
		fakes.HMAContent{Bank: "A_BANK", ID: 5, SignalType: "pdq", Signal: hmaContrast},
		fakes.HMAContent{Bank: "Z_BANK", ID: 3, SignalType: "pdq", Signal: hmaBase},
	)
	h := newTestHMA(t, HMAConfig{URL: f.URL})
	q := pdqQuery(t, hmaNear8, 90)
	v, err := h.Match(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Match || v.Bank != "Z_BANK" || v.Distance != 8 || v.HashType != PDQ {
		t.Fatalf("verdict %+v; want Z_BANK at distance 8", v)
	}
	if v.Source != "hma:Z_BANK" || v.Confidence != PDQConfidence(8) || v.MatchedHash != hmaNear8 {
		t.Fatalf("verdict %+v; want source hma:Z_BANK, confidence %v, the query hash", v, PDQConfidence(8))
	}
	if len(v.Evidence) != 3 {
		t.Fatalf("evidence %+v; want all 3 matches", v.Evidence)
	}
	if e := v.Evidence[0]; e.Label != "hma content 3" || e.Source != "hma:Z_BANK" {
		t.Fatalf("best evidence %+v", e)
	}
	for i := 1; i < len(v.Evidence); i++ {
		if v.Evidence[i-1].Distance > v.Evidence[i].Distance {
			t.Fatalf("evidence not sorted by distance: %+v", v.Evidence)
		}
	}
	// The distances are HMA's own, checked against the hashes.
	for _, e := range v.Evidence {
		want := map[string]string{"hma content 4": hmaShrink, "hma content 5": hmaContrast, "hma content 3": hmaBase}[e.Label]
		b, _ := pdq.ParseHex(want)
		if d := pdq.Distance(q.PDQ, b); d != e.Distance {
			t.Errorf("%s distance %d; hashes are %d apart", e.Label, e.Distance, d)
		}
	}
}

func TestHMARequestFollowsProtocol(t *testing.T) {
	f := newFakeHMA(t)
	f.Token = "s3cret"
	h := newTestHMA(t, HMAConfig{URL: f.URL + "/", APIKey: "s3cret", Banks: []string{"TEST_BANK", "OTHER_BANK"}})
	v, err := h.Match(context.Background(), pdqQuery(t, hmaBase, 100))
	if err != nil || !v.Match || v.Distance != 0 || v.Confidence != 1 {
		t.Fatalf("Match = %+v, %v; want an exact match", v, err)
	}
	q := f.LastQuery()
	if q.Get("signal_type") != "pdq" || q.Get("signal") != hmaBase || q.Get("banks") != "TEST_BANK,OTHER_BANK" {
		t.Fatalf("query %v", q)
	}

	// The fake holds HMA to its word: uppercase hex is a 400. The
	// client never sends it, even for a query built from uppercase.
	req, _ := http.NewRequest(http.MethodGet, f.URL+"/m/lookup?signal_type=pdq&signal="+strings.ToUpper(hmaBase), nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("fake accepted uppercase hex: %d", resp.StatusCode)
	}
}

func TestHMANoMatch(t *testing.T) {
	f := newFakeHMA(t)
	h := newTestHMA(t, HMAConfig{URL: f.URL})
	for _, hx := range []string{hmaFar, hmaDist32} {
		v, err := h.Match(context.Background(), pdqQuery(t, hx, 100))
		if err != nil || v.Match {
			t.Fatalf("%s: Match = %+v, %v; want no match, no error", hx, v, err)
		}
	}
	v, err := h.Match(context.Background(), pdqQuery(t, hmaDist31, 100))
	if err != nil || !v.Match || v.Distance != 31 {
		t.Fatalf("distance 31: Match = %+v, %v; want a match", v, err)
	}
}

// HMA drops PDQ hashes of quality below 50 when it hashes, never matches
// the all-zero hash, and has no photo MD5 signal type: such queries must not
// reach it. The quality cut-off is the configured min_pdq_quality (default
// 50), as for local banks.
func TestHMASkipsWhatHMACannotMatch(t *testing.T) {
	zero := Query{Has: HasPDQ, PDQQuality: 100, Kind: KindImage}
	imageMD5 := Query{Has: HasMD5, MD5: md5.Sum([]byte("x")), Kind: KindImage}
	q := func(n int) *int { return &n }
	for _, tc := range []struct {
		name       string
		minQuality *int
		q          Query
		wantCall   bool
		wantNote   string
	}{
		{"quality 49", nil, pdqQuery(t, hmaBase, 49), false, "quality 49 < 50"},
		{"quality 50", nil, pdqQuery(t, hmaBase, 50), true, ""},
		{"quality 30, minimum 20", q(20), pdqQuery(t, hmaBase, 30), true, ""},
		{"quality 0, minimum 0", q(0), pdqQuery(t, hmaBase, 0), true, ""},
		{"quality 69, minimum 70", q(70), pdqQuery(t, hmaBase, 69), false, "quality 69 < 70"},
		{"quality 70, minimum 70", q(70), pdqQuery(t, hmaBase, 70), true, ""},
		{"zero hash", q(0), zero, false, "all zero"},
		{"image MD5 only", nil, imageMD5, false, "nothing to look up"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeHMA(t)
			h := newTestHMA(t, HMAConfig{URL: f.URL, MinPDQQuality: tc.minQuality})
			v, err := h.Match(context.Background(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if called := f.Lookups.Load() > 0; called != tc.wantCall {
				t.Fatalf("HMA called = %v; want %v", called, tc.wantCall)
			}
			if tc.wantNote != "" && (len(v.Notes) != 1 || !strings.Contains(v.Notes[0], tc.wantNote)) {
				t.Fatalf("notes %q; want %q", v.Notes, tc.wantNote)
			}
		})
	}
}

func TestHMAVideoMD5(t *testing.T) {
	sum := md5.Sum([]byte("some video"))
	f := newFakeHMA(t)
	f.SetContents(fakes.HMAContent{Bank: "VIDEOS", ID: 77, SignalType: "video_md5", Signal: hex.EncodeToString(sum[:])})
	h := newTestHMA(t, HMAConfig{URL: f.URL})

	v, err := h.Match(context.Background(), Query{Has: HasMD5, MD5: sum, Kind: KindVideo})
	if err != nil || !v.Match || v.HashType != VideoMD5 || v.Confidence != 1 || v.Bank != "VIDEOS" || v.Distance != 0 {
		t.Fatalf("Match = %+v, %v; want a video_md5 match", v, err)
	}
	if q := f.LastQuery(); q.Get("signal_type") != "video_md5" {
		t.Fatalf("query %v", q)
	}
	// The same MD5 on an image is not a video MD5.
	n := f.Lookups.Load()
	if v, err := h.Match(context.Background(), Query{Has: HasMD5, MD5: sum, Kind: KindImage}); err != nil || v.Match || f.Lookups.Load() != n {
		t.Fatalf("image MD5 looked up as video: %+v, %v", v, err)
	}
}

// HMA 1.1.7 answers "distance":"-" for exact signal types (see
// parseHMALookup): for video_md5 that is a match at distance 0, for PDQ (which always
// has a distance) it is not HMA's protocol.
func TestHMAExactDistance(t *testing.T) {
	sum := md5.Sum([]byte("some video"))
	video := Query{Has: HasMD5, MD5: sum, Kind: KindVideo}
	for _, tc := range []struct {
		name    string
		q       Query
		body    string
		want    error
		wantHit bool
	}{
		{"video dash", video, `{"B":[{"bank_content_id":3,"distance":"-"}]}`, nil, true},
		{"video dash spaced JSON", video, `{"B":[{"bank_content_id":3,"distance" : "-" }]}`, nil, true},
		{"video numeric", video, `{"B":[{"bank_content_id":3,"distance":"0"}]}`, nil, true},
		{"video dash in a longer string", video, `{"B":[{"bank_content_id":3,"distance":"--"}]}`, ErrBadResponse, false},
		{"pdq dash", pdqQuery(t, hmaBase, 100), `{"B":[{"bank_content_id":3,"distance":"-"}]}`, ErrBadResponse, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeHMA(t)
			f.SetRaw(&fakes.Raw{Status: 200, ContentType: "application/json", Body: tc.body})
			h := newTestHMA(t, HMAConfig{URL: f.URL})
			v, err := h.Match(context.Background(), tc.q)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Match = %+v, %v; want error %v", v, err, tc.want)
			}
			if v.Match != tc.wantHit {
				t.Fatalf("match = %v; want %v", v.Match, tc.wantHit)
			}
			if tc.wantHit && (v.Distance != 0 || v.Confidence != 1 || v.HashType != VideoMD5 || v.Evidence[0].Label != "hma content 3") {
				t.Fatalf("verdict %+v; want video_md5 content 3 at distance 0, confidence 1", v)
			}
		})
	}
}

func TestHMAToleratesNumericDistance(t *testing.T) {
	f := newFakeHMA(t)
	f.SetRaw(&fakes.Raw{Status: 200, ContentType: "application/json", Body: `{"TEST_BANK":[{"bank_content_id":7,"distance":3},{"bank_content_id":"8","distance":"5"}]}`})
	h := newTestHMA(t, HMAConfig{URL: f.URL})
	v, err := h.Match(context.Background(), pdqQuery(t, hmaBase, 100))
	if err != nil || !v.Match || v.Distance != 3 || v.Evidence[0].Label != "hma content 7" {
		t.Fatalf("Match = %+v, %v", v, err)
	}
}

// Every way HMA can fail to answer is an error, never "no match".
func TestHMAErrors(t *testing.T) {
	jsonRaw := func(body string) *fakes.Raw {
		return &fakes.Raw{Status: 200, ContentType: "application/json", Body: body}
	}
	for _, tc := range []struct {
		name    string
		setup   func(f *fakes.HMA, cfg *HMAConfig)
		want    error
		wantMsg string
	}{
		{"index not loaded", func(f *fakes.HMA, _ *HMAConfig) { f.Loaded.Store(false) }, ErrUnavailable, "index not yet ready"},
		{"index stale plain text", func(f *fakes.HMA, _ *HMAConfig) {
			f.SetRaw(&fakes.Raw{Status: 503, ContentType: "text/html", Body: "INDEX-STALE"})
		}, ErrUnavailable, "INDEX-STALE"},
		{"server error", func(f *fakes.HMA, _ *HMAConfig) {
			f.SetRaw(&fakes.Raw{Status: 500, ContentType: "text/html", Body: "<h1>oops</h1>"})
		}, ErrUnavailable, "HTTP 500"},
		{"rejected as bad request", func(f *fakes.HMA, _ *HMAConfig) {
			f.SetRaw(&fakes.Raw{Status: 400, ContentType: "application/json", Body: `{"message":"invalid signal: invalid PDQ hash"}`})
		}, ErrUnavailable, "invalid PDQ hash"},
		{"wrong token", func(f *fakes.HMA, c *HMAConfig) { f.Token = "right"; c.APIKey = "wrong" }, ErrUnavailable, "HTTP 401"},
		{"no token", func(f *fakes.HMA, _ *HMAConfig) { f.Token = "right" }, ErrUnavailable, "HTTP 401"},
		{"malformed JSON", func(f *fakes.HMA, _ *HMAConfig) { f.SetRaw(jsonRaw(`{"TEST_BANK":[{"bank_content_id":1,`)) }, ErrBadResponse, ""},
		{"raw_lookup shape", func(f *fakes.HMA, _ *HMAConfig) {
			f.SetRaw(jsonRaw(`{"matches":[{"bank_content_id":17,"distance":"3"}]}`))
		}, ErrBadResponse, "not a bank name"},
		{"bare ids", func(f *fakes.HMA, _ *HMAConfig) { f.SetRaw(jsonRaw(`{"TEST_BANK":[17]}`)) }, ErrBadResponse, ""},
		{"array", func(f *fakes.HMA, _ *HMAConfig) { f.SetRaw(jsonRaw(`[]`)) }, ErrBadResponse, ""},
		{"null", func(f *fakes.HMA, _ *HMAConfig) { f.SetRaw(jsonRaw(`null`)) }, ErrBadResponse, ""},
		{"bank not a list", func(f *fakes.HMA, _ *HMAConfig) { f.SetRaw(jsonRaw(`{"TEST_BANK":{"x":1}}`)) }, ErrBadResponse, ""},
		{"distance not a number", func(f *fakes.HMA, _ *HMAConfig) {
			f.SetRaw(jsonRaw(`{"TEST_BANK":[{"bank_content_id":1,"distance":"far"}]}`))
		}, ErrBadResponse, "bad distance"},
		{"distance missing", func(f *fakes.HMA, _ *HMAConfig) { f.SetRaw(jsonRaw(`{"TEST_BANK":[{"bank_content_id":1}]}`)) }, ErrBadResponse, "bad distance"},
		{"negative distance", func(f *fakes.HMA, _ *HMAConfig) {
			f.SetRaw(jsonRaw(`{"TEST_BANK":[{"bank_content_id":1,"distance":"-1"}]}`))
		}, ErrBadResponse, "bad distance"},
		{"id missing", func(f *fakes.HMA, _ *HMAConfig) { f.SetRaw(jsonRaw(`{"TEST_BANK":[{"distance":"1"}]}`)) }, ErrBadResponse, "bank_content_id"},
		{"oversized answer", func(f *fakes.HMA, _ *HMAConfig) {
			f.SetRaw(jsonRaw(`{"TEST_BANK":[` + strings.Repeat(`{"bank_content_id":1,"distance":"1"},`, 40000) + `{"bank_content_id":1,"distance":"1"}]}`))
		}, ErrBadResponse, "larger than"},
		{"slow", func(f *fakes.HMA, c *HMAConfig) { f.SetDelay(2 * time.Second); c.Timeout = 50 * time.Millisecond }, ErrUnavailable, "no answer within 50ms"},
		{"connection refused", func(f *fakes.HMA, _ *HMAConfig) { f.Close() }, ErrUnavailable, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeHMA(t)
			cfg := HMAConfig{URL: f.URL}
			tc.setup(f, &cfg)
			h := newTestHMA(t, cfg)
			start := time.Now()
			v, err := h.Match(context.Background(), pdqQuery(t, hmaBase, 100))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Match = %+v, %v; want %v", v, err, tc.want)
			}
			if tc.wantMsg != "" && !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("error %q; want it to mention %q", err, tc.wantMsg)
			}
			if time.Since(start) > time.Second {
				t.Fatalf("took %s: the timeout did not bound the request", time.Since(start))
			}
		})
	}
}

// A caller that goes away gets its own ctx.Err(), not ErrUnavailable, so a
// Guard does not blame HMA for it.
func TestHMACallerCancel(t *testing.T) {
	f := newFakeHMA(t)
	f.SetDelay(2 * time.Second)
	h := newTestHMA(t, HMAConfig{URL: f.URL})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, cancel)
	_, err := h.Match(ctx, pdqQuery(t, hmaBase, 100))
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v; want context.Canceled only", err)
	}
}

func TestHMAStatus(t *testing.T) {
	f := newFakeHMA(t)
	f.Loaded.Store(false)
	h := newTestHMA(t, HMAConfig{URL: f.URL})
	word, err := h.Status(context.Background())
	if !errors.Is(err, ErrUnavailable) || word != "INDEX-NOT-LOADED" {
		t.Fatalf("Status = %q, %v; want INDEX-NOT-LOADED, ErrUnavailable", word, err)
	}
	f.Loaded.Store(true)
	if word, err := h.Status(context.Background()); err != nil || word != "I-AM-ALIVE" {
		t.Fatalf("Status = %q, %v", word, err)
	}
}

// Probe answers "lookups work again" only when /readyz (if HMA has it) and
// a lookup both succeed; while the index loads it asks nothing more of HMA.
func TestHMAProbe(t *testing.T) {
	for _, tc := range []struct {
		name        string
		setup       func(f *fakes.HMA)
		want        error
		wantMsg     string
		wantLookups int64
	}{
		{"ready", nil, nil, "", 1},
		{"index loading", func(f *fakes.HMA) { f.Loaded.Store(false) }, ErrUnavailable, "INDEX-NOT-LOADED", 0},
		{"before 1.1.5: no /readyz", func(f *fakes.HMA) { f.NoReadyz.Store(true) }, nil, "", 1},
		{"before 1.1.5, loading", func(f *fakes.HMA) { f.NoReadyz.Store(true); f.Loaded.Store(false) }, ErrUnavailable, "index not yet ready", 1},
		{"lookups broken", func(f *fakes.HMA) { f.SetRaw(&fakes.Raw{Status: 500, ContentType: "text/html", Body: "oops"}) }, ErrUnavailable, "HTTP 500", 1},
		{"lookups wrong shape", func(f *fakes.HMA) {
			f.SetRaw(&fakes.Raw{Status: 200, ContentType: "application/json", Body: `{"matches":[]}`})
		}, ErrBadResponse, "", 1},
		{"wrong token", func(f *fakes.HMA) { f.Token = "right" }, ErrUnavailable, "HTTP 401", 0},
		{"down", func(f *fakes.HMA) { f.Close() }, ErrUnavailable, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeHMA(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			h := newTestHMA(t, HMAConfig{URL: f.URL})
			err := h.Probe(context.Background())
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Probe = %v; want %v", err, tc.want)
			}
			if tc.wantMsg != "" && !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("error %q; want it to mention %q", err, tc.wantMsg)
			}
			if n := f.Lookups.Load(); n != tc.wantLookups {
				t.Fatalf("%d lookups; want %d", n, tc.wantLookups)
			}
		})
	}
}

// HMA is asked about every form of the media (frames, orientation,
// composites), not only the picture as stored; a form's match names it.
func TestHMAMatchesForms(t *testing.T) {
	f := newFakeHMA(t)
	f.SetContents(fakes.HMAContent{Bank: "A_BANK", ID: 7, SignalType: "pdq", Signal: hmaBase})
	h := newTestHMA(t, HMAConfig{URL: f.URL})
	other, _ := pdq.ParseHex(strings.Repeat("0f", 32))
	listed, _ := pdq.ParseHex(hmaNear8)
	q := Query{Has: HasPDQ, PDQ: other, PDQQuality: 90, Kind: KindImage, Forms: []pdq.Form{
		{Name: "frame 2", Hash: other, Quality: 90},
		{Name: "frame 3", Hash: listed, Quality: 90},
		{Name: "on white", Hash: listed, Quality: 10}, // below the minimum: not asked
	}}
	v, err := h.Match(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Match || v.Distance != 8 || len(v.Evidence) != 1 || v.Evidence[0].Form != "frame 3" || v.MatchedHash != hmaNear8 {
		t.Fatalf("verdict %+v", v)
	}
	q.Forms = q.Forms[:1]
	if v, err := h.Match(context.Background(), q); err != nil || v.Match {
		t.Fatalf("no listed form: %+v %v", v, err)
	}
}
