package lookupapi

import (
	"strings"
	"testing"

	"github.com/mediaguard/mediaguard/lookupwire"
)

// TestOnBlock: only a "block" answer is passed on, after it is written,
// with the request's ids clipped as in logs; allows, rejections and
// failures are not.
func TestOnBlock(t *testing.T) {
	long := "$" + strings.Repeat("e", 400) + ":example.org"
	for _, tc := range []struct {
		name, body string
		want       bool
		wantEvent  string
	}{
		{"listed", pluginBody(listedMD5, "", ""), true, "$ev1:example.org"},
		{"listed, a long event id", strings.Replace(pluginBody("", "", listedSHA256), "$ev1:example.org", long, 1), true, clip(long)},
		{"not listed", pluginBody(md5hex("clean"), sha1hex("clean"), sha256hex("clean")), false, ""},
		{"not JSON", "{", false, ""},
		{"no hashes", `{"eventId":"$e:x"}`, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []lookupwire.Request
			var answers []lookupwire.Response
			h := newHandler(t, Config{Matcher: standardLocal(t), OnBlock: func(req lookupwire.Request, resp lookupwire.Response) {
				got, answers = append(got, req), append(answers, resp)
			}})
			w := serve(h, "POST", "/", tc.body, pluginHeaders)
			if (len(got) == 1) != tc.want || len(got) > 1 {
				t.Fatalf("OnBlock called %d times (status %d), want it %v", len(got), w.Code, tc.want)
			}
			if !tc.want {
				return
			}
			r := got[0]
			if r.EventID != tc.wantEvent || len(r.EventID) > maxLoggedLen+len("…") || r.RoomID != "!room:example.org" || r.UserID != "@mallory:example.org" || r.MediaType != "m.image" {
				t.Errorf("request passed on: %+v", r)
			}
			if answers[0].Action != lookupwire.ActionBlock || w.Code != 200 || !strings.Contains(w.Body.String(), `"action":"block"`) {
				t.Errorf("answer %+v, written %d %s", answers[0], w.Code, w.Body)
			}
		})
	}
}
