package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/mediaguard/mediaguard/mediaproxy"
)

// The review options adapt from the global block and map onto the
// service's configuration: the confirmed bank and the allowlists are
// banks, the first allowlist takes dismissals.
func TestReviewOptions(t *testing.T) {
	src := "{\n\tmediaguard {\n\t\tbank LISTED /l\n\t\treview_threshold 45\n\t\treview_action hold\n\t\tconfirmed_bank CONFIRMED /c\n\t\tallow FP /a\n\t\tallow MORE /m\n\t}\n}\n:8080 {\n\tmediaguard\n}\n"
	out, _, err := caddyfile.Adapter{ServerType: serverType()}.Adapt([]byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			Mediaguard App `json:"mediaguard"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	a := &cfg.Apps.Mediaguard
	if a.ReviewThreshold != 45 || a.ReviewAction != "hold" || a.ConfirmedBank == nil || a.ConfirmedBank.Path != "/c" || len(a.Allow) != 2 {
		t.Fatalf("adapted %+v", a.Review)
	}
	sc, err := a.plainConfig(noReplacer{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range sc.Local.Banks {
		names = append(names, b.Name+map[bool]string{true: "(allow)"}[b.Allow])
	}
	if got := strings.Join(names, ","); got != "LISTED,CONFIRMED,FP(allow),MORE(allow)" {
		t.Errorf("banks %s", got)
	}
	if len(a.Banks) != 1 {
		t.Errorf("the App's banks grew: %+v", a.Banks)
	}
	if sc.ConfirmedBank != "CONFIRMED" || sc.Allowlist != "FP" || sc.Local.ReviewThreshold != 45 || sc.Proxy.ReviewAction != mediaproxy.ReviewHold {
		t.Errorf("service config: confirmed %q allow %q threshold %d action %q", sc.ConfirmedBank, sc.Allowlist, sc.Local.ReviewThreshold, sc.Proxy.ReviewAction)
	}
	for _, tc := range []struct{ in, want string }{
		{"review_threshold 64", "review_threshold"},
		{"review_threshold x", "review_threshold"},
		{"review_action maybe", "review_action: want allow or hold"},
		{"confirmed_bank C", "confirmed_bank: want"},
		{"allow lower /a", "allow: name"},
		{"confirmed_bank C /c\n confirmed_bank D /d", "given twice"},
	} {
		src := "{\n\tmediaguard {\n\t\t" + tc.in + "\n\t}\n}\n:8080 {\n\tmediaguard\n}\n"
		_, _, err := caddyfile.Adapter{ServerType: serverType()}.Adapt([]byte(src), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to mention %q", tc.in, err, tc.want)
		}
	}
	for _, th := range []int{20, 31} {
		b := App{Review: Review{ReviewThreshold: th}}
		if _, err := b.plainConfig(noReplacer{}); err == nil || !strings.Contains(err.Error(), "review_threshold") {
			t.Errorf("review_threshold %d at or below pdq_threshold: %v", th, err)
		}
	}
}

// noReplacer replaces no placeholder.
type noReplacer struct{}

func (noReplacer) ReplaceAll(s, _ string) string { return s }
