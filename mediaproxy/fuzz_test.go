package mediaproxy

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
)

// FuzzClassify: arbitrary paths (encoded slashes, "..", overlong IDs, odd
// bytes) must never panic, and whatever is accepted as media must carry IDs
// that are safe to use as keys and to put back into URLs.
func FuzzClassify(f *testing.F) {
	for _, p := range []string{
		"/_matrix/media/v3/upload", "/_matrix/media/v3/upload/hs.example/abc",
		"/_matrix/media/r0/download/hs.example/abc/file.png", "/_matrix/client/v1/media/thumbnail/hs/abc",
		"/_matrix/federation/v1/media/download/abc", "/_matrix/media/v3/download/hs/..", "/_matrix/media/v3/download/hs/a%2Fb",
		"/_matrix/media/v3/download/%5B::1%5D:8448/x", "/_matrix/media/v1/create", "/_matrix/client/v3/sync",
	} {
		for _, m := range []string{"GET", "POST", "PUT", "HEAD"} {
			f.Add(m, p)
		}
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		u, err := url.ParseRequestURI(path)
		if err != nil {
			return
		}
		ep := Classify(&http.Request{Method: method, URL: u})
		switch ep.Kind {
		case Download, UploadTo:
			if !validMediaID(ep.MediaID) || (ep.Family != FamilyFederation && !validServer(ep.Server)) {
				t.Fatalf("%s %s accepted with unsafe IDs %+v", method, path, ep)
			}
			if strings.ContainsAny(ep.MediaID+ep.Server, "/\\\x00 ") {
				t.Fatalf("separator in IDs: %+v", ep)
			}
		}
	})
}

// FuzzFederationMedia: the federation multipart parser must never panic on
// an upstream's body, and must find the media part of a well-formed one.
func FuzzFederationMedia(f *testing.F) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.SetBoundary("b0undary")
	jp, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/json"}})
	jp.Write([]byte("{}"))
	mp, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"image/png"}})
	mp.Write([]byte("\x89PNG fake bytes"))
	mw.Close()
	f.Add(buf.Bytes())
	f.Add([]byte("--b0undary\r\nContent-Type: application/json\r\n\r\n{}\r\n--b0undary\r\nLocation: https://cdn/x\r\n\r\n\r\n--b0undary--\r\n"))
	f.Add([]byte("--b0undary\r\n\r\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		part, redirect, err := federationPart(bytes.NewReader(body), "b0undary")
		if err != nil || redirect {
			return
		}
		media, err := io.ReadAll(part)
		if err == nil && len(media) > len(body) {
			t.Fatalf("media part larger than the body")
		}
	})
}
