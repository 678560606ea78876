package matcher

import (
	"bufio"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// Fixed digests for the table tests.
var (
	tMD5    = md5hex("a")
	tMD5b   = md5hex("b")
	tSHA1   = sha1hex("a")
	tSHA256 = sha256hex("a")
	tPDQ    = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
	tPDQb   = "0000000000000000000000000000000000000000000000000000000000000001"
)

func md5hex(s string) string    { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
func sha1hex(s string) string   { h := sha1.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
func sha256hex(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

func mustPDQ(t testing.TB, s string) pdq.Hash {
	t.Helper()
	h, err := pdq.ParseHex(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// problemsOf renders problems as "line: msg-substring"-checkable strings.
func problemsOf(b *Bank) []string {
	var out []string
	for _, p := range b.problems {
		out = append(out, p.String())
	}
	return out
}

// checkProblems asserts that problem i contains want[i], in order.
func checkProblems(t *testing.T, b *Bank, want []string) {
	t.Helper()
	got := problemsOf(b)
	if len(got) != len(want) || b.ProblemCount() != len(want) {
		t.Fatalf("problems = %d (%d kept) %q, want %d %q", b.ProblemCount(), len(got), got, len(want), want)
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("problem %d = %q, want it to contain %q", i, got[i], want[i])
		}
	}
}

const ncmecDoc = `<?xml version="1.0" encoding="UTF-8"?>
<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">
  <images count="4" maxTimestamp="2024-01-01T00:00:00Z">
    <image>
      <member id="42">Member</member>
      <timestamp>2024-01-01T00:00:00Z</timestamp>
      <id>1001</id>
      <classification>A1</classification>
      <fingerprints>
        <md5>` + "MD5A" + `</md5>
        <sha1>` + "SHA1A" + `</sha1>
        <pdna>AAAA,BBBB</pdna>
        <pdq>` + "PDQA" + `</pdq>
      </fingerprints>
    </image>
    <image>
      <id>1002</id>
      <fingerprints><md5>MD5B</md5><sha1/><pdq>PDQB</pdq></fingerprints>
    </image>
    <image>
      <id>1003</id>
      <fingerprints><md5>nothex</md5><sha1>SHA1C</sha1></fingerprints>
    </image>
    <image>
      <fingerprints><md5>MD5B</md5></fingerprints>
    </image>
    <deletedImage><member id="42"/><id>1002</id><timestamp/></deletedImage>
    <deletedImage><id>9999</id></deletedImage>
  </images>
  <videos>
    <video>
      <id>1002</id>
      <fingerprints><md5>VMD5</md5><sha1>SHA1V</sha1></fingerprints>
    </video>
    <video><id>2002</id><fingerprints><md5>VMD5B</md5></fingerprints></video>
    <deletedVideo><id>2002</id></deletedVideo>
  </videos>
  <paging><next>/v2/entries?start=1000</next></paging>
</queryResult>
`

func ncmecFixture() string {
	return strings.NewReplacer(
		"MD5A", tMD5, "SHA1A", tSHA1, "PDQA", tPDQ,
		"MD5B", tMD5b, "PDQB", tPDQb, "SHA1C", sha1hex("c"),
		"VMD5B", md5hex("vb"), "VMD5", md5hex("v"), "SHA1V", sha1hex("v"),
	).Replace(ncmecDoc)
}

func TestParseBankFailures(t *testing.T) {
	tests := []struct {
		name, file, in string
		format         Format
		want           string
	}{
		{"text all bad", "bad.txt", "garbage line\nmore garbage\n", FormatAuto, "bad.txt (text): no valid entries, 2 problems; first: bad.txt:1: unknown hash type"},
		{"csv all bad", "bad.csv", "a,b\nc,d\n", FormatAuto, "no valid entries, 2 problems"},
		{"xml truncated", "t.xml", "<queryResult><images><image><id>1</id>", FormatAuto, "XML syntax"},
		{"xml wrong root", "r.xml", "<html><body/></html>", FormatAuto, "not an NCMEC <queryResult>"},
		{"xml empty", "e.xml", "", FormatNCMEC, "no XML root element"},
		{"xml two roots", "2.xml", "<queryResult/><queryResult/>", FormatNCMEC, "not an NCMEC"},
		{"xml too deep", "d.xml", "<queryResult>" + strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40) + "</queryResult>", FormatNCMEC, "nested deeper"},
		{"xml all bad", "b.xml", "<queryResult><images><image><id>1</id><fingerprints><md5>zz</md5></fingerprints></image></images></queryResult>", FormatNCMEC, "no valid entries, 1 problems"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseBank("TEST", tt.file, strings.NewReader(tt.in), tt.format)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.file) {
				t.Errorf("err %q does not name the file", err)
			}
		})
	}
}

func TestDetectFormat(t *testing.T) {
	tests := []struct {
		name, head string
		want       Format
	}{
		{"x.txt", "md5 " + tMD5, FormatText},
		{"x.csv", "md5 " + tMD5, FormatText},
		{"x", "md5," + tMD5, FormatCSV},
		{"x", "# c\n\n type,hash,label\n", FormatCSV},
		{"x", "\"md5\",\"" + tMD5 + "\"", FormatCSV},
		{"x", "md5 " + tMD5 + " a,b", FormatText},
		{"x.txt", "\ufeff  \n<?xml version='1.0'?><queryResult/>", FormatNCMEC},
		{"x.csv", "# only a comment\n", FormatCSV},
		{"x.XML", "", FormatNCMEC},
		{"x", "", FormatText},
	}
	for _, tt := range tests {
		if got := DetectFormat(tt.name, []byte(tt.head)); got != tt.want {
			t.Errorf("DetectFormat(%q, %q) = %v, want %v", tt.name, tt.head, got, tt.want)
		}
	}
}

func TestLoadBankDirectory(t *testing.T) {
	dir := t.TempDir()
	page1 := `<queryResult xmlns="` + NCMECNamespace + `"><images><image><id>5</id><fingerprints><md5>` + tMD5 + `</md5><pdq>` + tPDQ + `</pdq></fingerprints></image></images></queryResult>`
	page2 := `<queryResult xmlns="` + NCMECNamespace + `"><images><deletedImage><id>5</id></deletedImage><image><id>6</id><fingerprints><sha1>` + tSHA1 + `</sha1></fingerprints></image></images></queryResult>`
	writeFile(t, filepath.Join(dir, "0001.xml"), page1)
	writeFile(t, filepath.Join(dir, "0002.xml"), page2)
	writeFile(t, filepath.Join(dir, "extra.txt"), "sha256 "+tSHA256+"\n")
	writeFile(t, filepath.Join(dir, "0003.xml.tmp"), "garbage")
	writeFile(t, filepath.Join(dir, ".hidden"), "garbage")
	b, err := LoadBank("NCMEC", dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Counts{SHA1: 1, SHA256: 1}); b.Counts() != want {
		t.Errorf("counts = %+v, want %+v (tombstone across pages)", b.Counts(), want)
	}
	writeFile(t, filepath.Join(dir, "0004.xml"), "<queryResult>")
	if _, err := LoadBank("NCMEC", dir); err == nil || !strings.Contains(err.Error(), "0004.xml") {
		t.Errorf("err = %v, want one naming 0004.xml", err)
	}
	if _, err := LoadBank("X", filepath.Join(dir, "missing")); err == nil {
		t.Error("missing path loaded")
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writePDQBank writes n random PDQ lines, the shape of a large hash list.
func writePDQBank(tb testing.TB, path string, n int) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	line := make([]byte, 0, 80)
	for i := 0; i < n; i++ {
		h := pdq.Hash{r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64()}
		line = append(line[:0], "pdq "...)
		line = h.AppendHex(line)
		line = append(line, '\n')
		w.Write(line)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkBankLoad1M loads a 1M-line PDQ text bank, index build included.
// b.Loop runs the function body once, so the file is generated once.
func BenchmarkBankLoad1M(b *testing.B) { benchBankLoad(b, 1_000_000) }

// BenchmarkBankLoad10M loads a 10M-line PDQ text bank, which should take
// under 30 s (a 690 MB file in the test's temporary directory).
func BenchmarkBankLoad10M(b *testing.B) {
	if testing.Short() || os.Getenv("MEDIAGUARD_BENCH_10M") != "1" {
		b.Skip("set MEDIAGUARD_BENCH_10M=1 (and no -short) to run the 10M benchmarks")
	}
	benchBankLoad(b, 10_000_000)
}

func benchBankLoad(b *testing.B, n int) {
	path := filepath.Join(b.TempDir(), "bank.txt")
	start := time.Now()
	writePDQBank(b, path, n)
	b.Logf("generated %d lines in %v", n, time.Since(start))
	for b.Loop() {
		bk, err := LoadBank("BENCH", path)
		if err != nil {
			b.Fatal(err)
		}
		if bk.Counts().PDQ != n {
			b.Fatalf("loaded %d", bk.Counts().PDQ)
		}
	}
}

func ExampleParseBank() {
	in := "# CSAM test list\nmd5 " + tMD5 + " case-17\nmd5 nothex\n"
	b, err := ParseBank("TEST", "test.txt", strings.NewReader(in), FormatAuto)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(b.Counts().MD5, b.ProblemCount())
	fmt.Println(b.Problems()[0])
	// Output:
	// 1 1
	// test.txt:3: md5 hash must be 32 hex digits, got 6 characters
}
