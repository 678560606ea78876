package caddymodule

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/e2e"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// caddyProc is this test binary run as bin/caddy (see TestMain): a Caddy
// process of its own, for what one process cannot show (two instances
// side by side, a restart that forgets everything but the ledger). Each
// runs `caddy run` with a Caddyfile, as an operator would.
type caddyProc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	admin   string // the admin endpoint's host:port, where /metrics is
	exited  chan struct{}
}

// startCaddyProc writes caddyfile to dir/NAME.Caddyfile and runs Caddy
// with it, its output appended to dir/NAME.log (so a restart under the
// same name keeps one log), its state under dir, env added to its
// environment. admin is the Caddyfile's admin address. It is stopped
// when the test ends.
func startCaddyProc(t *testing.T, dir, name, admin, caddyfile string, env ...string) *caddyProc {
	t.Helper()
	cfPath := filepath.Join(dir, name+".Caddyfile")
	if err := os.WriteFile(cfPath, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	// Not os.Args[0]: caddytest overwrites os.Args when a test before this
	// one started Caddy in-process.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, name+".home")
	cmd := exec.Command(self, "run", "--config", cfPath, "--adapter", "caddyfile")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), caddyMainEnv+"=1", "XDG_DATA_HOME="+home, "XDG_CONFIG_HOME="+home)
	cmd.Env = append(cmd.Env, env...) // the last of duplicate keys wins
	// A test binary killed by its timeout must not leave Caddy behind.
	e2e.SetParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	p := &caddyProc{name: name, cmd: cmd, logPath: logPath, admin: admin, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	t.Cleanup(p.stop)
	return p
}

// waitReady polls url until it answers 200; Caddy exiting or 60 s
// passing fails the test with Caddy's log.
func (p *caddyProc) waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.exited:
			t.Fatalf("caddy %s exited at start:\n%s", p.name, p.log())
		default:
		}
		if resp, err := http.Get(url); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy %s: no 200 from %s within 60s:\n%s", p.name, url, p.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop interrupts Caddy, as Ctrl-C or systemd's stop does (a graceful
// stop: the ledger's queued records are written), and kills it after
// 20 s.
func (p *caddyProc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// log is Caddy's output so far.
func (p *caddyProc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// logSince is Caddy's output past offset (a len of an earlier log()).
func (p *caddyProc) logSince(offset int) string {
	return p.log()[offset:]
}

// metrics scrapes the process's /metrics (on its admin endpoint).
func (p *caddyProc) metrics(t *testing.T) map[string]float64 {
	t.Helper()
	return scrapeMetrics(t, "http://"+p.admin+"/metrics")
}

// linesWith are the lines of s that contain every one of parts.
func linesWith(s string, parts ...string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		ok := l != ""
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// startBotCaddy starts (or, given the process it replaces, restarts) a
// Caddy process whose management-room bot runs with token, and waits
// until it serves front and the bot follows its rooms: commands sent from
// then on are carried out.
func startBotCaddy(t *testing.T, prev *caddyProc, dir, admin, cf, front, token string) *caddyProc {
	t.Helper()
	offset := 0
	if prev != nil {
		offset = len(prev.log())
	}
	proc := startCaddyProc(t, dir, "caddy", admin, cf, "MEDIAGUARD_TEST_BOT_TOKEN="+token)
	proc.waitReady(t, front+"/_matrix/client/versions")
	testkit.EventuallyWithin(t, 30*time.Second, "the bot to follow its rooms", func() bool {
		return strings.Contains(proc.logSince(offset), "following the management room for commands")
	})
	return proc
}
