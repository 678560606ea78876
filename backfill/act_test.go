package backfill

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mediaguard/mediaguard/ledger"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/notify"
)

type fakeAdmin struct {
	calls []string
	err   error
}

func (f *fakeAdmin) QuarantineMedia(_ context.Context, server, id string) error {
	f.calls = append(f.calls, server+"/"+id)
	return f.err
}

type fakeNotifier struct{ got []notify.Detection }

func (f *fakeNotifier) Notify(d notify.Detection) bool { f.got = append(f.got, d); return true }

func TestAdminActor(t *testing.T) {
	v := matcher.Verdict{Match: true, Bank: "LISTED", HashType: matcher.PDQ, MatchedHash: strings.Repeat("ab", 32), Distance: 3, Variant: "frame", Form: "frame 2"}
	for _, c := range []struct {
		name       string
		key        ledger.Key
		adminErr   error
		quarantine string
		wantErr    bool
		action     string
	}{
		{"local media", ledger.Key{Server: "hs.example", ID: "abc"}, nil, "hs.example/abc", false, "quarantined"},
		{"remote media by its ID", ledger.Key{Server: "other.example", ID: "xyz"}, nil, "other.example/xyz", false, "quarantined"},
		{"remote media by content only", ledger.Key{Server: "other.example", ID: "fs:abcd"}, nil, "", true, "media ID is unknown"},
		{"admin API fails", ledger.Key{Server: "hs.example", ID: "abc"}, errors.New("503"), "hs.example/abc", true, "quarantine FAILED"},
	} {
		t.Run(c.name, func(t *testing.T) {
			adm, n := &fakeAdmin{err: c.adminErr}, &fakeNotifier{}
			a := &AdminActor{Admin: adm, Notifiers: []Notifier{n}}
			err := a.RetroBlock(context.Background(), ledger.Record{Key: c.key, Uploader: "@u:hs.example"}, v)
			if (err != nil) != c.wantErr {
				t.Errorf("err %v", err)
			}
			if got := strings.Join(adm.calls, ","); got != c.quarantine {
				t.Errorf("quarantined %q, want %q", got, c.quarantine)
			}
			if len(n.got) != 1 {
				t.Fatalf("%d notices, want 1", len(n.got))
			}
			d := n.got[0]
			if !strings.Contains(d.Action, c.action) || d.Variant != "frame" || d.User != "@u:hs.example" || d.ID == "" {
				t.Errorf("notice %+v", d)
			}
			if strings.HasPrefix(c.key.ID, "fs:") != (d.MXC == "") {
				t.Errorf("notice names %q for %s", d.MXC, c.key)
			}
		})
	}
}
