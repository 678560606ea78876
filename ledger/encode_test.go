package ledger

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher"
)

func TestEncodeRoundTrip(t *testing.T) {
	long := strings.Repeat("w ", maxTokens+3)
	cases := []struct {
		name string
		edit func(r *Record)
	}{
		{"still image", func(r *Record) {}},
		{"three frames", func(r *Record) { *r = sampleRecord(3, 3) }},
		{"everything", func(r *Record) { *r = fullRecord() }},
		{"nothing", func(r *Record) { *r = Record{Verdict: Unscannable} }},
		{"no first seen", func(r *Record) { r.FirstSeen = time.Time{} }},
		{"no last seen", func(r *Record) { r.LastSeen = time.Time{} }},
		{"last before first", func(r *Record) { r.LastSeen = r.FirstSeen.Add(-time.Hour) }},
		{"before 1970", func(r *Record) { r.FirstSeen = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"exact only", func(r *Record) {
			r.Query.Has = matcher.HasSHA256
			r.Query.MD5, r.Query.SHA1, r.Query.PDQ, r.Query.PDQQuality = [16]byte{}, [20]byte{}, pdq.Hash{}, 0
		}},
		{"unknown type and kind", func(r *Record) { r.Type, r.Query.Kind = "x-new", "hologram" }},
		{"negative size", func(r *Record) { r.Size = -1 }},
		{"high has bits", func(r *Record) { r.Query.Has |= 0xf0 }},
		{"long name", func(r *Record) {
			r.Query.Forms = fullRecord().Query.Forms[:1]
			r.Query.Forms[0].Name = long
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := sampleRecord(1, 0)
			c.edit(&r)
			b := appendValue(nil, &r, 3)
			var got Record
			got.Key = r.Key
			id, err := decodeValue(b, &got)
			if err != nil {
				t.Fatal(err)
			}
			if r.Banks != "" && id != 3 {
				t.Errorf("banks id %d, want 3", id)
			}
			got.Banks = r.Banks
			if !sameRecord(got, r) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
			}
			if ls, err := lastSeenOf(b); err != nil || !ls.Equal(r.LastSeen) {
				t.Errorf("lastSeenOf = %v, %v; want %v", ls, err, r.LastSeen)
			}
			if fs, err := firstSeenOf(b); err != nil || !fs.Equal(r.FirstSeen) {
				t.Errorf("firstSeenOf = %v, %v; want %v", fs, err, r.FirstSeen)
			}
			var q matcher.Query
			if err := decodeExtra(appendExtra(nil, &r.Query), &q); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(norm(r.Query.Forms), norm(q.Forms)) || !reflect.DeepEqual(norm(r.Query.Dihedral), norm(q.Dihedral)) || !reflect.DeepEqual(norm(r.Query.Embedded), norm(q.Embedded)) {
				t.Errorf("extra round trip: got %+v", q)
			}
		})
	}
}

// TestEncodedSize holds the encoding to the budget with room for
// the embedded store's overhead (BenchmarkLedgerSize measures the file).
func TestEncodedSize(t *testing.T) {
	still := sampleRecord(1, 0)
	frames := sampleRecord(1, 3)
	sv, fv := len(appendValue(nil, &still, 1)), len(appendValue(nil, &frames, 1))
	t.Logf("value bytes: still image %d, per further form %d", sv, (fv-sv)/3)
	if sv > 130 {
		t.Errorf("still image value is %d bytes, want at most 130", sv)
	}
	if per := (fv - sv) / 3; per > 38 {
		t.Errorf("a further form costs %d bytes, want at most 38", per)
	}
}

// liteQuery is q as decodeQuery reads it: no form names or variants, no
// embedded places, empty lists as nil.
func liteQuery(q matcher.Query) matcher.Query {
	q.Forms = norm(append([]pdq.Form(nil), q.Forms...))
	for i := range q.Forms {
		q.Forms[i].Name, q.Forms[i].Variant = "", ""
	}
	q.Embedded = norm(append([]matcher.EmbeddedDigests(nil), q.Embedded...))
	for i := range q.Embedded {
		q.Embedded[i].Where = ""
	}
	q.Dihedral = norm(q.Dihedral)
	return q
}

// TestDecodeQuery: the retro-scan's partial decoding reads the verdict
// and the query as decodeValue does, but for the names it skips, reusing
// one Query across records of every shape, and refuses what decodeValue
// refuses for its length or structure.
func TestDecodeQuery(t *testing.T) {
	recs := []Record{fullRecord(), sampleRecord(1, 0), sampleRecord(2, 3), {Verdict: Unscannable}}
	for i := range 300 {
		recs = append(recs, genRecord(i, 7))
	}
	var q matcher.Query
	for i, r := range recs {
		b := appendValue(nil, &r, 2)
		v, err := decodeQuery(b, &q)
		if err != nil || v != r.Verdict {
			t.Fatalf("record %d: decodeQuery = %v, %v", i, v, err)
		}
		if got, want := liteQuery(q), liteQuery(r.Query); !reflect.DeepEqual(got, want) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, got, want)
		}
		for cut := range len(b) {
			if _, err := decodeQuery(b[:cut], &q); err == nil {
				t.Fatalf("record %d cut to %d bytes: decoded", i, cut)
			}
		}
	}
	good := sampleRecord(1, 2)
	b := appendValue(nil, &good, 1)
	for name, in := range map[string][]byte{
		"other version": append([]byte{2}, b[1:]...),
		"trailing":      append(append([]byte{}, b...), 0),
		"unknown flag":  {valueVersion, 1, 0, 0x80, 0x40, 0},
		"huge list":     {valueVersion, 1, 0, flagForms, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
	} {
		if _, err := decodeQuery(in, &q); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good := sampleRecord(1, 2)
	b := appendValue(nil, &good, 1)
	cases := map[string][]byte{
		"empty":         nil,
		"other version": append([]byte{2}, b[1:]...),
		"truncated":     b[:len(b)-1],
		"trailing":      append(append([]byte{}, b...), 0),
		"unknown flag":  {valueVersion, 1, 0, 0x80, 0x40, 0},
		"huge list":     {valueVersion, 1, 0, flagForms, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
	}
	for name, in := range cases {
		var r Record
		if _, err := decodeValue(in, &r); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// FuzzDecode: no input panics the decoder, and whatever it accepts
// encodes back to bytes that decode to the same record.
func FuzzDecode(f *testing.F) {
	for _, r := range []Record{sampleRecord(1, 0), sampleRecord(2, 3), fullRecord(), {}} {
		f.Add(appendValue(nil, &r, 5))
		f.Add(appendExtra(nil, &r.Query))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if id, err := decodeValue(b, &r); err == nil {
			if id != 0 {
				r.Banks = "interned"
			}
			again := appendValue(nil, &r, id)
			var r2 Record
			id2, err := decodeValue(again, &r2)
			if id2 != 0 {
				r2.Banks = "interned"
			}
			if err != nil || id2 != id || !reflect.DeepEqual(r, r2) {
				t.Fatalf("re-encoding %x: %v\n got %+v\nwant %+v", again, err, r2, r)
			}
			lastSeenOf(b)
			firstSeenOf(b)
			var q matcher.Query
			if v, err := decodeQuery(b, &q); err != nil || v != r.Verdict || !reflect.DeepEqual(liteQuery(r.Query), liteQuery(q)) {
				t.Fatalf("decodeQuery of a value decodeValue accepts = %v, %v\n got %+v\nwant %+v", v, err, q, r.Query)
			}
		} else {
			var q matcher.Query
			decodeQuery(b, &q)
		}
		var q matcher.Query
		if err := decodeExtra(b, &q); err == nil {
			var q2 matcher.Query
			if err := decodeExtra(appendExtra(nil, &q), &q2); err != nil || !reflect.DeepEqual(q, q2) {
				t.Fatalf("extra re-encoding: %v\n got %+v\nwant %+v", err, q2, q)
			}
		}
	})
}

func TestVariantOf(t *testing.T) {
	for name, want := range map[string]string{
		"frame 3":                  pdq.VariantFrame,
		"video frame at 1.5s":      pdq.VariantFrame,
		"displayed":                pdq.VariantDisplayed,
		"displayed colour-managed": pdq.VariantColourManaged,
		"frame 3 on black":         pdq.VariantComposited,
		"displayed on white":       pdq.VariantComposited,
		"frame 2 quadrant 4":       pdq.VariantQuadrant,
		"rotated -3°":              pdq.VariantRotated,
		"pdf image object 12":      "",
		"":                         "",
		"frame":                    pdq.VariantFrame,
	} {
		if got := variantOf(name); got != want {
			t.Errorf("variantOf(%q) = %q, want %q", name, got, want)
		}
	}
}
