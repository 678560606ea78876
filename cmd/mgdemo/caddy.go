package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/mediaguard/mediaguard/internal/e2e"
)

// Secrets reach Caddy only through its environment, named as in
// Caddyfile.example; the Caddyfile holds {env.X} placeholders, which
// mediaguard resolves when it starts (an empty one stops the start).
const (
	botTokenEnv  = "MEDIAGUARD_BOT_TOKEN"
	lookupKeyEnv = "MEDIAGUARD_LOOKUP_KEY"
)

// caddyConfig is what the demo's Caddyfile is made of.
type caddyConfig struct {
	Bank       string // bank file path
	AuditLog   string // audit log path
	Homeserver string // Dendrite's client API, http://127.0.0.1:PORT
	Room       string // the management room, an alias or an ID
	Front      int    // port of the site in front of the homeserver
	Lookup     int    // port of the lookup API
}

// caddyfile renders c. Both sites are loopback only: a site address names
// the host to match, `bind` is what keeps the port off other interfaces.
// There is no admin endpoint (nothing to reconfigure, and no fixed port
// to collide with another Caddy on this machine) and no saved config.
func (c caddyConfig) caddyfile() string {
	hsHost := strings.TrimPrefix(c.Homeserver, "http://")
	return fmt.Sprintf(`# Written by mgdemo (make demo); removed when it stops.
{
	admin off
	persist_config off
	# Stopping waits this long at most for open requests (a client's
	# long-polling /sync through the front site).
	grace_period 2s

	mediaguard {
		# Edit the bank: changes are live within 2 seconds.
		bank DEMO %s
		audit_log %s
		# Name the uploader of blocked media (whoami with their own token).
		homeserver %s
		# Tell the moderators.
		notify matrix {
			homeserver %s
			access_token {env.%s}
			room %q
		}
	}
}

http://127.0.0.1:%d {
	bind 127.0.0.1
	mediaguard
	reverse_proxy %s
}

http://127.0.0.1:%d {
	bind 127.0.0.1
	mediaguard_lookup {
		api_key {env.%s}
	}
}
`, c.Bank, c.AuditLog, c.Homeserver, c.Homeserver, botTokenEnv, c.Room, c.Front, hsHost, c.Lookup, lookupKeyEnv)
}

// caddyProc is a running bin/caddy.
type caddyProc struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed once the process has exited
}

// startCaddy runs bin with the Caddyfile at cfPath, its output appended to
// logPath, its state (autosave, certificates: none here) under dir rather
// than the user's, and env added to its environment.
func startCaddy(bin, cfPath, dir, logPath string, env []string) (*caddyProc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", cfPath, "--adapter", "caddyfile")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	cmd.Env = append(cmd.Env, env...) // the last of duplicate keys wins
	e2e.SetParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	c := &caddyProc{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		logf.Close()
		close(c.exited)
	}()
	return c, nil
}

// waitReady polls each URL (with the bearer token when one is given) until
// it answers 200, Caddy exits, or limit passes.
func (c *caddyProc) waitReady(limit time.Duration, urls map[string]string) error {
	deadline := time.Now().Add(limit)
	for url, token := range urls {
		for {
			select {
			case <-c.exited:
				return errors.New("caddy exited at start")
			default:
			}
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			if resp, err := httpClient.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("no 200 from %s within %v", url, limit)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// stop interrupts Caddy (a graceful stop, like Ctrl-C) and kills it if it
// has not exited within 10 s.
func (c *caddyProc) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// addrInUse reports whether Caddy's log says a port was taken.
func (c *caddyProc) addrInUse() bool {
	b, _ := os.ReadFile(c.logPath)
	return strings.Contains(string(b), "address already in use")
}
