package matcher

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/fakes"
)

// Local banks say which kind of the media matched: the file or picture
// as stored, a file embedded in it, or a form's own kind (a quadrant of
// a collage, the negative, ...), whichever evidence is best.
func TestLocalVerdictVariant(t *testing.T) {
	listed := pdq.Hash{0x0123456789abcdef, 0xfedcba9876543210, 0x0f0f0f0f0f0f0f0f, 0xf0f0f0f0f0f0f0f0}
	other := pdq.Hash{0xaaaaaaaaaaaaaaaa, 0x5555555555555555, 0x3333333333333333, 0xcccccccccccccccc}
	near := listed
	near[0] ^= 0xff // distance 8
	file := []byte("a listed file")
	fileMD5, fileSHA := md5.Sum(file), sha256.Sum256(file)
	bank := filepath.Join(t.TempDir(), "b.bank")
	os.WriteFile(bank, []byte("pdq "+listed.String()+"\nmd5 "+hex.EncodeToString(fileMD5[:])+"\nsha256 "+hex.EncodeToString(fileSHA[:])+"\n"), 0o600)
	l, err := NewLocal(LocalConfig{Banks: []BankConfig{{Name: "B", Path: bank}}, ReloadInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	quadrant := func(h pdq.Hash) pdq.Form {
		return pdq.Form{Name: "quadrant 2", Variant: pdq.VariantQuadrant, Hash: h, Quality: 90}
	}
	for _, tc := range []struct {
		name          string
		q             Query
		variant, form string
		hashType      HashType
	}{
		{"stored picture", Query{Has: HasPDQ, PDQ: listed, PDQQuality: 100}, pdq.VariantStored, "", PDQ},
		{"file's md5", Query{Has: HasMD5, MD5: fileMD5}, pdq.VariantStored, "", MD5},
		{"file's sha256", Query{Has: HasSHA256, SHA256: fileSHA}, pdq.VariantStored, "", SHA256},
		{"embedded file's digests", Query{Has: HasSHA256, SHA256: sha256.Sum256([]byte("a zip")),
			Embedded: []EmbeddedDigests{{Where: "zip entry x", SHA256: fileSHA}}}, pdq.VariantEmbedded, "zip entry x", SHA256},
		{"quadrant", Query{Has: HasPDQ, PDQ: other, PDQQuality: 100, Forms: []pdq.Form{quadrant(listed)}}, pdq.VariantQuadrant, "quadrant 2", PDQ},
		{"negative beside a plain frame", Query{Has: HasPDQ, PDQ: other, PDQQuality: 100, Forms: []pdq.Form{
			{Name: "frame 2", Variant: pdq.VariantFrame, Hash: other, Quality: 90},
			{Name: "negative", Variant: pdq.VariantNegative, Hash: near, Quality: 90},
		}}, pdq.VariantNegative, "negative", PDQ},
		{"closer quadrant beats stored", Query{Has: HasPDQ, PDQ: near, PDQQuality: 100, Forms: []pdq.Form{quadrant(listed)}}, pdq.VariantQuadrant, "quadrant 2", PDQ},
		{"stored wins a tie", Query{Has: HasPDQ, PDQ: listed, PDQQuality: 100, Forms: []pdq.Form{quadrant(listed)}}, pdq.VariantStored, "", PDQ},
		{"exact digest before a quadrant", Query{Has: HasPDQ | HasMD5, MD5: fileMD5, PDQ: other, PDQQuality: 100, Forms: []pdq.Form{quadrant(listed)}}, pdq.VariantStored, "", MD5},
		{"embedded picture", Query{Has: HasPDQ, PDQ: other, PDQQuality: 100, Forms: []pdq.Form{
			{Name: "pdf image object 3", Variant: pdq.VariantEmbedded, Hash: listed, Quality: 90},
		}}, pdq.VariantEmbedded, "pdf image object 3", PDQ},
		{"no match", Query{Has: HasPDQ, PDQ: other, PDQQuality: 100, Forms: []pdq.Form{quadrant(other)}}, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := l.Match(context.Background(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if v.Variant != tc.variant || v.Form != tc.form || v.HashType != tc.hashType {
				t.Fatalf("variant %q form %q type %q; want %q %q %q (%+v)", v.Variant, v.Form, v.HashType, tc.variant, tc.form, tc.hashType, v)
			}
			if v.Match && (v.Evidence[0].Variant != tc.variant || v.Evidence[0].Form != tc.form) {
				t.Fatalf("best evidence %+v", v.Evidence[0])
			}
			for _, e := range v.Evidence {
				if e.Variant == "" {
					t.Errorf("evidence without a kind: %+v", e)
				}
			}
		})
	}
}

// The kind is in the verdict's JSON (the lookup API's and the audit
// record's source) only when there is one.
func TestVerdictVariantJSON(t *testing.T) {
	b, _ := json.Marshal(Verdict{Match: true, Variant: pdq.VariantQuadrant, Evidence: []Evidence{{Variant: pdq.VariantQuadrant}}})
	if strings.Count(string(b), `"variant":"quadrant"`) != 2 {
		t.Fatalf("%s", b)
	}
	if b, _ := json.Marshal(Verdict{}); strings.Contains(string(b), "variant") {
		t.Fatalf("empty variant marshalled: %s", b)
	}
}

// HMA's evidence carries the kind of the hash it was asked about.
func TestHMAVerdictVariant(t *testing.T) {
	sum := md5.Sum([]byte("some video"))
	f := newFakeHMA(t)
	f.SetContents(
		fakes.HMAContent{Bank: "A_BANK", ID: 7, SignalType: "pdq", Signal: hmaBase},
		fakes.HMAContent{Bank: "VIDEOS", ID: 8, SignalType: "video_md5", Signal: hex.EncodeToString(sum[:])},
	)
	h := newTestHMA(t, HMAConfig{URL: f.URL})
	other, _ := pdq.ParseHex(strings.Repeat("0f", 32))
	listed, _ := pdq.ParseHex(hmaNear8)
	for _, tc := range []struct {
		name, variant, form string
		q                   Query
	}{
		{"stored", pdq.VariantStored, "", Query{Has: HasPDQ, PDQ: listed, PDQQuality: 90, Kind: KindImage}},
		{"quadrant", pdq.VariantQuadrant, "quadrant 1", Query{Has: HasPDQ, PDQ: other, PDQQuality: 90, Kind: KindImage, Forms: []pdq.Form{
			{Name: "trimmed", Variant: pdq.VariantTrimmed, Hash: other, Quality: 90},
			{Name: "quadrant 1", Variant: pdq.VariantQuadrant, Hash: listed, Quality: 90},
		}}},
		{"video md5", pdq.VariantStored, "", Query{Has: HasMD5, MD5: sum, Kind: KindVideo}},
	} {
		v, err := h.Match(context.Background(), tc.q)
		if err != nil || !v.Match || v.Variant != tc.variant || v.Form != tc.form || v.Evidence[0].Variant != tc.variant {
			t.Fatalf("%s: %+v %v", tc.name, v, err)
		}
	}
}

// A lookup service's match of the media's own digests is of the stored
// kind; one of a form, of that form's kind.
func TestServiceVerdictVariant(t *testing.T) {
	f := newFakeLookupService(t)
	listed, _ := pdq.ParseHex(hmaNear8)
	other, _ := pdq.ParseHex(strings.Repeat("0f", 32))
	f.block[listed.String()] = "pdq"
	s := newTestService(t, ServiceConfig{URL: f.URL})
	v, err := s.Match(context.Background(), Query{Has: HasPDQ, PDQ: listed, PDQQuality: 90, Kind: KindImage})
	if err != nil || !v.Match || v.Variant != pdq.VariantStored || v.Form != "" || v.Evidence[0].Variant != pdq.VariantStored {
		t.Fatalf("stored: %+v %v", v, err)
	}
	v, err = s.Match(context.Background(), Query{Has: HasPDQ, PDQ: other, PDQQuality: 90, Kind: KindImage, Forms: []pdq.Form{
		{Name: "stretched", Variant: pdq.VariantStretched, Hash: listed, Quality: 90},
	}})
	if err != nil || !v.Match || v.Variant != pdq.VariantStretched || v.Form != "stretched" || v.Evidence[0].Variant != pdq.VariantStretched {
		t.Fatalf("form: %+v %v", v, err)
	}
}

// The Guard passes a remote match's form and kind on, from the remote
// and from its cache alike.
func TestGuardKeepsVariant(t *testing.T) {
	rv := remoteMatch("hma:X")
	rv.HashType, rv.Form, rv.Variant = PDQ, "quadrant 3", pdq.VariantQuadrant
	rv.Evidence[0].Form, rv.Evidence[0].Variant = rv.Form, rv.Variant
	local := newFakeBackend(answer(Verdict{}, nil))
	remote := newFakeBackend(answer(rv, nil))
	g := newTestGuard(t, GuardConfig{Local: local, Remotes: []Remote{{Name: "hma", Matcher: remote}}, Cache: CacheConfig{MatchTTL: time.Hour}})
	for i := range 2 {
		v, err := g.Match(context.Background(), md5Query("x"))
		if err != nil || !v.Match || v.Variant != pdq.VariantQuadrant || v.Form != "quadrant 3" || v.Evidence[0].Variant != pdq.VariantQuadrant {
			t.Fatalf("call %d: %+v %v", i, v, err)
		}
	}
	if remote.calls.Load() != 1 {
		t.Fatalf("remote called %d times; want the second answer from the cache", remote.calls.Load())
	}
}
