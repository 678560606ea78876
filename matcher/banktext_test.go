package matcher

import (
	"encoding/hex"
	"strings"
	"testing"
)

func TestParseBankText(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		counts   Counts
		problems []string
		labels   map[string]string // hex → label of exact entries
	}{
		{
			name: "all types, comments, blanks, case",
			in: "# a comment\n\n   \n" +
				"md5 " + tMD5 + "\n" +
				"SHA1\t" + strings.ToUpper(tSHA1) + "  label with  spaces  # trailing comment\n" +
				"Sha256 " + tSHA256 + " case#12\n" +
				"pdq " + tPDQ + " # only a comment\n" +
				"video_md5 " + tMD5b + " vid\r\n" +
				"  # indented comment\n",
			counts: Counts{MD5: 1, SHA1: 1, SHA256: 1, PDQ: 1, VideoMD5: 1},
			labels: map[string]string{tMD5: "", tSHA1: "label with  spaces", tSHA256: "case#12", tMD5b: "vid"},
		},
		{
			name: "bad lines reported with file:line and skipped",
			in: "md5 " + tMD5 + "\n" +
				"md4 " + tMD5 + "\n" + // 2 unknown type
				"md5\n" + // 3 no hash
				"md5 " + tMD5[:31] + "\n" + // 4 short
				"sha1 " + tMD5 + "\n" + // 5 wrong length for type
				"sha256 " + strings.Repeat("g", 64) + "\n" + // 6 not hex
				"pdq " + strings.Repeat("0", 64) + "\n" + // 7 zero pdq
				"md5 " + tMD5b + " bad\x01label\n" + // 8 control char
				"md5 " + tMD5b + " " + strings.Repeat("x", MaxLabelLen+1) + "\n" + // 9 long label
				"md5 " + tMD5b + " \xff\xfe\n" + // 10 invalid UTF-8
				"pdq " + tPDQ + "\n",
			counts: Counts{MD5: 1, PDQ: 1},
			problems: []string{
				"bank.txt:2: unknown hash type \"md4\"",
				"bank.txt:3: md5 entry without a hash",
				"bank.txt:4: md5 hash must be 32 hex digits, got 31",
				"bank.txt:5: sha1 hash must be 40 hex digits",
				"bank.txt:6: sha256 hash is not hexadecimal",
				"bank.txt:7: pdq hash is all zeros",
				"bank.txt:8: label contains control characters",
				"bank.txt:9: label longer than",
				"bank.txt:10: label is not valid UTF-8",
			},
		},
		{
			name:   "duplicates keep the first label",
			in:     "md5 " + tMD5 + " first\nmd5 " + strings.ToUpper(tMD5) + " second\n",
			counts: Counts{MD5: 1},
			labels: map[string]string{tMD5: "first"},
		},
		{
			name:   "no final newline, BOM",
			in:     "\ufeffmd5 " + tMD5,
			counts: Counts{MD5: 1},
		},
		{
			name:   "empty file is an empty bank",
			in:     "",
			counts: Counts{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ParseBank("TEST", "bank.txt", strings.NewReader(tt.in), FormatAuto)
			if err != nil {
				t.Fatal(err)
			}
			if b.Counts() != tt.counts {
				t.Errorf("counts = %+v, want %+v", b.Counts(), tt.counts)
			}
			checkProblems(t, b, tt.problems)
			for h, want := range tt.labels {
				var got string
				var ok bool
				switch len(h) {
				case 32:
					var k [16]byte
					hex.Decode(k[:], []byte(h))
					var r entryRef
					if r, ok = b.md5[k]; !ok {
						r, ok = b.videoMD5[k]
					}
					got = b.label(r)
				case 40:
					var k20 [20]byte
					hex.Decode(k20[:], []byte(h))
					var r entryRef
					r, ok = b.sha1[k20]
					got = b.label(r)
				case 64:
					var k32 [32]byte
					hex.Decode(k32[:], []byte(h))
					var r entryRef
					r, ok = b.sha256[k32]
					got = b.label(r)
				}
				if !ok || got != want {
					t.Errorf("label of %s = %q (found %v), want %q", h, got, ok, want)
				}
			}
		})
	}
}

func TestParseBankTextLongLine(t *testing.T) {
	in := "md5 " + tMD5 + "\n" + "md5 " + strings.Repeat("a", maxLineLen+10) + "\n" + "sha1 " + tSHA1 + "\n"
	b, err := ParseBank("TEST", "long.txt", strings.NewReader(in), FormatText)
	if err != nil {
		t.Fatal(err)
	}
	if c := b.Counts(); c.MD5 != 1 || c.SHA1 != 1 {
		t.Errorf("counts = %+v", c)
	}
	checkProblems(t, b, []string{"long.txt:2: line longer than"})
}
