package matcher

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// An allowlist's exact entries override every kind of match, before any
// remote is asked; a picture merely like an allowlisted one, or a listed
// file inside an allowlisted container, is not allowlisted.
func TestAllowlistOverridesEveryKind(t *testing.T) {
	dir := t.TempDir()
	base := mustPDQ(t, tPDQ)
	listed := filepath.Join(dir, "listed.txt")
	writeFile(t, listed, strings.Join([]string{"md5 " + tMD5, "sha1 " + tSHA1, "pdq " + base.String()}, "\n"))
	trial := filepath.Join(dir, "trial.txt")
	writeFile(t, trial, "sha256 "+tSHA256+"\n")
	allow := filepath.Join(dir, "allow.txt")
	// The allowlist holds the SHA-256 of the file a moderator dismissed
	// (which the listed bank holds by MD5, SHA-1 and PDQ), its MD5 and
	// SHA-1 and a PDQ hash, which it must ignore.
	dismissed := digest32(t, sha256hex("dismissed"))
	writeFile(t, allow, strings.Join([]string{"md5 " + tMD5, "sha1 " + tSHA1, "sha256 " + tSHA256, "sha256 " + sha256hex("dismissed"), "pdq " + base.String()}, "\n"))
	other := digest16(t, md5hex("b"))
	banks := []BankConfig{{Name: "LISTED", Path: listed}, {Name: "TRIAL", Path: trial, Mode: ModeReport}, {Name: "FALSE_POSITIVES", Path: allow, Allow: true}}
	l := newTestLocal(t, LocalConfig{Banks: banks})

	remotes := map[string]BackendPolicy{"hma:hma": {}, "service:svc": {}, "arachnid:shield": {}, "hma:trial": {Mode: ModeReport}}
	for name, pol := range remotes {
		t.Run(name, func(t *testing.T) {
			be := newFakeBackend(answer(remoteMatch(name), nil))
			g, err := NewGuard(GuardConfig{Remotes: []Remote{{Name: name, Matcher: be, Policy: pol}}, Local: l})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			v, err := g.Match(context.Background(), Query{Has: HasSHA256, SHA256: digest32(t, tSHA256)})
			if err != nil {
				t.Fatal(err)
			}
			if v.Match || v.WouldBlock || v.Allowlisted != "FALSE_POSITIVES" || v.Reason != "allowlisted by FALSE_POSITIVES" || be.calls.Load() != 0 {
				t.Errorf("verdict %+v, %d remote calls", v, be.calls.Load())
			}
			// Not allowlisted: the remote still decides.
			v, err = g.Match(context.Background(), Query{Has: HasMD5, MD5: other})
			if err != nil {
				t.Fatal(err)
			}
			if v.Allowlisted != "" || !(v.Match || v.WouldBlock) {
				t.Errorf("unlisted media: %+v", v)
			}
		})
	}

	g, err := NewGuard(GuardConfig{Local: l})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	tests := []struct {
		name    string
		q       Query
		allowed bool
		match   bool
	}{
		{"local exact", Query{Has: HasMD5 | HasSHA256, MD5: digest16(t, tMD5), SHA256: dismissed}, true, false},
		{"local exact by another digest", Query{Has: HasSHA1 | HasMD5 | HasSHA256, SHA1: digest20(t, tSHA1), MD5: other, SHA256: dismissed}, true, false},
		{"local pdq", Query{Has: HasMD5 | HasPDQ | HasSHA256, MD5: digest16(t, tMD5), SHA256: dismissed, PDQ: base, PDQQuality: 100}, true, false},
		// An attacker's MD5 or SHA-1 collision with the dismissed file:
		// another SHA-256, so not allowlisted, and the listed bank's MD5
		// and SHA-1 entries block it.
		{"an md5 and sha1 collision with an allowlisted file", Query{Has: HasSHA1 | HasMD5 | HasSHA256, SHA1: digest20(t, tSHA1), MD5: digest16(t, tMD5),
			SHA256: digest32(t, sha256hex("listed picture"))}, false, true},
		{"no sha256 in the query", Query{Has: HasMD5, MD5: digest16(t, tMD5)}, false, true},
		{"report mode", Query{Has: HasSHA256, SHA256: digest32(t, tSHA256)}, true, false},
		{"a visually identical other file", Query{Has: HasMD5 | HasPDQ, MD5: other, PDQ: flip(base, 3), PDQQuality: 100}, false, true},
		{"a listed file embedded in an allowlisted digest's container", Query{Has: HasMD5, MD5: other,
			Embedded: []EmbeddedDigests{{Where: "zip entry", MD5: digest16(t, tMD5)}}}, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := g.Match(context.Background(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if (v.Allowlisted != "") != tc.allowed || v.Match != tc.match {
				t.Errorf("allowlisted %q match %v, want %v %v (%s)", v.Allowlisted, v.Match, tc.allowed, tc.match, v.Reason)
			}
			for _, e := range v.Evidence {
				if e.Bank == "FALSE_POSITIVES" {
					t.Errorf("the allowlist matched: %+v", e)
				}
			}
		})
	}
}

// The real HMA and lookup-service clients, against their fakes: what they
// match is blocked, unless the file is allowlisted, when neither is
// asked at all.
func TestAllowlistOverridesRealRemotes(t *testing.T) {
	dir := t.TempDir()
	allow := filepath.Join(dir, "allow.txt")
	writeFile(t, allow, "sha256 "+sha256hex("dismissed")+"\n")
	l := newTestLocal(t, LocalConfig{Banks: []BankConfig{{Name: "FP", Path: allow, Allow: true}}})
	hma := newFakeHMA(t)
	svc := newFakeLookupService(t)
	svc.block[tSHA256] = "sha256"
	h := newTestHMA(t, HMAConfig{URL: hma.URL + "/", Banks: []string{"TEST_BANK"}})
	s, err := NewService(ServiceConfig{Name: "svc", URL: svc.URL})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		remote Remote
		q      Query
	}{
		{"hma", Remote{Name: "hma:fake", Matcher: h}, pdqQuery(t, hmaBase, 100)},
		{"service", Remote{Name: "service:svc", Matcher: s}, Query{Has: HasSHA256, SHA256: digest32(t, tSHA256)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := NewGuard(GuardConfig{Local: l, Remotes: []Remote{tc.remote}})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			v, err := g.Match(context.Background(), tc.q)
			if err != nil || !v.Match {
				t.Fatalf("not allowlisted: %+v, %v", v, err)
			}
			// The fake backends of TestAllowlistOverridesEveryKind count
			// HMA-like calls; the lookup service's fake counts its own.
			svcCalls := svc.calls.Load()
			q := tc.q
			q.Has |= HasSHA256
			q.SHA256 = digest32(t, sha256hex("dismissed"))
			v, err = g.Match(context.Background(), q)
			if err != nil || v.Match || v.Allowlisted != "FP" {
				t.Fatalf("allowlisted: %+v, %v", v, err)
			}
			if svc.calls.Load() != svcCalls {
				t.Errorf("the lookup service was asked about an allowlisted file")
			}
		})
	}
}
