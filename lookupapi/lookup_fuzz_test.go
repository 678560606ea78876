package lookupapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mediaguard/mediaguard/matcher"
)

// FuzzLookupRequest posts arbitrary bytes. The handler must never panic,
// must answer only 200, 400, 413 or 503, always with a JSON object, and
// its error messages must stay short (they describe, never quote).
func FuzzLookupRequest(f *testing.F) {
	for _, s := range []string{
		pluginBody(listedMD5, listedSHA1, listedSHA256),
		pluginBody(unlistedMD5, "ff"+unlistedSHA1[2:], unlistedSHA256),
		`{"hashes":{"pdq":"` + bankedPDQ + `"},"pdqQuality":70}`,
		`{"hashes":{"pdq":"` + placeholderPDQ + `"}}`,
		`{"hashes":{"md5":"00` + listedMD5[2:] + `"}}`,
		`{"hashes":{"md5":12}}`, `{"hashes":"x"}`, `[]`, `null`, `{}`, `{"hashes":{}}`,
		`{"hashes":{"md5":"` + listedMD5 + `"}} trailing`, "{\"hashes\":{\"sha1\":\"\xff\xfe\"}}",
		`{"hashes":{"sha256":"` + listedSHA256 + `"},"userId":{"deep":[[[[[]]]]]},"timestamp":1e999}`,
		string(bytes.Repeat([]byte("["), 600)),
	} {
		f.Add([]byte(s))
	}
	m := &fakeMatcher{fn: func(q matcher.Query) (matcher.Verdict, error) {
		if q.Has&matcher.HasSHA1 != 0 && q.SHA1[0] == 0xff {
			return matcher.Verdict{}, matcher.ErrUnavailable
		}
		if q.Has&matcher.HasMD5 != 0 && q.MD5[0] == 0 {
			return matcher.Verdict{Match: true, HashType: matcher.MD5, MatchedHash: "00", Confidence: 1, Bank: "B"}, nil
		}
		return matcher.Verdict{}, nil
	}}
	h, err := New(Config{Matcher: m, MaxBodyBytes: 1024})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case 200, 400, 413, 503:
		default:
			t.Fatalf("status %d", w.Code)
		}
		var ans map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil {
			t.Fatalf("answer is not a JSON object: %q", w.Body)
		}
		if w.Code == 200 {
			if a := ans["action"]; a != "block" && a != "allow" {
				t.Fatalf("action %v", a)
			}
			return
		}
		if msg, _ := ans["error"].(string); msg == "" || len(msg) > 200 {
			t.Fatalf("error message %q", msg)
		}
	})
}
