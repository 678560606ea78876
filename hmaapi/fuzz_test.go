package hmaapi

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/mediaguard/mediaguard/matcher"
)

// FuzzUploadForm feeds arbitrary bodies to the multipart reading of
// /h/hash: it never panics, hands at most one file to its consumer (of a
// field photo or video, read to its end), and succeeds only with one.
func FuzzUploadForm(f *testing.F) {
	for _, parts := range [][]part{
		{fileField("photo", []byte("\x89PNG\r\n\x1a\n..."))},
		{fileField("video", []byte("abc"))},
		{{field: "note", body: []byte("x")}, fileField("photo", []byte("y"))},
		{fileField("photo", []byte("a")), fileField("photo", []byte("b"))},
		{fileField("file", nil)},
		{{field: "photo", filename: str(""), body: []byte("z")}},
	} {
		body, ct := form(f, parts...)
		b, _ := formBoundary(ct)
		f.Add(body, b)
	}
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"photo\"; filename*=UTF-8''%78\r\n\r\nq\r\n--b--"), "b")
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"x\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=41=\r\n\r\n--b--\r\n"), "b")
	f.Add([]byte("--b\r\n\r\n--b--"), "b")
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		if boundary == "" || len(boundary) > 70 {
			return
		}
		files := 0
		var got []byte
		field, err := readUpload(bytes.NewReader(body), boundary, func(name, _ string, r io.Reader) error {
			files++
			if name != FieldPhoto && name != FieldVideo {
				t.Fatalf("file of field %q handed over", name)
			}
			var rerr error
			got, rerr = io.ReadAll(r)
			return rerr
		})
		if files > 1 {
			t.Fatalf("%d files handed over", files)
		}
		if err == nil && (files != 1 || (field != FieldPhoto && field != FieldVideo)) {
			t.Fatalf("success with %d files, field %q", files, field)
		}
		var re *requestError
		if errors.As(err, &re) && (re.status < 400 || re.status > 499 || re.msg == "") {
			t.Fatalf("refusal %+v", re)
		}
		if len(got) > len(body) {
			t.Fatalf("file of %d bytes out of a %d-byte body", len(got), len(body))
		}
	})
}

// FuzzLookupQuery feeds arbitrary query strings to /m/lookup's parsing:
// it never panics, refuses with a 400 in HMA's words, and a query it
// accepts carries exactly the digest of its known signal type.
func FuzzLookupQuery(f *testing.F) {
	for _, q := range []string{
		"signal_type=pdq&signal=f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22",
		"signal_type=video_md5&signal=%20FD7DEEA4BD0DD3AFF7CBADE6E587B254",
		"signal_type=sha256&signal=" + strings.Repeat("a", 64) + "&banks=A,B,,C",
		"signal_type=md5&signal=" + strings.Repeat("0", 32),
		"signal_type=sha1&signal=" + strings.Repeat("f", 40),
		"signal_type=pdq&signal=F8F8", "url=http://x/", "signal=&signal_type=", "signal_type=foo&signal=1", "%zz&signal",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return // net/http answers the parameters it could parse; so does parseLookup
		}
		lr, rerr := parseLookup(v)
		if rerr != nil {
			if rerr.status != 400 || rerr.msg == "" {
				t.Fatalf("refusal %+v", rerr)
			}
			return
		}
		want := map[string]matcher.Has{SignalPDQ: matcher.HasPDQ, SignalVideoMD5: matcher.HasMD5, SignalMD5: matcher.HasMD5,
			SignalSHA1: matcher.HasSHA1, SignalSHA256: matcher.HasSHA256}[lr.st.name]
		if want == 0 || lr.q.Has != want {
			t.Fatalf("type %q, query has %b", lr.st.name, lr.q.Has)
		}
		if lr.st.name == SignalPDQ && lr.q.PDQ.String() != v.Get("signal") {
			t.Fatalf("pdq %s from %q", lr.q.PDQ, v.Get("signal"))
		}
	})
}
