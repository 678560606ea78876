package matcher

import (
	"encoding/hex"
	"strings"
	"testing"
)

func TestParseBankNCMEC(t *testing.T) {
	b, err := ParseBank("NCMEC", "page.xml", strings.NewReader(ncmecFixture()), FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	// 1002's image entries and video 2002 are tombstoned; 1002's video is
	// a different entry (videos and images have separate ids) and stays.
	want := Counts{MD5: 1, SHA1: 2, PDQ: 1, VideoMD5: 1}
	if b.Counts() != want {
		t.Errorf("counts = %+v, want %+v", b.Counts(), want)
	}
	checkProblems(t, b, []string{
		`page.xml:20 (entry "1003", byte `,
		"page.xml:24 (byte ",
	})
	if p := b.problems[0]; p.ID != "1003" || p.Offset == 0 || !strings.Contains(p.Msg, "md5 hash must be") {
		t.Errorf("problem = %+v", p)
	}
	var k [16]byte
	hex.Decode(k[:], []byte(tMD5))
	if got := b.label(b.md5[k]); got != "ncmec:1001 A1" {
		t.Errorf("md5 label = %q", got)
	}
	if b.pdq.Len() != 1 || b.pdq.Hash(0) != mustPDQ(t, tPDQ) || b.pdqLabel(0) != "ncmec:1001 A1" {
		t.Errorf("pdq = %v %q", b.pdq.Hash(0), b.pdqLabel(0))
	}
	hex.Decode(k[:], []byte(md5hex("v")))
	if got, ok := b.videoMD5[k]; !ok || b.label(got) != "ncmec:1002" {
		t.Errorf("video md5 label = %q, %v", b.label(got), ok)
	}
	hex.Decode(k[:], []byte(tMD5b))
	if _, ok := b.md5[k]; ok {
		t.Error("tombstoned image md5 still present")
	}
}

func TestParseBankNCMECTombstoneOnlyEarlier(t *testing.T) {
	doc := `<queryResult xmlns="` + NCMECNamespace + `"><images>
<deletedImage><id>7</id></deletedImage>
<image><id>7</id><fingerprints><md5>` + tMD5 + `</md5></fingerprints></image>
</images></queryResult>`
	b, err := ParseBank("NCMEC", "x.xml", strings.NewReader(doc), FormatNCMEC)
	if err != nil {
		t.Fatal(err)
	}
	if b.Counts().MD5 != 1 {
		t.Errorf("a tombstone before its entry removed it: %+v", b.Counts())
	}
}
