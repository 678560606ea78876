package ncmecxml

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// page is shaped as NCMEC's documented example (python-threatexchange's
// clients/ncmec/tests/data.py ENTRIES_XML): feedback elements, a pdna
// fingerprint the reader does not keep, tombstones with a member, and a
// paging link with its ampersands escaped.
const page = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">
    <images count="2" maxTimestamp="2017-10-24T15:10:00Z">
        <image>
            <member id="42">Example Member</member>
            <timestamp>2017-10-24T15:00:00Z</timestamp>
            <id>image1</id>
            <classification>A1</classification>
            <fingerprints>
                <md5>a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1</md5>
                <sha1>a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1</sha1>
                <pdna>a1a1a1a1...</pdna>
            </fingerprints>
            <feedback lastUpdateTimestamp="2023-06-01T12:48:14Z">
                <affirmativeFeedback type="Md5"><members><member id="42">Example Member</member></members></affirmativeFeedback>
            </feedback>
        </image>
        <deletedImage>
            <member id="43">Example Member2</member>
            <id>image4</id>
            <timestamp>2017-10-24T15:10:00Z</timestamp>
        </deletedImage>
    </images>
    <videos count="2" maxTimestamp="2017-10-24T15:20:00Z">
        <video>
            <member id="42">Example Member</member>
            <timestamp>2017-10-24T15:00:00Z</timestamp>
            <id>video1</id>
            <fingerprints>
                <md5>b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1</md5>
                <sha1>b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1</sha1>
                <tmk-pdqf rel="self" href="/v2/entries/1/fingerprints/TMK_PDQF"/>
            </fingerprints>
        </video>
        <deletedVideo>
            <member id="42">Example Member</member>
            <id>video4</id>
            <timestamp>2017-10-24T15:20:00Z</timestamp>
        </deletedVideo>
    </videos>
    <paging>
        <next>/v2/entries?from=2017-10-20T00%3A00%3A00.000Z&amp;to=2017-10-30T00%3A00%3A00.000Z&amp;start=2001&amp;size=1000&amp;max=3000</next>
    </paging>
</queryResult>`

type seen struct {
	kind                         Kind
	member, id, class, ts, print string
}

func readAll(t *testing.T, doc string) ([]seen, Document, error) {
	t.Helper()
	var out []seen
	d, err := Read(strings.NewReader(doc), func(e *Entry) error {
		s := seen{kind: e.Kind, member: string(e.Member), id: string(e.ID), class: string(e.Classification), ts: string(e.Timestamp)}
		var fps []string
		for _, f := range e.Fingerprints {
			fps = append(fps, f.Name+"="+string(f.Value))
		}
		s.print = strings.Join(fps, ",")
		if e.Overflow {
			s.print += "!overflow"
		}
		out = append(out, s)
		return nil
	})
	return out, d, err
}

func TestReadDocumentedPage(t *testing.T) {
	got, doc, err := readAll(t, page)
	if err != nil {
		t.Fatal(err)
	}
	want := []seen{
		{Image, "42", "image1", "A1", "2017-10-24T15:00:00Z", "md5=a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1,sha1=a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"},
		{DeletedImage, "43", "image4", "", "2017-10-24T15:10:00Z", ""},
		{Video, "42", "video1", "", "2017-10-24T15:00:00Z", "md5=b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1,sha1=b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1"},
		{DeletedVideo, "42", "video4", "", "2017-10-24T15:20:00Z", ""},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("entries\n got %v\nwant %v", got, want)
	}
	wantNext := "/v2/entries?from=2017-10-20T00%3A00%3A00.000Z&to=2017-10-30T00%3A00%3A00.000Z&start=2001&size=1000&max=3000"
	if doc.Next != wantNext || doc.Entries != 4 {
		t.Errorf("document = %+v, want next %q and 4 entries", doc, wantNext)
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"empty", "", "no XML root element"},
		{"prolog only", `<?xml version="1.0"?>`, "no XML root element"},
		{"html", "<html><body>Service Unavailable</body></html>", "root element is <html>, not an NCMEC <queryResult>"},
		{"truncated", "<queryResult><images><image><id>1</id>", "XML syntax"},
		{"garbage", "\x00\x01binary", "XML syntax"},
		{"too deep", "<queryResult>" + strings.Repeat("<a>", MaxDepth) + strings.Repeat("</a>", MaxDepth) + "</queryResult>", "nested deeper"},
		{"long next", "<queryResult><paging><next>" + strings.Repeat("x", maxNext+1) + "</next></paging></queryResult>", "longer than"},
		{"foreign root namespace", `<x:queryResult xmlns:x="urn:other"/>`, "not an NCMEC"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := readAll(t, tc.doc)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// A read error is returned as itself, not dressed up as bad XML: a
// connection cut mid-page is worth retrying, garbage is not.
func TestReadPassesReadErrors(t *testing.T) {
	cut := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader(page[:len(page)/2]), iotest.ErrReader(cut))
	_, err := Read(r, func(*Entry) error { return nil })
	if !errors.Is(err, cut) {
		t.Fatalf("error %v, want the read error", err)
	}
	stop := errors.New("stop")
	if _, err := Read(strings.NewReader(page), func(*Entry) error { return stop }); err != stop {
		t.Fatalf("callback error %v not returned as is", err)
	}
}

func TestReadBounds(t *testing.T) {
	long := strings.Repeat("9", MaxText+1)
	many := strings.Repeat("<md5>x</md5>", MaxFingerprints+1)
	doc := `<queryResult><images>
<image><id>` + long + `</id></image>
<image><id>2</id><fingerprints>` + many + `</fingerprints></image>
<image><member id="` + long + `"/><id>3</id></image>
<image><id>4</id><x:id xmlns:x="urn:x">not this</x:id><fingerprints><x:md5 xmlns:x="urn:x">nor this</x:md5></fingerprints></image>
</images></queryResult>`
	got, _, err := readAll(t, doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("%d entries", len(got))
	}
	for i := range 3 {
		if !strings.HasSuffix(got[i].print, "!overflow") {
			t.Errorf("entry %d not marked overflow: %+v", i, got[i])
		}
	}
	if got[3].id != "4" || got[3].print != "" {
		t.Errorf("foreign-namespace elements were read: %+v", got[3])
	}
}

// FuzzRead: nothing panics, kept fields stay within their bounds, and a
// document read whole is read the same through a one-byte reader.
func FuzzRead(f *testing.F) {
	f.Add([]byte(page))
	f.Add([]byte(`<queryResult><videos><video><id>2</id><fingerprints><md5>x</md5></fingerprints></video><deletedVideo><id>2</id></deletedVideo></videos></queryResult>`))
	f.Add([]byte(`<queryResult><paging><next>/v2/entries?a=1&amp;b=2</next></paging></queryResult>`))
	f.Add([]byte("<queryResult><images><image><id>1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var a []string
		da, errA := Read(bytes.NewReader(data), func(e *Entry) error {
			if len(e.ID) > MaxText || len(e.Classification) > MaxText || len(e.Timestamp) > MaxText || len(e.Member) > MaxText || len(e.Fingerprints) > MaxFingerprints {
				t.Fatalf("entry beyond its bounds: %d %d %d %d %d", len(e.ID), len(e.Classification), len(e.Timestamp), len(e.Member), len(e.Fingerprints))
			}
			for _, fp := range e.Fingerprints {
				if len(fp.Value) > MaxText {
					t.Fatalf("fingerprint of %d bytes", len(fp.Value))
				}
			}
			a = append(a, fmt.Sprintf("%v %q %q %q %v", e.Kind, e.ID, e.Member, e.Fingerprints, e.Overflow))
			return nil
		})
		if len(da.Next) > maxNext {
			t.Fatalf("next of %d bytes", len(da.Next))
		}
		var b []string
		db, errB := Read(iotest.OneByteReader(bytes.NewReader(data)), func(e *Entry) error {
			b = append(b, fmt.Sprintf("%v %q %q %q %v", e.Kind, e.ID, e.Member, e.Fingerprints, e.Overflow))
			return nil
		})
		if (errA == nil) != (errB == nil) || da != db || strings.Join(a, "\n") != strings.Join(b, "\n") {
			t.Fatalf("read differs by reader: %v/%v %+v/%+v", errA, errB, da, db)
		}
	})
}

// BenchmarkRead reads pages shaped like the importer's: 1000 image
// entries with md5, sha1 and pdq each.
func BenchmarkRead(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?><queryResult xmlns="` + Namespace + `"><images count="1000">`)
	for i := range 1000 {
		fmt.Fprintf(&sb, "\n<image><member id=\"42\">Member</member><timestamp>2024-01-01T00:00:00Z</timestamp><id>%d</id><classification>A1</classification>"+
			"<fingerprints><md5>%032x</md5><sha1>%040x</sha1><pdq>%064x</pdq></fingerprints></image>", i, i, i, i+1)
	}
	sb.WriteString(`</images><paging><next>/v2/entries?start=1001</next></paging></queryResult>`)
	doc := sb.String()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		n := 0
		if _, err := Read(strings.NewReader(doc), func(*Entry) error { n++; return nil }); err != nil || n != 1000 {
			b.Fatal(err, n)
		}
	}
}
