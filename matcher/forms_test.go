package matcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// A match of any form of the media (an animation frame, the picture as
// displayed, transparency composited) is a match, and the evidence names
// the form; forms below the quality minimum are not matched.
func TestFormsMatch(t *testing.T) {
	listed := pdq.Hash{0x0123456789abcdef, 0xfedcba9876543210, 0x0f0f0f0f0f0f0f0f, 0xf0f0f0f0f0f0f0f0}
	other := pdq.Hash{0xaaaaaaaaaaaaaaaa, 0x5555555555555555, 0x3333333333333333, 0xcccccccccccccccc}
	near := listed
	near[0] ^= 0xff // distance 8
	dir := t.TempDir()
	bank := filepath.Join(dir, "b.bank")
	os.WriteFile(bank, []byte("pdq "+listed.String()+" listed-photo\n"), 0o600)
	l, err := NewLocal(LocalConfig{Banks: []BankConfig{{Name: "B", Path: bank}}, ReloadInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, tc := range []struct {
		name  string
		q     Query
		match bool
		form  string
		dist  int
	}{
		{"stored form matches", Query{Has: HasPDQ, PDQ: listed, PDQQuality: 100}, true, "", 0},
		{"frame 3 matches", Query{Has: HasPDQ, PDQ: other, PDQQuality: 100, Forms: []pdq.Form{{Name: "frame 2", Hash: other, Quality: 90}, {Name: "frame 3", Hash: near, Quality: 90}}}, true, "frame 3", 8},
		{"closest form wins", Query{Has: HasPDQ, PDQ: near, PDQQuality: 100, Forms: []pdq.Form{{Name: "displayed", Hash: listed, Quality: 90}}}, true, "displayed", 0},
		{"low-quality form ignored", Query{Has: HasPDQ, PDQ: other, PDQQuality: 100, Forms: []pdq.Form{{Name: "on white", Hash: listed, Quality: 10}}}, false, "", 0},
		{"low-quality stored, good form", Query{Has: HasPDQ, PDQ: listed, PDQQuality: 10, Forms: []pdq.Form{{Name: "on black", Hash: listed, Quality: 80}}}, true, "on black", 0},
		{"no form matches", Query{Has: HasPDQ, PDQ: other, PDQQuality: 100, Forms: []pdq.Form{{Name: "frame 2", Hash: other, Quality: 90}}}, false, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := l.Match(context.Background(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if v.Match != tc.match {
				t.Fatalf("match %v, want %v (%+v)", v.Match, tc.match, v)
			}
			if !tc.match {
				return
			}
			if v.Evidence[0].Form != tc.form || v.Distance != tc.dist || len(v.Evidence) != 1 {
				t.Fatalf("evidence %+v", v.Evidence)
			}
		})
	}
	// Forms are part of the verdict cache key: the same stored hash with
	// a listed frame must not hit a cached "clean".
	a := Query{Has: HasPDQ, PDQ: other, PDQQuality: 100}
	b := a
	b.Forms = []pdq.Form{{Name: "frame 2", Hash: listed, Quality: 90}}
	if cacheKey(&a) == cacheKey(&b) {
		t.Fatal("forms not in the cache key")
	}
}

// A listed file carved out of a container matches by its exact digests,
// and the evidence says where it was found.
func TestEmbeddedDigestsMatch(t *testing.T) {
	listed := sha256.Sum256([]byte("the listed file"))
	dir := t.TempDir()
	bank := filepath.Join(dir, "b.bank")
	os.WriteFile(bank, []byte("sha256 "+hex.EncodeToString(listed[:])+"\n"), 0o600)
	l, err := NewLocal(LocalConfig{Banks: []BankConfig{{Name: "B", Path: bank}}, ReloadInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	q := Query{Has: HasSHA256, SHA256: sha256.Sum256([]byte("the pdf")), Embedded: []EmbeddedDigests{
		{Where: "pdf image object 3", SHA256: sha256.Sum256([]byte("another image"))},
		{Where: "pdf image object 7", SHA256: listed},
	}}
	v, err := l.Match(context.Background(), q)
	if err != nil || !v.Match || v.Form != "pdf image object 7" || v.HashType != SHA256 || !strings.Contains(v.Reason, "embedded as pdf image object 7") {
		t.Fatalf("%+v %v", v, err)
	}
	q.Embedded = q.Embedded[:1]
	if v, _ := l.Match(context.Background(), q); v.Match {
		t.Fatalf("clean container matched: %+v", v)
	}
	a, b := q, q
	b.Embedded = nil
	if cacheKey(&a) == cacheKey(&b) {
		t.Fatal("embedded digests not in the cache key")
	}
}
