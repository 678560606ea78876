package doctor

import (
	"strings"
	"testing"

	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/matcher"
)

// The Arachnid Shield line: the credentials are accepted and a lookup
// answers; refused credentials fail with what to fix, never printing the
// password; the probe sends one all-zero PDQ hash and nothing else.
func TestArachnid(t *testing.T) {
	shield := fakes.NewArachnid(t, "mg", "doctor-secret-pw")
	name := "arachnid " + strings.TrimPrefix(shield.URL, "http://")
	check(t, Config{Arachnid: &matcher.ArachnidConfig{URL: shield.URL, Username: "mg", Password: "doctor-secret-pw"}},
		want{name, OK, []string{"answers lookups"}})
	if sent := shield.SentHashes(); len(sent) != 1 || len(sent[0]) != 1 || sent[0][0] != strings.Repeat("A", 43)+"=" {
		t.Fatalf("the check sent %v; want one all-zero hash", sent)
	}
	rs := check(t, Config{Arachnid: &matcher.ArachnidConfig{URL: shield.URL, Username: "mg", Password: "wrong-pw"}},
		want{name, Fail, []string{"credentials refused", "check the arachnid username and password"}})
	if strings.Contains(printed(rs), "wrong-pw") {
		t.Fatalf("the password is printed:\n%s", printed(rs))
	}
	check(t, Config{Arachnid: &matcher.ArachnidConfig{URL: shield.URL, Username: "mg"}},
		want{"arachnid", Fail, []string{"username and password are required"}})
}
