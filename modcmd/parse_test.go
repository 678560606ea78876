package modcmd

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	hash64 := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, body string
		want       Command
		ok         bool
		usage      string // a substring of the UsageError, "" for none
	}{
		{"not addressed", "hello !mediaguard status", Command{}, false, ""},
		{"another bot", "!mjolnir ban @x:y", Command{}, false, ""},
		{"prefix glued", "!mediaguardstatus", Command{}, false, ""},
		{"bare prefix is help", "!mediaguard", Command{Verb: VerbHelp}, true, ""},
		{"help", "!mediaguard help", Command{Verb: VerbHelp}, true, ""},
		{"status", "!mediaguard   status  ", Command{Verb: VerbStatus}, true, ""},
		{"verb case", "!mediaguard STATUS", Command{Verb: VerbStatus}, true, ""},
		{"tab", "!mediaguard\tstatus", Command{Verb: VerbStatus}, true, ""},
		{"confirm", "!mediaguard confirm 18eeaf3197f1efc3f4004a8502f439c9", Command{VerbConfirm, "18eeaf3197f1efc3f4004a8502f439c9"}, true, ""},
		{"dismiss", "!mediaguard dismiss det-42", Command{VerbDismiss, "det-42"}, true, ""},
		{"block", "!mediaguard block mxc://example.org/AbC_12-3", Command{VerbBlock, "mxc://example.org/AbC_12-3"}, true, ""},
		{"unblock ipv6 server", "!mediaguard unblock mxc://[::1]:8448/abc", Command{VerbUnblock, "mxc://[::1]:8448/abc"}, true, ""},
		{"lookup sha256 upper", "!mediaguard lookup " + strings.ToUpper(hash64), Command{VerbLookup, hash64}, true, ""},
		{"lookup typed", "!mediaguard lookup PDQ:" + hash64, Command{VerbLookup, "pdq:" + hash64}, true, ""},
		{"lookup md5", "!mediaguard lookup " + hash64[:32], Command{VerbLookup, hash64[:32]}, true, ""},
		{"reply fallback", "> <@mod:x> earlier\n> more\n\n!mediaguard status", Command{Verb: VerbStatus}, true, ""},
		{"unknown verb", "!mediaguard ban @x:y", Command{}, true, "Unknown command"},
		{"status with args", "!mediaguard status now", Command{}, true, "Usage: !mediaguard status"},
		{"confirm without id", "!mediaguard confirm", Command{}, true, "Usage: !mediaguard confirm"},
		{"two ids", "!mediaguard confirm a b", Command{}, true, "Usage"},
		{"id with html", "!mediaguard confirm <b>a</b>", Command{}, true, "Usage"},
		{"block an http url", "!mediaguard block https://example.org/x", Command{}, true, "Usage: !mediaguard block"},
		{"block with query", "!mediaguard block mxc://example.org/abc?access_token=x", Command{}, true, "Usage"},
		{"block with path", "!mediaguard block mxc://example.org/a/b", Command{}, true, "Usage"},
		{"block html link", `!mediaguard block <a href="mxc://example.org/abc">mxc://example.org/abc</a>`, Command{}, true, "Usage"},
		{"lookup wrong length", "!mediaguard lookup " + hash64[:50], Command{}, true, "Usage: !mediaguard lookup"},
		{"lookup not hex", "!mediaguard lookup " + strings.Repeat("zz", 16), Command{}, true, "Usage"},
		{"second line", "!mediaguard status\n!mediaguard block mxc://a/b", Command{}, true, "One command per message"},
		{"very long", "!mediaguard block mxc://example.org/" + strings.Repeat("a", 100000), Command{}, true, "too long"},
		{"long unknown verb is clipped", "!mediaguard " + strings.Repeat("x", 900), Command{}, true, "Unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := Parse(tc.body)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("Parse = %+v, %v, %v; want %+v, %v", got, ok, err, tc.want, tc.ok)
			}
			var ue *UsageError
			switch {
			case tc.usage == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.usage != "" && (!errors.As(err, &ue) || !strings.Contains(ue.Msg, tc.usage)):
				t.Fatalf("error %v, want a usage error containing %q", err, tc.usage)
			case err != nil && len(err.Error()) > 300:
				t.Fatalf("usage error echoes the input at length: %d bytes", len(err.Error()))
			}
		})
	}
}

func TestReactionCommand(t *testing.T) {
	for key, want := range map[string]string{
		"✅": VerbConfirm, "✅\uFE0F": VerbConfirm, "❌": VerbDismiss, "❌\uFE0F": VerbDismiss,
		"👍": "", "✔️": "", "": "", "✅✅": "",
	} {
		got, ok := ReactionCommand(key)
		if got != want || ok != (want != "") {
			t.Errorf("ReactionCommand(%q) = %q, %v; want %q", key, got, ok, want)
		}
	}
}
