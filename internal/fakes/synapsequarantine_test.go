package fakes

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

func adminDo(t *testing.T, f *Synapse, method, path, token string) (int, []byte) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("{}")
	}
	req, _ := http.NewRequest(method, f.URL+path, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type feedPage struct {
	NextBatch int64 `json:"next_batch"`
	Changes   []struct {
		Origin      string `json:"origin"`
		MediaID     string `json:"media_id"`
		Quarantined bool   `json:"quarantined"`
	} `json:"changes"`
}

func feed(t *testing.T, f *Synapse, from string) (int, feedPage) {
	t.Helper()
	path := "/_synapse/admin/v1/media/quarantine_changes"
	if from != "" {
		path += "?from=" + from
	}
	status, b := adminDo(t, f, http.MethodGet, path, f.AdminToken)
	var p feedPage
	if status == 200 {
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	}
	return status, p
}

// The fake's feed pages as Synapse's own test of the servlet expects
// (test_list_quarantined_media in
// https://github.com/element-hq/synapse/blob/develop/tests/rest/admin/test_media.py):
// an empty feed answers its current position, 1; quarantining one of 105
// byte-identical uploads records all 105, in pages of 100 and 5 with
// next_batch 101 and 106; a position beyond the stream is 400
// M_INVALID_PARAM.
func TestQuarantineFeedPages(t *testing.T) {
	f := NewSynapse(t)
	if status, p := feed(t, f, ""); status != 200 || len(p.Changes) != 0 || p.NextBatch != 1 {
		t.Fatalf("empty feed: %d %+v", status, p)
	}
	for i := range 105 {
		f.Put(fmt.Sprintf("m%03d", i), []byte("the same bytes"), "text/plain")
	}
	if status, _ := adminDo(t, f, http.MethodPost, "/_synapse/admin/v1/media/quarantine/hs.example/m000", f.AdminToken); status != 200 {
		t.Fatalf("quarantine: %d", status)
	}
	status, p1 := feed(t, f, "")
	if status != 200 || len(p1.Changes) != 100 || p1.NextBatch != 101 {
		t.Fatalf("page 1: %d, %d changes, next_batch %d", status, len(p1.Changes), p1.NextBatch)
	}
	for _, c := range p1.Changes {
		if c.Origin != "hs.example" || !c.Quarantined {
			t.Fatalf("page 1 record %+v", c)
		}
	}
	status, p2 := feed(t, f, "101")
	if status != 200 || len(p2.Changes) != 5 || p2.NextBatch != 106 || p2.Changes[4].MediaID != "m104" {
		t.Fatalf("page 2: %d %+v", status, p2)
	}
	if status, p3 := feed(t, f, "106"); status != 200 || len(p3.Changes) != 0 || p3.NextBatch != 106 {
		t.Fatalf("caught up: %d %+v", status, p3)
	}
	for _, from := range []string{"900000", "x"} {
		status, b := adminDo(t, f, http.MethodGet, "/_synapse/admin/v1/media/quarantine_changes?from="+from, f.AdminToken)
		if status != 400 || !strings.Contains(string(b), "M_INVALID_PARAM") {
			t.Fatalf("from=%s: %d %s", from, status, b)
		}
	}
	if status, _ := adminDo(t, f, http.MethodGet, "/_synapse/admin/v1/media/quarantine_changes", "user-token"); status != 403 {
		t.Fatalf("a user's token: %d", status)
	}
	f.NoQuarantineFeed.Store(true)
	if status, b := adminDo(t, f, http.MethodGet, "/_synapse/admin/v1/media/quarantine_changes", f.AdminToken); status != 404 || !strings.Contains(string(b), "M_UNRECOGNIZED") {
		t.Fatalf("older Synapse: %d %s", status, b)
	}
}

// Quarantined media is 404 to everyone but an admin asking to bypass the
// quarantine on the authenticated download; a user asking is refused
// with 400; unquarantine serves it again and is recorded; quarantining
// again records again (duplicates); unknown media records nothing.
func TestQuarantineDownloadAndRecords(t *testing.T) {
	f := NewSynapse(t)
	f.Put("pic", []byte("picture bytes"), "image/png")
	f.PutRemote("remote.example", "rpic", []byte("picture bytes"), "image/png")
	f.Put("other", []byte("other bytes"), "image/png")
	get := func(path, token string) int {
		status, _ := adminDo(t, f, http.MethodGet, path, token)
		return status
	}
	const bypass = "/_matrix/client/v1/media/download/hs.example/pic?admin_unsafely_bypass_quarantine=true"
	adminDo(t, f, http.MethodPost, "/_synapse/admin/v1/media/quarantine/hs.example/pic", f.AdminToken)
	adminDo(t, f, http.MethodPost, "/_synapse/admin/v1/media/quarantine/hs.example/unknown", f.AdminToken)
	for path, want := range map[string]int{
		"/_matrix/client/v1/media/download/hs.example/pic":      404,
		"/_matrix/media/v3/download/hs.example/pic":             404,
		"/_matrix/client/v1/media/download/remote.example/rpic": 404,
		"/_matrix/client/v1/media/download/hs.example/other":    200,
	} {
		if got := get(path, "user-token"); got != want {
			t.Errorf("%s: %d, want %d", path, got, want)
		}
	}
	if got := get(bypass, "user-token"); got != 400 {
		t.Errorf("bypass as a user: %d", got)
	}
	if got := get(bypass, f.AdminToken); got != 200 {
		t.Errorf("bypass as the admin: %d", got)
	}
	adminDo(t, f, http.MethodPost, "/_synapse/admin/v1/media/unquarantine/hs.example/pic", f.AdminToken)
	if got := get("/_matrix/client/v1/media/download/hs.example/pic", "user-token"); got != 200 || f.Quarantined("rpic") {
		t.Errorf("after unquarantine: %d, remote copy quarantined %v", got, f.Quarantined("rpic"))
	}
	f.Admins["mod-token"] = "@mod:hs.example"
	adminDo(t, f, http.MethodPost, "/_synapse/admin/v1/media/quarantine/remote.example/rpic", "mod-token")
	for path, want := range map[string]string{
		"/_synapse/admin/v1/media/hs.example/pic":      `"quarantined_by":"@mod:hs.example"`,
		"/_synapse/admin/v1/media/remote.example/rpic": `"media_origin":"remote.example"`,
		"/_synapse/admin/v1/media/hs.example/other":    `"quarantined_by":null`,
		"/_synapse/admin/v1/media/hs.example/unknown":  "M_NOT_FOUND",
		"/_synapse/admin/v1/media/other.example/pic":   "M_NOT_FOUND",
	} {
		if _, b := adminDo(t, f, http.MethodGet, path, f.AdminToken); !strings.Contains(string(b), want) {
			t.Errorf("%s: %s, want %s", path, b, want)
		}
	}
	_, p := feed(t, f, "")
	var got []string
	for _, c := range p.Changes {
		got = append(got, fmt.Sprintf("%s/%s %v", c.Origin, c.MediaID, c.Quarantined))
	}
	want := "hs.example/pic true,remote.example/rpic true,hs.example/pic false,remote.example/rpic false,hs.example/pic true,remote.example/rpic true"
	if strings.Join(got, ",") != want {
		t.Fatalf("records:\n got %s\nwant %s", strings.Join(got, ","), want)
	}
}
