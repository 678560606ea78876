package matcher

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParseBank feeds arbitrary bytes to every parser. Nothing may panic,
// and whatever loads must be internally consistent: counts match the sets,
// every label is in range, problems are bounded.
func FuzzParseBank(f *testing.F) {
	seeds := []string{
		"",
		"md5 " + tMD5 + " label\n",
		"# comment\n\nSHA1 " + tSHA1 + " # c\nsha256 " + tSHA256 + " x#y\npdq " + tPDQ + "\nvideo_md5 " + tMD5b + "\r\n",
		"pdq " + strings.Repeat("0", 64) + "\nmd5 zz\nmd4 " + tMD5 + "\n",
		"\ufeffmd5 " + tMD5,
		"type,hash,label\nmd5," + tMD5 + ",\"a, b\"\nsha1," + tSHA1 + "\n",
		"md5,\"" + tMD5 + "\nunterminated",
		"md5," + tMD5 + ",a,b\n\"x\"y,z\n",
		ncmecFixture(),
		`<queryResult xmlns="` + NCMECNamespace + `"><images><image><id>1</id><fingerprints><pdq>` + tPDQ + `</pdq></fingerprints></image><deletedImage><id>1</id></deletedImage></images></queryResult>`,
		`<queryResult><videos><video><id>2</id><fingerprints><md5>` + tMD5 + `</md5></fingerprints></video><deletedVideo><id>2</id></deletedVideo></videos></queryResult>`,
		`<queryResult><images><image><id>&amp;</id><fingerprints><md5>` + tMD5 + `</md5><md5>` + tMD5b + `</md5></fingerprints></image></images></queryResult>`,
		`<?xml version="1.0"?><queryResult xmlns:x="urn:x"><x:images><image/></x:images></queryResult>`,
		"<queryResult><images><image><id>1",
		"<a><b/></a>",
	}
	for _, s := range seeds {
		for _, fm := range []Format{FormatAuto, FormatText, FormatCSV, FormatNCMEC} {
			f.Add([]byte(s), uint8(fm))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, fm uint8) {
		format := Format(fm % 4)
		b, err := ParseBank("FUZZ", "fuzz", bytes.NewReader(data), format)
		if err != nil {
			if b != nil {
				t.Fatal("bank and error both returned")
			}
			return
		}
		c := b.Counts()
		if c.MD5 != len(b.md5) || c.VideoMD5 != len(b.videoMD5) || c.SHA1 != len(b.sha1) ||
			c.SHA256 != len(b.sha256) || c.PDQ != b.pdq.Len() {
			t.Fatalf("counts %+v disagree with the sets", c)
		}
		if b.pdqRefs != nil && len(b.pdqRefs) != b.pdq.Len() {
			t.Fatalf("%d pdq labels for %d hashes", len(b.pdqRefs), b.pdq.Len())
		}
		if len(b.Problems()) > maxKeptProblems || b.ProblemCount() < len(b.Problems()) {
			t.Fatalf("problems %d kept of %d", len(b.Problems()), b.ProblemCount())
		}
		check := func(r entryRef) {
			if r == deletedRef {
				t.Fatal("tombstoned entry survived")
			}
			if l := b.label(r); len(l) > MaxLabelLen {
				t.Fatalf("label of %d bytes", len(l))
			}
		}
		for _, r := range b.md5 {
			check(r)
		}
		for _, r := range b.videoMD5 {
			check(r)
		}
		for _, r := range b.sha1 {
			check(r)
		}
		for _, r := range b.sha256 {
			check(r)
		}
		for i := 0; i < b.pdq.Len(); i++ {
			if b.pdq.Hash(int32(i)).IsZero() {
				t.Fatal("zero pdq hash banked")
			}
			if b.pdqRefs != nil {
				check(b.pdqRefs[i])
			}
		}
		for _, p := range b.Problems() {
			_ = p.String()
		}
	})
}
