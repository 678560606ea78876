package doctor

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mediaguard/mediaguard/homeserver"
	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/matcher"
)

// learn_quarantines: the feed is read once from the saved position (a
// Synapse without it, before 1.152, fails with what to do), and the
// learned bank is one mediaguard wrote or will create.
func TestLearn(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(f *fakes.Synapse, path string)
		wants []want
	}{
		{"before the first start", func(f *fakes.Synapse, path string) {}, []want{
			{"learn_quarantines LEARNED", OK, []string{"the quarantine feed answers from position 0", "created at the first start"}},
			{"bank LEARNED", Warn, []string{"does not exist yet: learn_quarantines creates it"}},
		}},
		{"media to learn", func(f *fakes.Synapse, path string) {
			f.Put("pic", []byte("x"), "image/png")
			f.AppendQuarantineChange("hs.example", "pic", true)
			os.WriteFile(path, []byte(matcher.OwnedHeader+"\n"), 0o600)
		}, []want{
			{"learn_quarantines LEARNED", OK, []string{"1 change to apply at the next poll", "0 media learned in"}},
			{"bank LEARNED", Warn, []string{"empty"}},
		}},
		{"Synapse older than 1.152", func(f *fakes.Synapse, path string) { f.NoQuarantineFeed.Store(true) }, []want{
			{"learn_quarantines LEARNED", Fail, []string{"has no quarantine feed", "needs Synapse 1.152 or later"}},
		}},
		{"an operator's bank", func(f *fakes.Synapse, path string) {
			os.WriteFile(path, []byte("sha256 "+sha+" mine\n"), 0o600)
		}, []want{
			{"learn_quarantines LEARNED", Fail, []string{"not written by mediaguard", "a start refuses it"}},
		}},
		{"a restored homeserver", func(f *fakes.Synapse, path string) {
			os.WriteFile(path+".checkpoint", []byte(`{"homeserver":"`+f.URL+`","next_batch":900}`), 0o600)
		}, []want{
			{"learn_quarantines LEARNED", Warn, []string{"refuses the saved feed position 900", "from its start"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := fakes.NewSynapse(t)
			path := filepath.Join(t.TempDir(), "learned.bank")
			tc.setup(f, path)
			check(t, Config{
				Local:            matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "LEARNED", Path: path}}},
				SynapseAdmin:     &homeserver.AdminConfig{Homeserver: f.URL, AccessToken: f.AdminToken},
				LearnQuarantines: "LEARNED",
				AuditLog:         filepath.Join(t.TempDir(), "audit.log"),
			}, tc.wants...)
			if tc.name == "before the first start" {
				if _, err := os.Stat(path); err == nil {
					t.Fatal("the doctor created the bank file")
				}
			}
		})
	}
}
