package matcher

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/lookupwire"
)

func newTestService(t testing.TB, cfg ServiceConfig) *Service {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "peer"
	}
	s, err := NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fullQuery is a video query with every digest of content and a good PDQ.
func fullQuery(t testing.TB, content string) Query {
	q := pdqQuery(t, hmaBase, 80)
	q.Kind = KindVideo
	q.Has |= HasMD5 | HasSHA1 | HasSHA256
	q.MD5 = md5.Sum([]byte(content))
	q.SHA1 = sha1.Sum([]byte(content))
	q.SHA256 = sha256.Sum256([]byte(content))
	return q
}

func keys(m map[string]any) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

func TestNewServiceConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ServiceConfig
		ok   bool
	}{
		{"ok", ServiceConfig{Name: "peer", URL: "https://peer/lookup"}, true},
		{"no name", ServiceConfig{URL: "https://peer/lookup"}, false},
		{"no URL", ServiceConfig{Name: "peer"}, false},
		{"negative timeout", ServiceConfig{Name: "peer", URL: "https://peer", Timeout: -time.Second}, false},
	} {
		if _, err := NewService(tc.cfg); (err == nil) != tc.ok {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
}

func TestServiceBlockAndRequestShape(t *testing.T) {
	f := newFakeLookupService(t)
	f.token = "k3y"
	q := fullQuery(t, "bad video")
	f.block[q.HexOf(SHA256)] = "sha256"
	s := newTestService(t, ServiceConfig{Name: "peer", URL: f.URL + "/lookup", APIKey: "k3y"})

	v, err := s.Match(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	want := Verdict{
		Match: true, Bank: "FAKE_BANK", HashType: SHA256, MatchedHash: q.HexOf(SHA256),
		Confidence: 0.95, Source: "service:peer", Variant: "stored", Reason: "known CSAM hash",
		Evidence: []Evidence{{Bank: "FAKE_BANK", HashType: SHA256, Hash: q.HexOf(SHA256), Source: "service:peer", Variant: "stored"}},
	}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("verdict\n got %+v\nwant %+v", v, want)
	}

	req, hdr := f.last()
	if got := keys(req); !reflect.DeepEqual(got, []string{"hashes", "mediaType", "pdqQuality", "timestamp"}) {
		t.Fatalf("request keys %v", got)
	}
	hashes := req["hashes"].(map[string]any)
	if got := keys(hashes); !reflect.DeepEqual(got, []string{"md5", "pdq", "sha1", "sha256"}) {
		t.Fatalf("hashes keys %v", got)
	}
	if hashes["md5"] != q.HexOf(MD5) || hashes["pdq"] != hmaBase || req["mediaType"] != "m.video" {
		t.Fatalf("request %v", req)
	}
	if ts, _ := req["timestamp"].(float64); time.Since(time.UnixMilli(int64(ts))) > time.Minute {
		t.Fatalf("timestamp %v is not now in Unix milliseconds", req["timestamp"])
	}
	if hdr.Get("Content-Type") != "application/json" || hdr.Get("Authorization") != "Bearer k3y" {
		t.Fatalf("headers %v", hdr)
	}
}

// Only the digests present are sent, and a PDQ only when usable.
func TestServiceSendsOnlyPresentDigests(t *testing.T) {
	f := newFakeLookupService(t)
	s := newTestService(t, ServiceConfig{URL: f.URL})
	q := Query{Has: HasMD5 | HasPDQ, MD5: md5.Sum([]byte("x")), PDQQuality: 10, Kind: KindImage}
	v, err := s.Match(context.Background(), q)
	if err != nil || v.Match {
		t.Fatalf("Match = %+v, %v", v, err)
	}
	req, _ := f.last()
	if got := keys(req["hashes"].(map[string]any)); !reflect.DeepEqual(got, []string{"md5"}) {
		t.Fatalf("hashes keys %v; want md5 only", got)
	}
	if len(v.Notes) != 1 || !strings.Contains(v.Notes[0], "PDQ hash unusable") {
		t.Fatalf("notes %q", v.Notes)
	}

	// Nothing usable: no request at all.
	n := f.calls.Load()
	v, err = s.Match(context.Background(), Query{Has: HasPDQ, PDQQuality: 10})
	if err != nil || v.Match || f.calls.Load() != n {
		t.Fatalf("Match = %+v, %v, calls %d→%d; want no request", v, err, n, f.calls.Load())
	}
}

// Like the plugin, only a 2xx answer with lowercase "block" is a match.
func TestServiceActions(t *testing.T) {
	for _, tc := range []struct {
		name      string
		body      string
		wantMatch bool
		wantErr   error
		wantNote  string
	}{
		{"block", `{"action":"block","reason":"r","matchedHash":"ABCD","hashType":"MD5","confidence":1.5}`, true, nil, ""},
		{"allow", `{"action":"allow","reason":"no match","matchedHash":"","hashType":"","confidence":0}`, false, nil, ""},
		{"uppercase BLOCK", `{"action":"BLOCK","reason":"r"}`, false, nil, `"BLOCK"`},
		{"no action", `{"reason":"r"}`, false, nil, `action ""`},
		{"allowed unscanned", `{"action":"allow","reason":"hma down","unscanned":true}`, false, ErrUnavailable, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeLookupService(t)
			f.setRaw(&fakes.Raw{Status: 200, ContentType: "application/json", Body: tc.body})
			s := newTestService(t, ServiceConfig{URL: f.URL})
			v, err := s.Match(context.Background(), fullQuery(t, "x"))
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err = %v; want %v", err, tc.wantErr)
			}
			if v.Match != tc.wantMatch {
				t.Fatalf("verdict %+v; want match %v", v, tc.wantMatch)
			}
			if tc.wantNote != "" && (len(v.Notes) != 1 || !strings.Contains(v.Notes[0], tc.wantNote)) {
				t.Fatalf("notes %q; want %s", v.Notes, tc.wantNote)
			}
			if tc.wantMatch && (v.Confidence != 1 || v.MatchedHash != "abcd" || v.HashType != MD5 || v.Bank != "peer") {
				t.Fatalf("verdict %+v; want clamped confidence, lowercase hash and type, bank = service name", v)
			}
		})
	}
}

func TestServiceErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(f *fakeLookupService, c *ServiceConfig)
		want  error
	}{
		{"500", func(f *fakeLookupService, _ *ServiceConfig) { f.setRaw(&fakes.Raw{Status: 500, Body: "boom"}) }, ErrUnavailable},
		{"503", func(f *fakeLookupService, _ *ServiceConfig) {
			f.setRaw(&fakes.Raw{Status: 503, Body: `{"action":"block"}`})
		}, ErrUnavailable},
		{"404", func(f *fakeLookupService, _ *ServiceConfig) { f.setRaw(&fakes.Raw{Status: 404, Body: "not found"}) }, ErrUnavailable},
		{"bad token", func(f *fakeLookupService, c *ServiceConfig) { f.token = "a"; c.APIKey = "b" }, ErrUnavailable},
		{"malformed", func(f *fakeLookupService, _ *ServiceConfig) {
			f.setRaw(&fakes.Raw{Status: 200, Body: `{"action":"blo`})
		}, ErrBadResponse},
		{"null", func(f *fakeLookupService, _ *ServiceConfig) { f.setRaw(&fakes.Raw{Status: 200, Body: `null`}) }, ErrBadResponse},
		{"array", func(f *fakeLookupService, _ *ServiceConfig) {
			f.setRaw(&fakes.Raw{Status: 200, Body: `[{"action":"block"}]`})
		}, ErrBadResponse},
		{"html", func(f *fakeLookupService, _ *ServiceConfig) {
			f.setRaw(&fakes.Raw{Status: 200, ContentType: "text/html", Body: `<html>login</html>`})
		}, ErrBadResponse},
		{"wrong types", func(f *fakeLookupService, _ *ServiceConfig) {
			f.setRaw(&fakes.Raw{Status: 200, Body: `{"action":"block","confidence":"high"}`})
		}, ErrBadResponse},
		{"oversized", func(f *fakeLookupService, _ *ServiceConfig) {
			f.setRaw(&fakes.Raw{Status: 200, Body: `{"action":"allow","reason":"` + strings.Repeat("x", maxRemoteBody) + `"}`})
		}, ErrBadResponse},
		{"slow", func(f *fakeLookupService, c *ServiceConfig) {
			f.delay.Store(int64(2 * time.Second))
			c.Timeout = 50 * time.Millisecond
		}, ErrUnavailable},
		{"refused", func(f *fakeLookupService, _ *ServiceConfig) { f.Close() }, ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeLookupService(t)
			cfg := ServiceConfig{Name: "peer", URL: f.URL}
			tc.setup(f, &cfg)
			s := newTestService(t, cfg)
			v, err := s.Match(context.Background(), fullQuery(t, "x"))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Match = %+v, %v; want %v", v, err, tc.want)
			}
		})
	}
}

func TestServiceCallerCancel(t *testing.T) {
	f := newFakeLookupService(t)
	f.delay.Store(int64(2 * time.Second))
	s := newTestService(t, ServiceConfig{URL: f.URL})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, cancel)
	if _, err := s.Match(ctx, fullQuery(t, "x")); !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v; want context.Canceled only", err)
	}
}

func TestLookupRequestQuery(t *testing.T) {
	md5x := md5.Sum([]byte("a"))
	sha1x := sha1.Sum([]byte("a"))
	sha256x := sha256.Sum256([]byte("a"))
	hmaHash := pdqQuery(t, hmaBase, 100).PDQ
	quality := 30
	for _, tc := range []struct {
		name    string
		json    string
		want    Query
		wantErr string
	}{
		{
			name: "the plugin's request",
			json: `{"hashes":{"md5":"` + hex.EncodeToString(md5x[:]) + `","sha1":"` + hex.EncodeToString(sha1x[:]) +
				`","sha256":"` + hex.EncodeToString(sha256x[:]) + `","pdq":"stubbed_pdq_placeholder_0123456789abcdef"},` +
				`"eventId":"$e:s","roomId":"!r:s","userId":"@u:s","mediaType":"m.image","timestamp":1703123456789}`,
			want: Query{Has: HasMD5 | HasSHA1 | HasSHA256, MD5: md5x, SHA1: sha1x, SHA256: sha256x, Kind: KindImage},
		},
		{
			name: "uppercase and a real PDQ",
			json: `{"hashes":{"md5":"` + strings.ToUpper(hex.EncodeToString(md5x[:])) + `","pdq":"` + strings.ToUpper(hmaBase) + `"},"mediaType":"m.sticker"}`,
			want: Query{Has: HasMD5 | HasPDQ, MD5: md5x, PDQ: hmaHash, PDQQuality: 100, Kind: KindImage},
		},
		{
			name: "pdqQuality extension",
			json: `{"hashes":{"pdq":"` + hmaBase + `"},"pdqQuality":30,"mediaType":"m.video"}`,
			want: Query{Has: HasPDQ, PDQ: hmaHash, PDQQuality: quality, Kind: KindVideo},
		},
		{name: "everything missing", json: `{}`, want: Query{}},
		{name: "empty hashes", json: `{"hashes":{"md5":"","sha1":" "},"mediaType":"m.location"}`, want: Query{}},
		{name: "short md5", json: `{"hashes":{"md5":"abc"}}`, wantErr: "hashes.md5 must be 32 hex digits, got 3"},
		{name: "long sha1", json: `{"hashes":{"sha1":"` + strings.Repeat("a", 42) + `"}}`, wantErr: "hashes.sha1 must be 40 hex digits"},
		{name: "sha256 not hex", json: `{"hashes":{"sha256":"` + strings.Repeat("g", 64) + `"}}`, wantErr: "hashes.sha256 is not hex"},
		{name: "bad pdq", json: `{"hashes":{"pdq":"abc"}}`, wantErr: "hashes.pdq"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r lookupwire.Request
			if err := json.Unmarshal([]byte(tc.json), &r); err != nil {
				t.Fatal(err)
			}
			q, err := QueryFromLookup(&r)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrBadLookupRequest) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v; want ErrBadLookupRequest mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(q, tc.want) {
				t.Fatalf("Query = %+v, %v\nwant %+v", q, err, tc.want)
			}
		})
	}
}

func TestLookupMediaTypes(t *testing.T) {
	for mt, k := range map[string]MediaKind{"m.image": KindImage, "m.sticker": KindImage, "m.video": KindVideo, "m.audio": KindAudio, "m.file": KindFile, "": KindUnknown, "m.text": KindUnknown} {
		if got := MediaTypeKind(mt); got != k {
			t.Errorf("MediaTypeKind(%q) = %q; want %q", mt, got, k)
		}
		if k != KindUnknown && mt != "m.sticker" && KindMediaType(k) != mt {
			t.Errorf("KindMediaType(%q) = %q; want %q", k, KindMediaType(k), mt)
		}
	}
}

// The answer carries what the plugin prints, with the contract's keys.
func TestLookupResponseFromVerdict(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    Verdict
		want string
	}{
		{"exact match", Verdict{Match: true, Bank: "NCMEC", HashType: MD5, MatchedHash: "00ff", Confidence: 1, Reason: "known"},
			`{"action":"block","reason":"known","matchedHash":"00ff","hashType":"md5","confidence":1,"bank":"NCMEC"}`},
		{"pdq match, default reason", Verdict{Match: true, Bank: "B", HashType: PDQ, MatchedHash: "aa", Distance: 0, Confidence: 2},
			`{"action":"block","reason":"pdq hash matched hash list B","matchedHash":"aa","hashType":"pdq","confidence":1,"bank":"B","distance":0}`},
		{"no match", Verdict{}, `{"action":"allow","reason":"no match","matchedHash":"","hashType":"","confidence":0}`},
		{"unscanned", Verdict{Unscanned: true},
			`{"action":"allow","reason":"not scanned: a hash list backend was unavailable","matchedHash":"","hashType":"","confidence":0,"unscanned":true}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(LookupResponseFromVerdict(tc.v))
			if err != nil || string(b) != tc.want {
				t.Fatalf("got  %s (%v)\nwant %s", b, err, tc.want)
			}
		})
	}
}

// The Service client and a server built from the lookup conversions agree:
// the digests, PDQ quality and verdict survive the round trip.
func TestLookupRoundTrip(t *testing.T) {
	var seen Query
	backend := newFakeBackend(func(_ context.Context, q Query) (Verdict, error) {
		seen = q
		return Verdict{Match: true, Bank: "B", HashType: PDQ, MatchedHash: hmaBase, Distance: 4, Confidence: PDQConfidence(4), Reason: "near"}, nil
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req lookupwire.Request
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		q, err := QueryFromLookup(&req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		v, err := backend.Match(r.Context(), q)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(LookupResponseFromVerdict(v))
	}))
	defer srv.Close()

	s := newTestService(t, ServiceConfig{Name: "peer", URL: srv.URL})
	q := fullQuery(t, "round trip")
	v, err := s.Match(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if seen.Has != q.Has || seen.MD5 != q.MD5 || seen.SHA1 != q.SHA1 || seen.SHA256 != q.SHA256 || seen.PDQ != q.PDQ || seen.PDQQuality != q.PDQQuality || seen.Kind != q.Kind {
		t.Fatalf("server saw %+v; sent %+v", seen, q)
	}
	if !v.Match || v.HashType != PDQ || v.Distance != 4 || v.Confidence != PDQConfidence(4) || v.Bank != "B" || v.Source != "service:peer" || v.Reason != "near" {
		t.Fatalf("verdict %+v", v)
	}
}

// The lookup contract has no readiness endpoint: Probe is one lookup,
// judged like any other.
func TestServiceProbe(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  *fakes.Raw
		want error
	}{
		{"allow", nil, nil},
		{"server error", &fakes.Raw{Status: 502, Body: "bad gateway"}, ErrUnavailable},
		{"unscanned", &fakes.Raw{Status: 200, ContentType: "application/json", Body: `{"action":"allow","unscanned":true}`}, ErrUnavailable},
		{"not JSON", &fakes.Raw{Status: 200, Body: "<html>"}, ErrBadResponse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeLookupService(t)
			f.setRaw(tc.raw)
			s, err := NewService(ServiceConfig{Name: "svc", URL: f.URL})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Probe(context.Background())
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Probe = %v; want %v", err, tc.want)
			}
			if f.calls.Load() != 1 {
				t.Fatalf("%d calls; want one lookup", f.calls.Load())
			}
		})
	}
}

// A lookup service is asked about each form of the media after the stored
// picture (its contract carries one PDQ), and min_pdq_quality decides what
// is sent.
func TestServiceFormsAndQuality(t *testing.T) {
	f := newFakeLookupService(t)
	listed, _ := pdq.ParseHex(hmaNear8)
	other, _ := pdq.ParseHex(strings.Repeat("0f", 32))
	f.block[listed.String()] = "pdq"
	s := newTestService(t, ServiceConfig{URL: f.URL, MinPDQQuality: new(int(30))})
	q := Query{Has: HasPDQ, PDQ: other, PDQQuality: 90, Kind: KindImage, Forms: []pdq.Form{
		{Name: "frame 2", Hash: other, Quality: 90},
		{Name: "frame 3", Hash: listed, Quality: 40}, // above the configured 30, below the default 50
	}}
	v, err := s.Match(context.Background(), q)
	if err != nil || !v.Match || v.Form != "frame 3" || v.Evidence[0].Form != "frame 3" {
		t.Fatalf("%+v %v", v, err)
	}
	if n := f.calls.Load(); n != 3 {
		t.Fatalf("%d requests; want the stored picture and two forms", n)
	}
	q.Forms[1].Quality = 20
	if v, err := s.Match(context.Background(), q); err != nil || v.Match {
		t.Fatalf("low-quality form was sent: %+v %v", v, err)
	}
}
