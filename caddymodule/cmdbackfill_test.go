package caddymodule

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/bypass"
	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// TestBackfillCommandActs runs `mediaguard backfill` as an operator does:
// over a Synapse-layout store hiding the listed picture three ways, a dry
// run acts on nothing; --act quarantines each match through the Synapse
// admin API (a fake: no Synapse here) and posts one notice per match to
// the webhook; a second --act run acts on nothing more.
func TestBackfillCommandActs(t *testing.T) {
	listed := testimg.Photo(61, 320, 240)
	listedJPEG := testimg.JPEG(listed, 90)
	byName := func(forms []bypass.Form, name string) []byte {
		for _, f := range forms {
			if f.Name == name {
				return f.Make(listed)
			}
		}
		t.Fatalf("no bypass form %q", name)
		return nil
	}
	root := filepath.Join(t.TempDir(), "media")
	files := map[string][]byte{
		"local_content/Li/st/edAsStoredxxxxxxxxxx": listedJPEG,
		"local_content/Ro/ta/tedBehindExifxxxxxxx": byName(bypass.Images, "pixels rotated behind EXIF orientation 6"),
		"local_content/In/aP/dfxxxxxxxxxxxxxxxxxx": byName(bypass.Containers, "pdf embedding the jpeg"),
		"local_content/Cl/ea/nJpegxxxxxxxxxxxxxxx": testimg.JPEG(testimg.Photo(62, 320, 240), 90),
	}
	for rel, b := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	bank := filepath.Join(dir, "test.bank")
	os.WriteFile(bank, []byte("pdq "+reportOf(t, listedJPEG).PDQ+" listed\n"), 0o600)

	admin := fakes.NewSynapse(t)
	admin.AdminToken = "admin-secret"
	var mu sync.Mutex
	var notices []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		notices = append(notices, string(b))
		mu.Unlock()
	}))
	defer hook.Close()
	caddyfile := filepath.Join(dir, "Caddyfile")
	os.WriteFile(caddyfile, []byte(fmt.Sprintf(`{
	mediaguard {
		bank TEST %s
		server_name hs.example
		ledger %s
		notify webhook %s
		synapse_admin {
			homeserver %s
			access_token admin-secret
		}
	}
}
`, bank, filepath.Join(dir, "ledger", "media.ledger"), hook.URL, admin.URL)), 0o600)

	run := func(act bool) string {
		t.Helper()
		var out, errOut bytes.Buffer
		f := backfillFlags{mediaStore: root, config: caddyfile, adapter: "caddyfile", act: act, jobs: 1, every: time.Minute}
		if err := runBackfill(context.Background(), &out, &errOut, f); err != nil {
			t.Fatalf("backfill (act %v): %v\n%s\n%s", act, err, out.String(), errOut.String())
		}
		return out.String()
	}
	noticeCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(notices)
	}

	out := run(false)
	for _, id := range []string{"ListedAsStoredxxxxxxxxxx", "RotatedBehindExifxxxxxxx", "InaPdfxxxxxxxxxxxxxxxxxx"} {
		if !strings.Contains(out, "mxc://hs.example/"+id) {
			t.Errorf("dry run does not report %s:\n%s", id, out)
		}
	}
	if strings.Contains(out, "CleanJpeg") {
		t.Errorf("dry run reports the clean picture:\n%s", out)
	}
	if n := len(quarantineCalls(admin)); n != 0 || noticeCount() != 0 {
		t.Fatalf("a dry run acted: %d quarantines, %d notices", n, noticeCount())
	}

	run(true)
	testkit.Eventually(t, "three quarantines and three notices", func() bool {
		return len(quarantineCalls(admin)) == 3 && noticeCount() == 3
	})
	for _, c := range quarantineCalls(admin) {
		if !strings.HasPrefix(c, "/_synapse/admin/v1/media/quarantine/hs.example/") || !strings.Contains(c, "Bearer admin-secret") {
			t.Errorf("quarantine call %q", c)
		}
	}
	mu.Lock()
	for _, n := range notices {
		if !strings.Contains(n, "backfill of the homeserver") || !strings.Contains(n, "stored media now matches TEST") {
			t.Errorf("notice does not say a backfill found stored media: %s", n)
		}
	}
	mu.Unlock()

	run(true)
	time.Sleep(300 * time.Millisecond)
	if n := len(quarantineCalls(admin)); n != 3 || noticeCount() != 3 {
		t.Fatalf("a second --act run acted again: %d quarantines, %d notices", n, noticeCount())
	}
}
