// Package e2e runs a real Matrix homeserver, Dendrite v0.13.8, for
// end-to-end tests: StartDendrite launches one per test on a free loopback
// port with its data in t.TempDir(), RegisterUser makes users through the
// Synapse-compatible shared-secret API, and the User helpers upload,
// download, create rooms and send/read messages. Every helper that touches
// media takes a base URL, so a test can aim it at a proxy (Caddy with
// mediaguard) in front of the homeserver instead of the homeserver itself.
//
// The helpers take a T, which testing.TB satisfies; cmd/mgdemo (make demo)
// drives the same homeserver outside go test through its own T.
//
// The binaries come from scripts/install-dendrite.sh. Where they are missing
// the tests skip with a loud message, unless MEDIAGUARD_REQUIRE_E2E=1 (CI),
// which turns the skip into a failure. They also skip under -short unless
// that variable is set.
//
// What Dendrite lacks compared with Synapse (async upload, preview_url, the
// media admin API, HEAD and Range on downloads) has to be tested against an
// httptest fake instead: internal/fakes.Synapse.
package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/testkit"
)

// DendriteVersion is the release scripts/install-dendrite.sh installs and
// this harness is written against.
const DendriteVersion = "v0.13.8"

// RequireEnv, set to 1, makes missing binaries a test failure instead of a
// skip (and runs the end-to-end tests under -short too). CI sets it.
const RequireEnv = "MEDIAGUARD_REQUIRE_E2E"

// MaxUploadBytes is the homeserver's max_file_size_bytes (Dendrite's default
// is 10 MB).
const MaxUploadBytes = 100 << 20

// readyTimeout bounds how long StartDendrite waits for the client API.
const readyTimeout = 30 * time.Second

// Dendrite is one running homeserver, stopped by the test's cleanup.
type Dendrite struct {
	URL        string        // client API base, http://127.0.0.1:PORT (no trailing slash)
	ServerName string        // "localhost": user IDs are @name:localhost, media mxc://localhost/ID
	Dir        string        // data directory: config, keys, SQLite databases, media
	LogPath    string        // Dendrite's stdout+stderr
	Startup    time.Duration // from process start to the first 200 from /_matrix/client/versions

	secret string // registration_shared_secret
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
}

// binaries are the three Dendrite commands the harness runs.
var binaries = []string{"dendrite", "generate-keys", "generate-config"}

// FindDendrite returns the first directory holding all the Dendrite
// binaries the harness runs: the DENDRITE_BIN directory, then each PATH
// entry, then $(go env GOPATH)/bin; "" when none does. It also returns
// every directory it looked in, for the message saying so.
func FindDendrite() (dir string, looked []string) {
	var dirs []string
	if d := os.Getenv("DENDRITE_BIN"); d != "" {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, filepath.SplitList(os.Getenv("PATH"))...)
	if gp := goPath(); gp != "" {
		dirs = append(dirs, filepath.Join(gp, "bin"))
	}
	for _, d := range dirs {
		ok := d != ""
		for _, b := range binaries {
			if st, err := os.Stat(filepath.Join(d, b)); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
				ok = false
				break
			}
		}
		if ok {
			return d, dirs
		}
	}
	return "", dirs
}

// goPath is $(go env GOPATH), falling back to $GOPATH and then ~/go.
func goPath() string {
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		if first := strings.SplitN(strings.TrimSpace(string(out)), string(os.PathListSeparator), 2)[0]; first != "" {
			return first
		}
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		return filepath.SplitList(gp)[0]
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, "go")
	}
	return ""
}

func required() bool { return os.Getenv(RequireEnv) == "1" }

// T is what the harness needs of its caller: testing.TB has all of it,
// and so does the runner of cmd/mgdemo, which starts the same homeserver
// outside go test. Fatal, Fatalf, Skip and Skipf must not return.
type T interface {
	Helper()
	Logf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Skip(args ...any)
	Skipf(format string, args ...any)
	Cleanup(func())
	TempDir() string
	Failed() bool
}

// RequireDendrite returns the directory holding the Dendrite binaries. It
// skips t (fails it when MEDIAGUARD_REQUIRE_E2E=1) if they are not
// installed, and, in go test, skips it under -short. A test that needs
// Dendrite only through something else (cmd/mgdemo's check) calls it
// first, to skip loudly before doing any other work.
func RequireDendrite(t T) string {
	t.Helper()
	// testing.Short panics outside a test binary; a command is never short.
	if testing.Testing() && testing.Short() && !required() {
		t.Skipf("e2e: skipping the Dendrite end-to-end test in -short mode (set %s=1 to run it)", RequireEnv)
	}
	bin, looked := FindDendrite()
	if bin == "" {
		SkipOrFail(t, "e2e: Dendrite "+DendriteVersion+" binaries NOT FOUND: end-to-end test not run",
			"install them with:  scripts/install-dendrite.sh   (Go + gcc, ~3 min)\n"+
				"needs "+strings.Join(binaries, ", ")+" in one directory; looked in $DENDRITE_BIN, $PATH, $(go env GOPATH)/bin:\n"+
				strings.Join(looked, string(os.PathListSeparator)))
	}

	if out, err := exec.Command(filepath.Join(bin, "dendrite"), "-version").Output(); err != nil || "v"+strings.TrimSpace(string(out)) != DendriteVersion {
		t.Logf("e2e: WARNING: %s/dendrite -version says %q (%v), the harness expects %s; rerun scripts/install-dendrite.sh",
			bin, strings.TrimSpace(string(out)), err, DendriteVersion)
	}
	return bin
}

// StartDendrite starts a fresh homeserver for t and stops it when t ends
// (SIGTERM, then SIGKILL after 10 s). It skips t (fails it when
// MEDIAGUARD_REQUIRE_E2E=1) if the binaries are not installed, and skips it
// under -short.
func StartDendrite(t T) *Dendrite {
	t.Helper()
	bin := RequireDendrite(t)

	dir := t.TempDir()
	d := &Dendrite{ServerName: "localhost", Dir: dir, LogPath: filepath.Join(dir, "dendrite.log")}
	d.secret = "e2e-" + RandomHex(t, 16)

	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("e2e: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	keyPath := filepath.Join(dir, "matrix_key.pem")
	run("generate-keys", "-private-key", keyPath)

	gen := exec.Command(filepath.Join(bin, "generate-config"), "-ci", "-dir", dir, "-server", d.ServerName)
	gen.Dir = dir
	var genErr bytes.Buffer
	gen.Stderr = &genErr
	yaml, err := gen.Output()
	if err != nil {
		t.Fatalf("e2e: generate-config: %v\n%s", err, genErr.Bytes())
	}
	// generate-config -ci already puts the SQLite files, media and the
	// JetStream store under dir and turns rate limiting off; adjust the rest.
	yaml, err = setYAML(yaml, map[string]string{
		"global.private_key":                    keyPath,
		"global.disable_federation":             "true",
		"global.presence.enable_outbound":       "false", // no federation to tell
		"global.server_notices.enabled":         "false", // one less user and room at startup
		"client_api.registration_disabled":      "true",  // else Dendrite demands -really-enable-open-registration; shared-secret registration still works
		"client_api.registration_shared_secret": d.secret,
		"client_api.rate_limiting.enabled":      "false",
		"media_api.base_path":                   filepath.Join(dir, "media"),
		"media_api.max_file_size_bytes":         fmt.Sprint(MaxUploadBytes),
		"media_api.dynamic_thumbnails":          "true", // like Synapse: any requested size
		"sync_api.search.enabled":               "false",
		"logging.level":                         "info", // -ci sets trace: megabytes per test
	})
	if err != nil {
		t.Fatalf("e2e: adjusting generate-config output (did Dendrite's config format change?): %v", err)
	}
	cfgPath := filepath.Join(dir, "dendrite.yaml")
	if err := os.WriteFile(cfgPath, yaml, 0o600); err != nil {
		t.Fatalf("e2e: %v", err)
	}

	// Pick a free port, release it and hand it to Dendrite; retry if another
	// process grabbed it in between.
	start := time.Now()
	for attempt := 1; ; attempt++ {
		port, err := testkit.Port()
		if err != nil {
			t.Fatalf("e2e: finding a free port: %v", err)
		}
		err = d.launch(t, filepath.Join(bin, "dendrite"), cfgPath, port)
		if err == nil {
			break
		}
		if errors.Is(err, errAddrInUse) && attempt < 3 {
			t.Logf("e2e: %v; retrying on another port", err)
			continue
		}
		d.dumpLog(t, 80)
		t.Fatalf("e2e: Dendrite did not start: %v", err)
	}
	d.Startup = time.Since(start)
	t.Logf("e2e: Dendrite %s ready at %s in %v (data %s)", DendriteVersion, d.URL, d.Startup.Round(time.Millisecond), dir)
	return d
}

var errAddrInUse = errors.New("port already in use")

// launch starts the process on port and waits until the client API answers.
// On failure the process is gone and the log is left for dumpLog.
func (d *Dendrite) launch(t T, exe, cfgPath string, port int) error {
	t.Helper()
	logf, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(exe, "-config", cfgPath, "-http-bind-address", addr, "-https-bind-address", "")
	cmd.Dir = d.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	SetParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", exe, err)
	}
	exited := make(chan struct{})
	var waitErr error // written before exited is closed
	go func() {
		waitErr = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	d.URL, d.cmd, d.exited = "http://"+addr, cmd, exited

	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-exited:
			err := waitErr
			if log, _ := os.ReadFile(d.LogPath); bytes.Contains(log, []byte("address already in use")) {
				return fmt.Errorf("%s: %w", addr, errAddrInUse)
			}
			return fmt.Errorf("dendrite exited during startup (%v); log %s", err, d.LogPath)
		case <-time.After(100 * time.Millisecond):
		}
		if resp, err := client.Get(d.URL + "/_matrix/client/versions"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			d.stop(t)
			return fmt.Errorf("no 200 from %s/_matrix/client/versions within %v", d.URL, readyTimeout)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			d.dumpLog(t, 40)
		}
		d.stop(t)
	})
	return nil
}

// stop sends SIGTERM, waits up to 10 s, then kills.
func (d *Dendrite) stop(t T) {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		t.Logf("e2e: Dendrite ignored SIGTERM for 10s; killing it")
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

// dumpLog logs the last n lines of Dendrite's log.
func (d *Dendrite) dumpLog(t T, n int) {
	t.Helper()
	t.Logf("e2e: last %d lines of %s:\n%s", n, d.LogPath, d.LogTail(n))
}

// LogTail returns the last n lines of Dendrite's log, for assertions or
// failure messages.
func (d *Dendrite) LogTail(n int) string { return FileTail(d.LogPath, n) }

// FileTail returns the last n lines of the file at path (a process's log).
func FileTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// RandomHex returns n random bytes in hex (secrets, passwords).
func RandomHex(t T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("e2e: %v", err)
	}
	return hex.EncodeToString(b)
}
