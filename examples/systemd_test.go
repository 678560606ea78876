package examples

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mediaguard/mediaguard/internal/deploycheck"
	"github.com/mediaguard/mediaguard/internal/e2e"
)

const (
	servicePath = "systemd/mediaguard.service"
	socketPath  = "systemd/mediaguard.socket"
	unitBinary  = "/usr/local/bin/caddy"
)

// installedUnits copies the two units into a temporary directory with
// ExecStart's binary replaced by one that exists here (systemd-analyze
// verify checks that it does), and returns their paths.
func installedUnits(t *testing.T) (service, socket string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, p := range []string{servicePath, socketPath} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if p == servicePath {
			if !strings.Contains(s, "ExecStart="+unitBinary+" ") {
				t.Fatalf("%s: ExecStart does not run %s", p, unitBinary)
			}
			s = strings.ReplaceAll(s, unitBinary, self)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, filepath.Base(servicePath)), filepath.Join(dir, filepath.Base(socketPath))
}

func systemdAnalyze(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		e2e.SkipOrFail(t, "systemd-analyze not found: the systemd units were not verified",
			"install it with: apt-get install systemd   (.ci/run does)")
	}
	return bin
}

// systemd itself accepts both units: `systemd-analyze verify` loads them
// as the service manager would. It exits 0 on an unknown key or a value it
// cannot parse (it only warns, and ignores the line), so any output at all
// fails the test.
func TestSystemdUnitsVerify(t *testing.T) {
	bin := systemdAnalyze(t)
	service, socket := installedUnits(t)
	cmd := exec.Command(bin, "verify", socket, service)
	cmd.Dir = filepath.Dir(service)
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// systemd's own exposure score for the service, from its unit file alone
// (--offline): 1.4 when written; fail past 2.0 ("OK" is up to 4.9).
func TestSystemdExposure(t *testing.T) {
	bin := systemdAnalyze(t)
	service, _ := installedUnits(t)
	cmd := exec.Command(bin, "security", "--offline=true", "--threshold=20", "--no-pager", service)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: exposure over 2.0 or an error: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	t.Log(lines[len(lines)-1])
}

// The hardening the deployment promises is in the unit: checked
// directive by directive, since systemd ignores a line it cannot parse.
func TestSystemdHardening(t *testing.T) {
	u, err := deploycheck.ReadUnit(servicePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key, want, why string
	}{
		{"DynamicUser", "yes", "a fresh unprivileged user, no account to manage"},
		{"ProtectSystem", "strict", "the whole file system read-only but ReadWritePaths"},
		{"NoNewPrivileges", "yes", "no setuid escalation from the process or its hashing workers"},
		{"CapabilityBoundingSet", "", "the empty set: no capabilities at all"},
		{"AmbientCapabilities", "", "none handed to the process"},
		{"PrivateTmp", "yes", "uploads never land in a shared /tmp"},
		{"ProtectHome", "yes", "no access to home directories"},
		{"PrivateDevices", "yes", "no device nodes"},
		{"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX", "only the sockets it uses"},
		{"SystemCallFilter", "~@privileged", "no privileged system calls"},
		{"Type", "notify", "systemd knows when Caddy serves"},
	} {
		got, ok := u.Get("Service", tc.key)
		if !ok || got != tc.want {
			t.Errorf("%s=%q (set: %v), want %q: %s", tc.key, got, ok, tc.want, tc.why)
		}
	}
	if v, ok := u.Get("Service", "MemoryMax"); !ok || v == "" || v == "infinity" {
		t.Errorf("MemoryMax=%q: want a limit for the proxy and its hashing workers", v)
	}
	// The WebAssembly AVIF/HEIC decoders (wazero's compiler) map the code
	// they generate executable: W^X would make every such image
	// undecodable, and refused.
	if v, ok := u.Get("Service", "MemoryDenyWriteExecute"); ok && v != "no" {
		t.Errorf("MemoryDenyWriteExecute=%s would break the AVIF and HEIC decoders", v)
	}
	// The hashing workers lower themselves to SCHED_IDLE
	// (sched_setscheduler, in @resources); a filter without it would
	// leave them competing with the proxy for the CPU.
	if f := u.Words("Service", "SystemCallFilter"); slices.Contains(f, "~@resources") {
		t.Error("SystemCallFilter=~@resources would stop the hashing workers' SCHED_IDLE")
	}

	// Writable: exactly the state directories it creates, and those
	// include every ReadWritePaths entry (otherwise the path would not
	// exist at the first start and systemd would refuse it).
	rw := u.Words("Service", "ReadWritePaths")
	if len(rw) == 0 {
		t.Fatal("no ReadWritePaths: the audit log and the spool could not be written")
	}
	state := map[string]bool{}
	for _, d := range u.Words("Service", "StateDirectory") {
		state["/var/lib/"+d] = true
	}
	for _, p := range rw {
		if !state[p] {
			t.Errorf("ReadWritePaths %s is not a StateDirectory: it would not exist (or belong to the dynamic user) at the first start", p)
		}
	}

	// The socket unit is the one the service requires, and the service
	// takes its ExecStart from the binary the README installs.
	if v := u.Words("Unit", "Requires"); !slices.Contains(v, filepath.Base(socketPath)) {
		t.Errorf("Requires=%v: want %s (the listening sockets)", v, filepath.Base(socketPath))
	}
	sock, err := deploycheck.ReadUnit(socketPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range sock.Words("Socket", "ListenStream") {
		if !strings.HasPrefix(l, "127.0.0.1:") && !strings.HasPrefix(l, "[::1]:") {
			t.Errorf("ListenStream=%s: the service sits behind the TLS front on this host; loopback only", l)
		}
	}
}
