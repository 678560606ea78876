// Package harness is what the bench commands (mgbench, mgload) share to
// run mediaguard inside a real Caddy on loopback: the Caddyfile with a
// plain and a guarded site, starting and stopping bin/caddy, waiting for it
// to answer, writing bank files, serving an in-process upstream, and
// reading a process's memory, open files and children from /proc.
package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mediaguard/mediaguard/internal/testkit"
)

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) { return testkit.Port() }

// Caddyfile is the configuration the bench commands run: a global
// mediaguard block, a plain reverse_proxy site and a mediaguard +
// reverse_proxy site to the same upstream, and whatever further sites
// Extra holds.
type Caddyfile struct {
	Admin      string   // Caddy's admin endpoint: "off" or an address
	Mediaguard []string // the lines of the global mediaguard block
	Plain      int      // port of the plain site
	Guarded    int      // port of the mediaguard site
	Upstream   string   // host:port both sites proxy to
	Extra      string   // more site blocks, appended as they are
}

// String renders c in Caddyfile syntax.
func (c Caddyfile) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "{\n\tadmin %s\n\tmediaguard {\n", c.Admin)
	for _, l := range c.Mediaguard {
		fmt.Fprintf(&b, "\t\t%s\n", l)
	}
	fmt.Fprintf(&b, "\t}\n}\nhttp://127.0.0.1:%d {\n\treverse_proxy %s\n}\n", c.Plain, c.Upstream)
	fmt.Fprintf(&b, "http://127.0.0.1:%d {\n\tmediaguard\n\treverse_proxy %s\n}\n", c.Guarded, c.Upstream)
	b.WriteString(c.Extra)
	return b.String()
}

// Caddy is a running bin/caddy.
type Caddy struct {
	Cmd     *exec.Cmd
	PID     int
	LogPath string
	// Exited is closed when the process has exited.
	Exited <-chan struct{}
	logf   *os.File
}

// StartCaddy writes cf to dir/Caddyfile and runs bin with it, its output
// going to logPath. Caddy's autosave and storage go to dir, not the
// user's; env is added to the environment (GOMEMLIMIT and the like).
func StartCaddy(bin, dir string, cf Caddyfile, logPath string, env ...string) (*Caddy, error) {
	cfPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfPath, []byte(cf.String()), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", cfPath, "--adapter", "caddyfile")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	cmd.Env = append(cmd.Env, env...)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	return &Caddy{Cmd: cmd, PID: cmd.Process.Pid, LogPath: logPath, Exited: exited, logf: logf}, nil
}

// Stop interrupts Caddy, kills it if it has not exited within 5 s, and
// closes its log.
func (c *Caddy) Stop() {
	c.Cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.Exited:
	case <-time.After(5 * time.Second):
		c.Cmd.Process.Kill()
		<-c.Exited
	}
	c.logf.Close()
}

// WaitHealthy polls url with client every 100 ms until it answers 200,
// Caddy exits (exited closes; nil for never), ctx ends or limit passes.
func WaitHealthy(ctx context.Context, client *http.Client, url string, limit time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-exited:
			return errors.New("caddy exited at start; see its log")
		default:
		}
		if resp, err := client.Get(url); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("caddy did not become healthy in %v", limit)
}

// WriteBank writes a bank file at path with what fill writes.
func WriteBank(path string, fill func(w *bufio.Writer)) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fill(w)
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Serve serves h on a free loopback port and returns its host:port.
func Serve(h http.Handler) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	return l.Addr().String(), nil
}

// ProcKB reads a kB field (VmRSS, VmHWM) of /proc/PID/status; ok is false
// when the field cannot be read.
func ProcKB(pid int, key string) (kb int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, found := strings.CutPrefix(line, key+":"); found {
			if f := strings.Fields(v); len(f) > 0 {
				kb, _ := strconv.Atoi(f[0])
				return kb, true
			}
		}
	}
	return 0, false
}

// MB formats a size in kB as whole megabytes.
func MB(kb int) string { return fmt.Sprintf("%.0f MB", float64(kb)/1024) }

// Children are the process IDs of pid's children (mediaguard's hashing
// workers, for Caddy).
func Children(pid int) []int {
	var pids []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				pids = append(pids, n)
			}
		}
	}
	return pids
}

// ResetHWM restarts VmHWM (the peak RSS) at the current RSS, so each run's
// peak is its own. Failing that, the run's peak also covers earlier ones.
func ResetHWM(pid int) {
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// FDs counts pid's open file descriptors.
func FDs(pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	return len(names)
}

// CountFiles counts the files under dir.
func CountFiles(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// NProc is the number of processors /proc/cpuinfo lists.
func NProc() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

// CPUModel is the first "model name" of /proc/cpuinfo.
func CPUModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			_, m, _ := strings.Cut(v, ":")
			return m
		}
	}
	return "unknown CPU"
}
