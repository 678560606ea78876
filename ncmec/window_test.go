package ncmec

import (
	"bufio"
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/matcher/ncmecxml"
)

func readWindow(t *testing.T, doc string) *window {
	t.Helper()
	w := newWindow()
	if _, err := ncmecxml.Read(strings.NewReader(doc), w.add); err != nil {
		t.Fatal(err)
	}
	return w
}

const ns = `<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">`

// Within a window the latest timestamp wins, whatever the order: a
// tombstone read before the entry it deletes still deletes it, and an
// older version read last does not undo a newer one.
func TestWindowLatestVersionWins(t *testing.T) {
	w := readWindow(t, ns+`<images>
<deletedImage><member id="42"/><id>1</id><timestamp>2024-01-02T00:00:00Z</timestamp></deletedImage>
<image><member id="42"/><id>1</id><timestamp>2024-01-01T00:00:00Z</timestamp><fingerprints><md5>`+md5Of("a")+`</md5></fingerprints></image>
<image><member id="42"/><id>2</id><timestamp>2024-01-03T00:00:00Z</timestamp><classification>A2</classification><fingerprints><md5>`+md5Of("new")+`</md5></fingerprints></image>
<image><member id="42"/><id>2</id><timestamp>2024-01-01T00:00:00Z</timestamp><classification>A1</classification><fingerprints><md5>`+md5Of("old")+`</md5></fingerprints></image>
<image><member id="43"/><id>2</id><timestamp>2024-01-01T00:00:00Z</timestamp><fingerprints><md5>`+md5Of("other member")+`</md5></fingerprints></image>
</images></queryResult>`)
	if len(w.recs) != 3 {
		t.Fatalf("%d entries, want 3 (member 42's 1 and 2, member 43's 2)", len(w.recs))
	}
	if r := w.recs[w.idx[key{member: "42", id: "1"}]]; r.flags&deleted == 0 {
		t.Error("the later tombstone read first did not win")
	}
	if r := w.recs[w.idx[key{member: "42", id: "2"}]]; w.classes[r.class] != "A2" || hexOf(r.md5[:]) != md5Of("new") {
		t.Errorf("the older version read last won: %q %x", w.classes[r.class], r.md5)
	}
}

// Fingerprints that cannot be banked are refused one by one (the entry's
// others are kept); ids that cannot be written as one word refuse the
// entry; classifications are made one word.
func TestWindowRefusals(t *testing.T) {
	w := readWindow(t, ns+`<images>
<image><id>ok</id><classification>A 1#x</classification><fingerprints><md5>nothex`+strings.Repeat("0", 26)+`</md5><sha1>`+sha1Of("a")+`</sha1><pdq>`+strings.Repeat("0", 64)+`</pdq></fingerprints></image>
<image><id>has space</id><fingerprints><md5>`+md5Of("b")+`</md5></fingerprints></image>
<image><id>#hash</id><fingerprints><md5>`+md5Of("b")+`</md5></fingerprints></image>
<image><id></id><fingerprints><md5>`+md5Of("b")+`</md5></fingerprints></image>
<image><id>short</id><timestamp>yesterday</timestamp><fingerprints><md5>abc</md5></fingerprints></image>
</images><videos><video><id>v</id><fingerprints><md5>`+md5Of("v")+`</md5><sha1>`+sha1Of("v")+`</sha1><pdq>`+pdqOf("v")+`</pdq></fingerprints></video></videos></queryResult>`)
	if w.problems != 7 {
		t.Errorf("%d problems, want 7: %v", w.problems, w.firstProblems)
	}
	r := w.recs[w.idx[key{id: "ok"}]]
	if r.flags != hasSHA1 || w.classes[r.class] != "A_1_x" {
		t.Errorf("entry ok: flags %b class %q", r.flags, w.classes[r.class])
	}
	if v := w.recs[w.idx[key{video: true, id: "v"}]]; v.flags != hasMD5 {
		t.Errorf("a video keeps only its md5: flags %b", v.flags)
	}
	if _, ok := w.idx[key{id: "short"}]; !ok {
		t.Error("an entry whose fingerprints are all refused must still replace its older version")
	}
}

// What merge writes, parseLine reads back, and the bank loader loads with
// the labels the XML loader gives the same entries.
func TestBankLinesRoundTrip(t *testing.T) {
	doc := ns + `<images><image><member id="42"/><id>1001</id><classification>A1</classification><fingerprints><md5>` + md5Of("1") + `</md5><sha1>` + sha1Of("1") + `</sha1><pdq>` + pdqOf("1") + `</pdq></fingerprints></image>
<image><id>1002</id><fingerprints><md5>` + md5Of("2") + `</md5></fingerprints></image></images>
<videos><video><member id="7"/><id>1001</id><classification>B2</classification><fingerprints><md5>` + md5Of("v") + `</md5></fingerprints></video></videos></queryResult>`
	w := readWindow(t, doc)
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	m, err := merge(bw, "/nonexistent", true, header{bank: "N", base: "https://x/h", through: time.Unix(0, 0)}, w)
	bw.Flush()
	if err != nil || m.entries != 3 || m.counts != (Counts{MD5: 2, SHA1: 1, PDQ: 1, VideoMD5: 1}) {
		t.Fatalf("merge: %+v %v", m, err)
	}
	fromText, err := matcher.ParseBank("N", "synced", bytes.NewReader(buf.Bytes()), matcher.FormatAuto)
	if err != nil || fromText.ProblemCount() > 0 {
		t.Fatalf("loading what merge wrote: %v %v\n%s", err, fromText.Problems(), buf.String())
	}
	fromXML, err := matcher.ParseBank("N", "page.xml", strings.NewReader(doc), matcher.FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	if d := matcher.DiffBanks(fromXML, fromText); !d.Empty() {
		t.Errorf("the text bank differs from the XML bank: %+v", d)
	}
	var keys []key
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		l := parseLine([]byte(line + "\n"))
		if l.comment {
			continue
		}
		if !l.ours {
			t.Fatalf("line %q not read back as the sync's", line)
		}
		keys = append(keys, l.key)
	}
	want := []key{{false, "42", "1001"}, {false, "42", "1001"}, {false, "42", "1001"}, {false, "", "1002"}, {true, "7", "1001"}}
	if len(keys) != len(want) {
		t.Fatalf("keys %v", keys)
	}
	for i := range want {
		if keys[i] != want[i] {
			t.Errorf("line %d key %+v, want %+v", i, keys[i], want[i])
		}
	}
	h, err := parseHeader(strings.SplitN(buf.String(), "\n", 2)[0])
	if err != nil || h.bank != "N" || h.base != "https://x/h" || !h.through.Equal(time.Unix(0, 0)) {
		t.Fatalf("header %+v %v", h, err)
	}
}

// Lines an operator added despite the notice survive a sync; comments
// are rewritten.
func TestMergeKeepsForeignLines(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "b")
	os.WriteFile(old, []byte(header{bank: "N", base: "b"}.String()+"\n# old comment\nsha256 "+strings.Repeat("ab", 32)+" mine\nmd5 "+md5Of("1")+" ncmec:1 A1 # member 4\n"), 0o600)
	w := newWindow()
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	m, err := merge(bw, old, false, header{bank: "N", base: "b"}, w)
	bw.Flush()
	if err != nil || m.entries != 1 || m.counts.MD5 != 1 {
		t.Fatalf("%+v %v", m, err)
	}
	if s := buf.String(); !strings.Contains(s, " mine\n") || strings.Contains(s, "old comment") {
		t.Fatalf("merged:\n%s", s)
	}
}

// FuzzBankLine: parseLine never panics, and a line it calls the sync's
// always carries a type the loader knows and an id.
func FuzzBankLine(f *testing.F) {
	f.Add([]byte("md5 " + md5Of("1") + " ncmec:1 A1 # member 42\n"))
	f.Add([]byte("video_md5 " + md5Of("1") + " ncmec:x\n"))
	f.Add([]byte("# comment\n"))
	f.Add([]byte("pdq x ncmec: # member\n"))
	f.Add([]byte(header{bank: "N", base: "https://x", through: time.Unix(0, 0)}.String()))
	f.Fuzz(func(t *testing.T, line []byte) {
		l := parseLine(line)
		if l.ours && (l.key.id == "" || (l.typ != "md5" && l.typ != "sha1" && l.typ != "pdq" && l.typ != "video_md5")) {
			t.Fatalf("line %q read as %+v", line, l)
		}
		if l.ours && l.key.video != (l.typ == "video_md5") {
			t.Fatalf("line %q: video %v for type %s", line, l.key.video, l.typ)
		}
		parseHeader(string(line))
	})
}

// FuzzNextLink: whatever link a page gives, the client either refuses it
// or goes to the base URL's own host and entries endpoint, with the
// window's from and to.
func FuzzNextLink(f *testing.F) {
	for _, s := range []string{
		"/v2/entries?from=2024-05-01T12%3A00%3A00.000Z&to=2024-05-01T13%3A00%3A00.000Z&start=1001&size=1000&max=3000",
		"https://report.cybertip.org/hashsharing/v2/entries?start=2",
		"//evil.example/v2/entries", "http://evil/", "/v2/entries/../x", "/%2e%2e/v2/entries", "\\\\evil\\v2",
	} {
		f.Add(s)
	}
	base, _ := url.Parse("https://report.cybertip.org/hashsharing")
	c := &client{base: base}
	from, to := t0, t0.Add(time.Hour)
	f.Fuzz(func(t *testing.T, link string) {
		u, err := c.next(link, from, to)
		if err != nil {
			return
		}
		if u.Scheme != "https" || u.Host != "report.cybertip.org" || u.User != nil || u.Path != "/hashsharing/v2/entries" {
			t.Fatalf("%q followed to %s", link, u)
		}
		q := u.Query()
		for _, p := range []struct {
			name string
			t    time.Time
		}{{"from", from}, {"to", to}} {
			got, err := time.Parse(time.RFC3339Nano, q.Get(p.name))
			if err != nil || !got.Equal(p.t) {
				t.Fatalf("%q followed with %s=%q", link, p.name, q.Get(p.name))
			}
		}
	})
}
