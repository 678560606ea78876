package lookupwire

import (
	"encoding/json"
	"errors"
	"testing"
)

// TestDecodeRequest: log-only fields of the wrong JSON type are ignored,
// hashes must be an object, and a request without one is ErrNoHashes.
func TestDecodeRequest(t *testing.T) {
	r, err := DecodeRequest([]byte(`{"hashes":{"md5":"ab"},"userId":{"x":1},"roomId":"!r:s","eventId":"$e\u0021","timestamp":"soon","pdqQuality":70}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Hashes.MD5 != "ab" || r.UserID != "" || r.RoomID != "!r:s" || r.EventID != "$e!" || r.PDQQuality == nil || *r.PDQQuality != 70 {
		t.Fatalf("decoded %+v", r)
	}
	for _, body := range []string{`null`, `{}`, `{"hashes":null}`} {
		if _, err := DecodeRequest([]byte(body)); !errors.Is(err, ErrNoHashes) {
			t.Errorf("%s: err = %v; want ErrNoHashes", body, err)
		}
	}
	if _, err := DecodeRequest([]byte(`{"hashes":"x"}`)); !errors.As(err, new(*json.UnmarshalTypeError)) {
		t.Errorf("hashes as a string: err = %v; want a json.UnmarshalTypeError", err)
	}
	if _, err := DecodeRequest([]byte(`{"hashes":`)); !errors.As(err, new(*json.SyntaxError)) {
		t.Errorf("truncated: err = %v; want a json.SyntaxError", err)
	}
}
