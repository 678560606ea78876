package matcher

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

const (
	arachnidUser = "mediaguard-test"
	arachnidPass = "s3cret-password"
	// A known item's identifiers, as near_match_details carries them.
	arachnidItemSHA256 = "2db0da447137b17d49988eeefc5ad73a58ef9f28215078d1d2f4263423bc4508"
	arachnidItemSHA1   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
)

// newFakeArachnid starts a fake knowing hmaBase as CSAM and hmaShrink
// (16 bits from it, so a separate item only near itself and hmaBase's
// neighbours... see each test) as harmful-abusive material.
func newFakeArachnid(t *testing.T, items ...fakes.ArachnidItem) *fakes.Arachnid {
	t.Helper()
	if items == nil {
		items = []fakes.ArachnidItem{{PDQ: hmaBase, Classification: "csam", SHA256Hex: arachnidItemSHA256, SHA1Base32: arachnidItemSHA1}}
	}
	return fakes.NewArachnid(t, arachnidUser, arachnidPass, items...)
}

func newTestArachnid(t testing.TB, cfg ArachnidConfig) *Arachnid {
	t.Helper()
	if cfg.Username == "" {
		cfg.Username, cfg.Password = arachnidUser, arachnidPass
	}
	a, err := NewArachnid(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// The encoding is the SDK fixture's: base64 of the hash's 32 bytes, bit
// 255 first (see arachnidPDQ). Pinned here so that changing it is a
// deliberate, one-line decision.
func TestArachnidPDQEncoding(t *testing.T) {
	for _, tc := range []struct{ hex, want string }{
		{hmaBase, "+PjwzuD0qE8GNwoiA49j8LNuLtWWYh4dM+aznE6cmyI="},
		{"80" + strings.Repeat("0", 62), "gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},
		{strings.Repeat("0", 62) + "01", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="},
	} {
		h, err := pdq.ParseHex(tc.hex)
		if err != nil {
			t.Fatal(err)
		}
		if got := arachnidPDQ(h); got != tc.want {
			t.Errorf("arachnidPDQ(%s) = %s; want %s", tc.hex, got, tc.want)
		}
		b, _ := base64.StdEncoding.DecodeString(tc.want)
		if hex.EncodeToString(b) != tc.hex {
			t.Errorf("%s does not decode to the hash's hex", tc.want)
		}
	}
}

func TestNewArachnidConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     ArachnidConfig
		wantErr string
	}{
		{"defaults", ArachnidConfig{Username: "u", Password: "p"}, ""},
		{"no username", ArachnidConfig{Password: "p"}, "username and password are required"},
		{"no password", ArachnidConfig{Username: "u"}, "username and password are required"},
		{"colon in username", ArachnidConfig{Username: "a:b", Password: "p"}, "colon"},
		{"relative URL", ArachnidConfig{URL: "shield.example", Username: "u", Password: "p"}, "absolute"},
		{"credentials in URL", ArachnidConfig{URL: "https://u:p@shield.example/", Username: "u", Password: "p"}, "must not carry credentials"},
		{"negative timeout", ArachnidConfig{Username: "u", Password: "p", Timeout: -time.Second}, "negative timeout"},
		{"batch too small", ArachnidConfig{Username: "u", Password: "p", MaxBatch: 8}, "cannot hold"},
		{"quality out of range", ArachnidConfig{Username: "u", Password: "p", MinPDQQuality: new(int(101))}, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewArachnid(tc.cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if a.Name() != "shield.projectarachnid.com" || a.endpoint != "https://shield.projectarachnid.com/v1/pdq/" || a.timeout != DefaultRemoteTimeout || a.batch == nil || a.batch.window != DefaultArachnidBatchWindow {
					t.Fatalf("defaults: name %q endpoint %q timeout %s batch %+v", a.Name(), a.endpoint, a.timeout, a.batch)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v; want it to mention %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
	// A path in the base URL is kept (a gateway in front of the service).
	a := newTestArachnid(t, ArachnidConfig{URL: "https://gw.example/arachnid"})
	if a.endpoint != "https://gw.example/arachnid/v1/pdq/" {
		t.Fatalf("endpoint %q", a.endpoint)
	}
}

// How each answer for a hash maps onto a verdict. The answers are canned
// (SetRaw) so every case the protocol allows is covered, including those
// the fake's database would not produce.
func TestArachnidMapping(t *testing.T) {
	q := pdqQuery(t, hmaBase, 100)
	key := arachnidPDQ(q.PDQ)
	near := `{"timestamp":0.0,"sha1_base32":"` + arachnidItemSHA1 + `","sha256_hex":"` + strings.ToUpper(arachnidItemSHA256) + `","classification":"csam"}`
	for _, tc := range []struct {
		name   string
		value  string // the JSON value for key in scanned_hashes
		bank   string // "" = no match
		label  string // substring of the evidence label
		reason string
	}{
		{"csam", `{"classification":"csam","match_type":"near","near_match_details":` + near + `}`, ArachnidBankCSAM, "csam, near match to known media sha256 " + arachnidItemSHA256, "classified the PDQ hash as csam (near match"},
		{"harmful", `{"classification":"harmful-abusive-material","match_type":"near","near_match_details":null}`, ArachnidBankHarmful, "harmful-abusive-material", "as harmful-abusive-material"},
		{"harmful with sha1 only", `{"classification":"harmful-abusive-material","match_type":"near","near_match_details":{"timestamp":0,"sha1_base32":"` + arachnidItemSHA1 + `","sha256_hex":"","classification":null}}`, ArachnidBankHarmful, "sha1 (base32) " + arachnidItemSHA1, ""},
		{"no-known-match", `{"classification":"no-known-match","match_type":null,"near_match_details":null}`, "", "", ""},
		{"null value", `null`, "", "", ""},
		{"null classification", `{"classification":null,"match_type":null,"near_match_details":null}`, "", "", ""},
		{"classification missing", `{"match_type":null}`, "", "", ""},
		{"unknown classification is a match", `{"classification":"sextortion-material","match_type":"near","near_match_details":null}`, ArachnidBankOther, "sextortion-material", "as sextortion-material"},
		{"case and space tolerated", `{"classification":" CSAM ","match_type":"near","near_match_details":null}`, ArachnidBankCSAM, "csam", ""},
		{"control characters dropped", `{"classification":"new\u0007\nclass","match_type":"near","near_match_details":null}`, ArachnidBankOther, "newclass", ""},
		{"bad sha256 not repeated", `{"classification":"csam","match_type":"near","near_match_details":{"timestamp":0,"sha1_base32":"x","sha256_hex":"<script>","classification":"csam"}}`, ArachnidBankCSAM, "csam", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeArachnid(t)
			f.SetRaw(&fakes.Raw{Status: 200, ContentType: "application/json", Body: `{"scanned_hashes":{"` + key + `":` + tc.value + `}}`})
			a := newTestArachnid(t, ArachnidConfig{URL: f.URL})
			v, err := a.Match(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if tc.bank == "" {
				if v.Match || len(v.Evidence) != 0 {
					t.Fatalf("want no match, got %+v", v)
				}
				return
			}
			if !v.Match || v.Bank != tc.bank || v.HashType != PDQ || v.MatchedHash != hmaBase || v.Source != "arachnid:"+a.Name() ||
				v.Variant != pdq.VariantStored || v.Distance != 0 || v.Confidence != PDQConfidence(DefaultPDQThreshold) || len(v.Evidence) != 1 {
				t.Fatalf("verdict %+v", v)
			}
			e := v.Evidence[0]
			if e.Bank != tc.bank || e.Source != v.Source || e.Hash != hmaBase || !strings.Contains(e.Label, tc.label) {
				t.Fatalf("evidence %+v; want label containing %q", e, tc.label)
			}
			if strings.ContainsAny(e.Label, "<>\a\n") {
				t.Fatalf("label %q repeats unchecked text", e.Label)
			}
			if tc.reason != "" && !strings.Contains(v.Reason, tc.reason) {
				t.Fatalf("reason %q; want %q", v.Reason, tc.reason)
			}
		})
	}
}

// Against the fake's own database: a listed hash and one near it match,
// a far one does not, whether the service answers a miss as an object or
// as null.
func TestArachnidMatchesFake(t *testing.T) {
	for _, null := range []bool{false, true} {
		t.Run(fmt.Sprint("null=", null), func(t *testing.T) {
			f := newFakeArachnid(t)
			f.NullForNoMatch.Store(null)
			a := newTestArachnid(t, ArachnidConfig{URL: f.URL})
			for _, tc := range []struct {
				hash  string
				match bool
			}{{hmaBase, true}, {hmaNear8, true}, {hmaDist31, true}, {hmaFar, false}} {
				v, err := a.Match(context.Background(), pdqQuery(t, tc.hash, 100))
				if err != nil || v.Match != tc.match {
					t.Fatalf("%s: %+v, %v; want match %v", tc.hash, v, err, tc.match)
				}
				if tc.match && (v.Bank != ArachnidBankCSAM || v.MatchedHash != tc.hash) {
					t.Fatalf("%s: %+v", tc.hash, v)
				}
			}
		})
	}
}

// Every usable PDQ form goes in the one request; a listed frame is the
// match and names its form; CSAM outranks harmful-abusive material.
func TestArachnidMatchesForms(t *testing.T) {
	f := newFakeArachnid(t,
		fakes.ArachnidItem{PDQ: hmaBase, Classification: "harmful-abusive-material"},
		fakes.ArachnidItem{PDQ: hmaFar, Classification: "csam", SHA256Hex: arachnidItemSHA256})
	a := newTestArachnid(t, ArachnidConfig{URL: f.URL})
	other, _ := pdq.ParseHex(strings.Repeat("0f", 32))
	base, _ := pdq.ParseHex(hmaBase)
	far, _ := pdq.ParseHex(hmaFar)
	q := Query{Has: HasPDQ, PDQ: other, PDQQuality: 90, Kind: KindImage, Forms: []pdq.Form{
		{Name: "frame 2", Variant: pdq.VariantFrame, Hash: base, Quality: 90},
		{Name: "frame 3", Variant: pdq.VariantFrame, Hash: far, Quality: 90},
	}}
	v, err := a.Match(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Match || v.Bank != ArachnidBankCSAM || v.Form != "frame 3" || v.Variant != pdq.VariantFrame || v.MatchedHash != hmaFar || len(v.Evidence) != 2 || v.Evidence[1].Bank != ArachnidBankHarmful || v.Evidence[1].Form != "frame 2" {
		t.Fatalf("verdict %+v", v)
	}
	if sent := f.SentHashes(); len(sent) != 1 || len(sent[0]) != 3 {
		t.Fatalf("requests %v; want one with the 3 hashes", sent)
	}
}

// Nothing but PDQ hashes leaves: not the exact digests (of the media or
// of files inside it), not the dihedral variants, not a hash below the
// quality minimum; one request, to /v1/pdq/ only, with Basic auth.
func TestArachnidSendsOnlyPDQHashes(t *testing.T) {
	f := newFakeArachnid(t)
	a := newTestArachnid(t, ArachnidConfig{URL: f.URL})
	media := []byte("the bytes of some media, which must never leave")
	q := Query{Has: HasMD5 | HasSHA1 | HasSHA256 | HasPDQ, MD5: md5.Sum(media), SHA1: sha1.Sum(media), SHA256: sha256.Sum256(media), Kind: KindImage}
	q.PDQ, _ = pdq.ParseHex(hmaFar)
	q.PDQQuality = 100
	frame, _ := pdq.ParseHex(hmaShrink)
	weak, _ := pdq.ParseHex(hmaContrast)
	rot, _ := pdq.ParseHex(hmaDist32)
	q.Forms = []pdq.Form{
		{Name: "displayed", Hash: q.PDQ, Quality: 100}, // the same as stored: sent once
		{Name: "frame 2", Hash: frame, Quality: 80},
		{Name: "on white", Hash: weak, Quality: 10}, // below the minimum
		{Name: "tiny", Quality: 0},                  // all zero
	}
	q.Dihedral = []pdq.Hash{q.PDQ, rot}
	inner := []byte("an embedded file")
	q.Embedded = []EmbeddedDigests{{Where: "zip entry", MD5: md5.Sum(inner), SHA1: sha1.Sum(inner), SHA256: sha256.Sum256(inner)}}

	if _, err := a.Match(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	reqs := f.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests; want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.Path != "/v1/pdq/" || r.RawQuery != "" || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("request %s %s?%s (%s)", r.Method, r.Path, r.RawQuery, r.Header.Get("Content-Type"))
	}
	want := `{"hashes":["` + arachnidPDQ(q.PDQ) + `","` + arachnidPDQ(frame) + `"]}`
	if string(r.Body) != want {
		t.Fatalf("body %s; want exactly %s", r.Body, want)
	}
	user, pass, ok := (&http.Request{Header: r.Header}).BasicAuth()
	if !ok || user != arachnidUser || pass != arachnidPass {
		t.Fatalf("Basic auth %q %q %v", user, pass, ok)
	}
	// Whatever the encoding, no exact digest or media byte is anywhere in
	// what was sent.
	var sent bytes.Buffer
	sent.WriteString(r.Path + "?" + r.RawQuery + "\n")
	r.Header.Write(&sent)
	sent.Write(r.Body)
	for name, secret := range map[string][]byte{"md5": q.MD5[:], "sha1": q.SHA1[:], "sha256": q.SHA256[:], "embedded md5": q.Embedded[0].MD5[:], "embedded sha1": q.Embedded[0].SHA1[:], "embedded sha256": q.Embedded[0].SHA256[:]} {
		for _, form := range []string{hex.EncodeToString(secret), strings.ToUpper(hex.EncodeToString(secret)), base64.StdEncoding.EncodeToString(secret), base64.RawURLEncoding.EncodeToString(secret), string(secret)} {
			if bytes.Contains(sent.Bytes(), []byte(form)) {
				t.Fatalf("the %s digest left in the request (%q)", name, form)
			}
		}
	}
	for _, leak := range [][]byte{media, inner, []byte(arachnidPDQ(rot)), []byte(arachnidPDQ(weak))} {
		if bytes.Contains(sent.Bytes(), leak) {
			t.Fatalf("%q left in the request", leak)
		}
	}
}

// No usable PDQ hash, no request.
func TestArachnidNoPDQNoRequest(t *testing.T) {
	f := newFakeArachnid(t)
	a := newTestArachnid(t, ArachnidConfig{URL: f.URL})
	sum := md5.Sum([]byte("video"))
	low := pdqQuery(t, hmaBase, 30)
	zero := Query{Has: HasPDQ, PDQQuality: 100}
	lowForm := pdqQuery(t, hmaFar, 20)
	base, _ := pdq.ParseHex(hmaBase)
	lowForm.Forms = []pdq.Form{{Name: "frame 2", Hash: base, Quality: 49}}
	for name, q := range map[string]Query{
		"exact digests only": {Has: HasMD5 | HasSHA256, MD5: sum, Kind: KindVideo},
		"quality too low":    low,
		"all-zero hash":      zero,
		"every form too low": lowForm,
		"nothing":            {},
	} {
		v, err := a.Match(context.Background(), q)
		if err != nil || v.Match || len(v.Notes) == 0 {
			t.Fatalf("%s: %+v, %v; want no match with a note", name, v, err)
		}
	}
	if n := len(f.Requests()); n != 0 {
		t.Fatalf("%d requests; want none", n)
	}
	// min_pdq_quality is the operator's: 30 is enough when they say so.
	a = newTestArachnid(t, ArachnidConfig{URL: f.URL, MinPDQQuality: new(int(30))})
	if v, err := a.Match(context.Background(), low); err != nil || !v.Match {
		t.Fatalf("quality 30 with minimum 30: %+v, %v", v, err)
	}
}

// Every way a lookup can fail is an error, never "no match": malformed or
// wrong-shape answers are ErrBadResponse, everything else ErrUnavailable,
// refused credentials with a message that says what to fix. Each case runs
// with and without batching.
func TestArachnidErrors(t *testing.T) {
	q := pdqQuery(t, hmaBase, 100)
	key := arachnidPDQ(q.PDQ)
	jsonRaw := func(body string) *fakes.Raw {
		return &fakes.Raw{Status: 200, ContentType: "application/json", Body: body}
	}
	for _, tc := range []struct {
		name    string
		setup   func(f *fakes.Arachnid, c *ArachnidConfig)
		want    error
		wantMsg string
	}{
		{"malformed JSON", func(f *fakes.Arachnid, _ *ArachnidConfig) { f.SetRaw(jsonRaw(`{"scanned_hashes":{"` + key + `":{`)) }, ErrBadResponse, ""},
		{"not an object", func(f *fakes.Arachnid, _ *ArachnidConfig) { f.SetRaw(jsonRaw(`[]`)) }, ErrBadResponse, "not a JSON object"},
		{"null", func(f *fakes.Arachnid, _ *ArachnidConfig) { f.SetRaw(jsonRaw(`null`)) }, ErrBadResponse, ""},
		{"no scanned_hashes", func(f *fakes.Arachnid, _ *ArachnidConfig) { f.SetRaw(jsonRaw(`{"matches":[]}`)) }, ErrBadResponse, "scanned_hashes"},
		{"scanned_hashes null", func(f *fakes.Arachnid, _ *ArachnidConfig) { f.SetRaw(jsonRaw(`{"scanned_hashes":null}`)) }, ErrBadResponse, "scanned_hashes"},
		{"hash not answered", func(f *fakes.Arachnid, _ *ArachnidConfig) {
			f.SetRaw(jsonRaw(`{"scanned_hashes":{"` + hmaBase + `":null}}`)) // keyed by hex, not as sent
		}, ErrBadResponse, "does not mention hash"},
		{"classification not a string", func(f *fakes.Arachnid, _ *ArachnidConfig) {
			f.SetRaw(jsonRaw(`{"scanned_hashes":{"` + key + `":{"classification":1,"match_type":null}}}`))
		}, ErrBadResponse, ""},
		{"value a string", func(f *fakes.Arachnid, _ *ArachnidConfig) {
			f.SetRaw(jsonRaw(`{"scanned_hashes":{"` + key + `":"csam"}}`))
		}, ErrBadResponse, "want an object or null"},
		{"oversized answer", func(f *fakes.Arachnid, _ *ArachnidConfig) {
			f.SetRaw(jsonRaw(`{"scanned_hashes":{"x":"` + strings.Repeat("a", 2<<20) + `"}}`))
		}, ErrBadResponse, "larger than"},
		{"wrong password", func(_ *fakes.Arachnid, c *ArachnidConfig) { c.Password = "wrong" }, ErrUnavailable,
			`credentials refused (HTTP 401 "Please supply your API username and password in the Authorization header"): check the arachnid username and password`},
		{"forbidden", func(f *fakes.Arachnid, _ *ArachnidConfig) {
			f.SetRaw(&fakes.Raw{Status: 403, ContentType: "application/json", Body: `{"detail":"Account disabled."}`})
		}, ErrUnavailable, `credentials refused (HTTP 403 "Account disabled.")`},
		{"rate limited", func(f *fakes.Arachnid, _ *ArachnidConfig) {
			f.SetRaw(&fakes.Raw{Status: 429, ContentType: "application/json", Body: `{"detail":"Request was throttled."}`})
		}, ErrUnavailable, "rate limited"},
		{"validation error list", func(f *fakes.Arachnid, _ *ArachnidConfig) {
			f.SetRaw(&fakes.Raw{Status: 422, ContentType: "application/json", Body: `{"detail":[{"loc":["body","hashes"],"msg":"field required"}]}`})
		}, ErrUnavailable, "field required"},
		{"server error", func(f *fakes.Arachnid, _ *ArachnidConfig) {
			f.SetRaw(&fakes.Raw{Status: 500, ContentType: "text/html", Body: "<h1>Server Error (500)</h1>"})
		}, ErrUnavailable, "HTTP 500"},
		{"bad gateway", func(f *fakes.Arachnid, _ *ArachnidConfig) {
			f.SetRaw(&fakes.Raw{Status: 502, ContentType: "application/json", Body: `{"detail":"upstream unavailable"}`})
		}, ErrUnavailable, `HTTP 502 "upstream unavailable"`},
		{"timeout", func(f *fakes.Arachnid, c *ArachnidConfig) {
			f.SetDelay(2 * time.Second)
			c.Timeout = 50 * time.Millisecond
		}, ErrUnavailable, "no answer within 50ms"},
		{"connection refused", func(f *fakes.Arachnid, _ *ArachnidConfig) { f.Close() }, ErrUnavailable, ""},
	} {
		for _, window := range []time.Duration{0, -1} {
			t.Run(fmt.Sprintf("%s/batch=%v", tc.name, window == 0), func(t *testing.T) {
				f := newFakeArachnid(t)
				cfg := ArachnidConfig{URL: f.URL, Username: arachnidUser, Password: arachnidPass, BatchWindow: window}
				tc.setup(f, &cfg)
				a := newTestArachnid(t, cfg)
				start := time.Now()
				v, err := a.Match(context.Background(), q)
				if !errors.Is(err, tc.want) {
					t.Fatalf("Match = %+v, %v; want %v", v, err, tc.want)
				}
				if tc.wantMsg != "" && !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("error %q; want it to mention %q", err, tc.wantMsg)
				}
				if strings.Contains(err.Error(), arachnidPass) {
					t.Fatalf("error shows the password: %v", err)
				}
				if time.Since(start) > time.Second {
					t.Fatalf("took %s: the timeout did not bound the request", time.Since(start))
				}
			})
		}
	}
}

// A caller that goes away gets its own ctx.Err(), not ErrUnavailable, so
// the Guard does not blame the service for it.
func TestArachnidCallerCancel(t *testing.T) {
	for _, window := range []time.Duration{0, -1} {
		f := newFakeArachnid(t)
		f.SetDelay(2 * time.Second)
		a := newTestArachnid(t, ArachnidConfig{URL: f.URL, BatchWindow: window})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(30*time.Millisecond, cancel)
		start := time.Now()
		_, err := a.Match(ctx, pdqQuery(t, hmaBase, 100))
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) || time.Since(start) > time.Second {
			t.Fatalf("window %v: err = %v after %s; want context.Canceled at once", window, err, time.Since(start))
		}
	}
}

func TestArachnidProbe(t *testing.T) {
	f := newFakeArachnid(t)
	a := newTestArachnid(t, ArachnidConfig{URL: f.URL})
	if err := a.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sent := f.SentHashes(); len(sent) != 1 || len(sent[0]) != 1 || sent[0][0] != arachnidProbeKey {
		t.Fatalf("probe sent %v", sent)
	}
	bad := newTestArachnid(t, ArachnidConfig{URL: f.URL, Username: arachnidUser, Password: "nope"})
	if err := bad.Probe(context.Background()); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "credentials refused") {
		t.Fatalf("probe with a wrong password: %v", err)
	}
	f.SetRaw(&fakes.Raw{Status: 200, ContentType: "application/json", Body: `{}`})
	if err := a.Probe(context.Background()); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("probe of a wrong-shaped answer: %v", err)
	}
}

// Through the Guard, Arachnid Shield is one more remote: its failures keep
// lookups answering under the fail policy (unscanned or refused, never
// "no match"), open the breaker after the configured run, are counted by
// kind, and its probe closes the breaker again once the service is back.
func TestGuardArachnidFaults(t *testing.T) {
	errorsOnly := func(s RemoteStats) uint64 { return s.Failures - s.Timeouts - s.Malformed }
	faults := []struct {
		name string
		brk  func(t *testing.T, f *fakes.Arachnid) (heal func())
		kind func(RemoteStats) uint64
	}{
		{"down", func(t *testing.T, f *fakes.Arachnid) func() { return f.Down(t) }, errorsOnly},
		{"slow", func(t *testing.T, f *fakes.Arachnid) func() {
			f.SetDelay(2 * time.Second)
			return func() { f.SetDelay(0) }
		}, func(s RemoteStats) uint64 { return s.Timeouts }},
		{"500s", func(t *testing.T, f *fakes.Arachnid) func() {
			f.SetRaw(&fakes.Raw{Status: 500, ContentType: "application/json", Body: `{"detail":"oops"}`})
			return func() { f.SetRaw(nil) }
		}, errorsOnly},
		{"401", func(t *testing.T, f *fakes.Arachnid) func() {
			f.SetRaw(&fakes.Raw{Status: 401, ContentType: "application/json", Body: `{"detail":"Invalid username/password."}`})
			return func() { f.SetRaw(nil) }
		}, errorsOnly},
		{"malformed", func(t *testing.T, f *fakes.Arachnid) func() {
			f.SetRaw(&fakes.Raw{Status: 200, ContentType: "application/json", Body: `{"scanned_hashes":`})
			return func() { f.SetRaw(nil) }
		}, func(s RemoteStats) uint64 { return s.Malformed }},
	}
	const requests = 20
	for _, fc := range faults {
		for _, policy := range []FailPolicy{FailOpen, FailClosed} {
			t.Run(fc.name+"/"+policy.String(), func(t *testing.T) {
				t.Parallel()
				f := newFakeArachnid(t)
				heal := fc.brk(t, f)
				a := newTestArachnid(t, ArachnidConfig{URL: f.URL, Timeout: 5 * time.Second})
				log, logs := testkit.ObserveLogs()
				var tr transitions
				g := newTestGuard(t, GuardConfig{
					Remotes:         []Remote{{Name: "arachnid:fake", Matcher: a}},
					FailPolicy:      policy,
					Breaker:         BreakerConfig{ConsecutiveFailures: 3, OpenTimeout: 150 * time.Millisecond, CallTimeout: 100 * time.Millisecond},
					Cache:           noCache,
					Logger:          log,
					OnBreakerChange: tr.add,
				})
				q := pdqQuery(t, hmaBase, 100) // listed: only the failure stops the match
				for i := range requests {
					v, err := g.Match(context.Background(), q)
					switch policy {
					case FailOpen:
						if err != nil || !v.Unscanned || v.Match {
							t.Fatalf("request %d: %+v, %v; want unscanned", i, v, err)
						}
					case FailClosed:
						if !errors.Is(err, ErrUnavailable) {
							t.Fatalf("request %d: %+v, %v; want ErrUnavailable", i, v, err)
						}
					}
				}
				st := g.Stats().Remotes["arachnid:fake"]
				if fc.kind(st) != 3 || st.Failures != 3 || st.Rejected != requests-3 {
					t.Fatalf("stats %+v: want 3 failures of this kind, then %d rejected by the open breaker", st, requests-3)
				}
				if n := testkit.LogCount(logs, "remote backend failed"); n != 1 {
					t.Fatalf("%d failure lines; want 1:\n%s", n, testkit.LogText(logs))
				}
				heal()
				time.Sleep(200 * time.Millisecond)
				v, err := g.Match(context.Background(), q)
				if err != nil || !v.Match || v.Bank != ArachnidBankCSAM {
					t.Fatalf("after healing: %+v, %v; want the listed hash blocked", v, err)
				}
				testkit.Eventually(t, "breaker closed", func() bool { return g.BreakerStates()["arachnid:fake"] == "closed" })
			})
		}
	}
}
