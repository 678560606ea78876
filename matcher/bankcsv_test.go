package matcher

import (
	"encoding/hex"
	"strings"
	"testing"
)

func TestParseBankCSV(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		counts   Counts
		problems []string
	}{
		{
			name: "header, labels, quotes, comments",
			in: "type,hash,label\n" +
				"md5," + tMD5 + ",\"label, with comma\"\n" +
				"# comment\n" +
				"SHA1, " + tSHA1 + "\n" +
				"pdq," + tPDQ + ",x\n" +
				"video_md5," + tMD5b + ",v\n",
			counts: Counts{MD5: 1, SHA1: 1, PDQ: 1, VideoMD5: 1},
		},
		{
			name:   "no header",
			in:     "sha256," + tSHA256 + ",x\n",
			counts: Counts{SHA256: 1},
		},
		{
			name: "bad records",
			in: "md5," + tMD5 + "\n" +
				"md5\n" + // 2 one field
				"md5," + tMD5b + ",a,b\n" + // 3 four fields
				"crc," + tMD5b + "\n" + // 4 unknown
				"md5,xyz\n" + // 5 bad hash
				"md5,\"unterminated" + "\n",
			counts: Counts{MD5: 1},
			problems: []string{
				"bank.csv:2: want type,hash[,label], got 1 fields",
				"bank.csv:3: want type,hash[,label], got 4 fields",
				"bank.csv:4: unknown hash type \"crc\"",
				"bank.csv:5: md5 hash must be 32 hex digits",
				"bank.csv:6: CSV:",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ParseBank("TEST", "bank.csv", strings.NewReader(tt.in), FormatAuto)
			if err != nil {
				t.Fatal(err)
			}
			if b.Counts() != tt.counts {
				t.Errorf("counts = %+v, want %+v", b.Counts(), tt.counts)
			}
			checkProblems(t, b, tt.problems)
		})
	}
	b, err := ParseBank("TEST", "bank.csv", strings.NewReader("md5,"+tMD5+",\"label, with comma\"\n"), FormatCSV)
	if err != nil {
		t.Fatal(err)
	}
	var k [16]byte
	hex.Decode(k[:], []byte(tMD5))
	if got := b.label(b.md5[k]); got != "label, with comma" {
		t.Errorf("label = %q", got)
	}
}
