package examples

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

const (
	composePath          = "docker/compose.yaml"
	composeCaddyfilePath = "docker/Caddyfile"
)

// required matches a Compose value taken from the environment and
// required there: ${NAME:?message}.
var required = regexp.MustCompile(`^\$\{([A-Z_][A-Z0-9_]*):\?[^}]+\}$`)

// requiredVars are the variables compose.yaml requires (${NAME:?...}).
func requiredVars(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*):\?`).FindAllStringSubmatch(string(raw), -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// loadCompose loads compose.yaml with Compose's own loader
// (github.com/compose-spec/compose-go, which `docker compose` runs):
// schema validation, interpolation of env (nil: none, values kept as
// written) and normalisation.
func loadCompose(t *testing.T, env map[string]string) (*types.Project, error) {
	t.Helper()
	abs := mustAbs(t, composePath)
	opts := []func(*loader.Options){func(o *loader.Options) { o.SetProjectName("matrix", true) }}
	if env == nil {
		opts = append(opts, func(o *loader.Options) { o.SkipInterpolation = true })
	}
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs}},
		Environment: env,
	}, opts...)
}

// caddyfileVars returns the environment variables a Caddyfile reads, by
// kind: {env.X} (read at run time: secrets) and {$X} (read when adapted).
func caddyfileVars(t *testing.T, path string) (runtime, adapt []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, m := range regexp.MustCompile(`\{env\.([A-Za-z_][A-Za-z0-9_]*)\}`).FindAllStringSubmatch(line, -1) {
			runtime = append(runtime, m[1])
		}
		for _, m := range regexp.MustCompile(`\{\$([A-Za-z_][A-Za-z0-9_]*)[:}]`).FindAllStringSubmatch(line, -1) {
			adapt = append(adapt, m[1])
		}
	}
	return runtime, adapt
}

// Compose's loader accepts compose.yaml once every required variable is
// set, and refuses it, naming the variable, while one is missing: an
// unset secret stops `docker compose up` before anything starts.
func TestComposeLoads(t *testing.T) {
	vars := requiredVars(t)
	if len(vars) == 0 {
		t.Fatal("compose.yaml requires no variable from .env")
	}
	env := map[string]string{}
	for _, v := range vars {
		env[v] = "test-value"
	}
	if _, err := loadCompose(t, env); err != nil {
		t.Fatalf("compose.yaml with every variable set: %v", err)
	}
	for _, v := range vars {
		partial := map[string]string{}
		for k, val := range env {
			if k != v {
				partial[k] = val
			}
		}
		if _, err := loadCompose(t, partial); err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("compose.yaml without %s: %v, want an error naming it", v, err)
		}
	}
}

// The Compose file puts the four services together with mediaguard as
// the only way in: it alone publishes ports, and exactly the ones its
// image exposes; Synapse publishes none, so its media paths are reachable
// from outside only through mediaguard. mediaguard is built from the
// Dockerfile beside it, its secrets come from the environment, and it runs
// read-only with no capabilities.
func TestComposeFile(t *testing.T) {
	p, err := loadCompose(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"synapse", "postgres", "mediaguard", "mjolnir"} {
		if _, ok := p.Services[s]; !ok {
			t.Errorf("no service %q", s)
		}
	}
	for name, s := range p.Services {
		if s.NetworkMode != "" {
			t.Errorf("%s: network_mode %q would bypass the published ports", name, s.NetworkMode)
		}
		if name != "mediaguard" && len(s.Ports) > 0 {
			t.Errorf("%s publishes %v: only mediaguard may be reachable from outside", name, s.Ports)
		}
		if s.Privileged || len(s.CapAdd) > 0 {
			t.Errorf("%s: privileged or cap_add", name)
		}
	}
	mg := p.Services["mediaguard"]
	if mg.Build == nil {
		t.Fatal("mediaguard has no build section")
	}
	if mg.Build.Context != mustAbs(t, repo) {
		t.Errorf("mediaguard's build context %s is not the repository root (the Dockerfile copies bin/caddy)", mg.Build.Context)
	}
	if df := filepath.Join(mg.Build.Context, mg.Build.Dockerfile); df != mustAbs(t, dockerfilePath) {
		t.Errorf("mediaguard is built from %s, not %s", df, dockerfilePath)
	}

	// Published ports are the image's exposed ones, on the same numbers.
	var published []string
	for _, port := range mg.Ports {
		target := strconv.Itoa(int(port.Target))
		if port.Published != target {
			t.Errorf("port %s published as %s: the Caddyfile's sites and redirects assume the same number", target, port.Published)
		}
		if port.Protocol != "" && port.Protocol != "tcp" {
			target += "/" + port.Protocol
		}
		published = append(published, target)
	}
	exposed := exposedPorts(t)
	slices.Sort(published)
	slices.Sort(exposed)
	if !slices.Equal(published, exposed) {
		t.Errorf("mediaguard publishes %v, the image exposes %v", published, exposed)
	}

	// Every variable the Caddyfile reads is in mediaguard's environment,
	// required from .env; every secret there is required from .env too,
	// never written in the file.
	runtime, adapt := caddyfileVars(t, composeCaddyfilePath)
	if len(runtime) == 0 {
		t.Fatalf("%s reads no {env.X} secrets", composeCaddyfilePath)
	}
	value := func(env types.MappingWithEquals, k string) string {
		if v := env[k]; v != nil {
			return *v
		}
		return ""
	}
	for _, v := range append(runtime, adapt...) {
		if _, ok := mg.Environment[v]; !ok {
			t.Errorf("the Caddyfile reads %s, which mediaguard's environment lacks", v)
		} else if !required.MatchString(value(mg.Environment, v)) {
			t.Errorf("mediaguard's %s is %q: want ${%s:?...}, required from .env", v, value(mg.Environment, v), v)
		}
	}
	for name, s := range p.Services {
		for k := range s.Environment {
			if strings.Contains(k, "TOKEN") || strings.Contains(k, "KEY") || strings.Contains(k, "PASSWORD") {
				if !required.MatchString(value(s.Environment, k)) {
					t.Errorf("%s: secret %s is written in the Compose file: %q", name, k, value(s.Environment, k))
				}
			}
		}
	}

	// Least privilege.
	if !mg.ReadOnly {
		t.Error("mediaguard: want read_only: true (it writes only to its volume)")
	}
	if !slices.Contains(mg.CapDrop, "ALL") {
		t.Errorf("mediaguard cap_drop %v: want ALL", mg.CapDrop)
	}
	if !slices.Contains(mg.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("mediaguard security_opt %v: want no-new-privileges:true", mg.SecurityOpt)
	}
	if mg.MemLimit == 0 {
		t.Error("mediaguard: no mem_limit")
	}

	// Its state is a named volume at the image's VOLUME; the banks are
	// mounted read-only where the Caddyfile reads them.
	caddyfile, err := os.ReadFile(composeCaddyfilePath)
	if err != nil {
		t.Fatal(err)
	}
	var state, banks bool
	for _, v := range mg.Volumes {
		switch {
		case v.Target == "/var/lib/mediaguard":
			state = v.Type == types.VolumeTypeVolume
			if !state {
				t.Errorf("%s: want a named volume (it starts as a copy of the image's directory, owner included)", v.Target)
			}
		case strings.Contains(string(caddyfile), "bank LOCAL "+v.Target+"\n"):
			banks = true
			if !v.ReadOnly {
				t.Errorf("banks mount %s: want it read-only", v.Target)
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("banks mount: %v", err)
			}
		}
	}
	if !state || !banks {
		t.Errorf("mediaguard volumes %v: want the state volume at /var/lib/mediaguard and the banks directory the Caddyfile reads", mg.Volumes)
	}

	// example.env names every variable the Compose file requires.
	envExample, err := os.ReadFile(filepath.Join(filepath.Dir(composePath), "example.env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range requiredVars(t) {
		if !regexp.MustCompile(`(?m)^` + v + `=`).Match(envExample) {
			t.Errorf("compose.yaml requires %s, which example.env does not list", v)
		}
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// `docker compose config` parses the file as the installed Compose does,
// with every required variable set. It needs the compose plugin; CI does
// not install Docker, so this part skips loudly there too:
// TestComposeLoads runs the same loader (compose-go) everywhere.
func TestDockerComposeConfig(t *testing.T) {
	if out, err := exec.Command("docker", "compose", "version").CombinedOutput(); err != nil {
		t.Skipf("SKIPPED LOUDLY: `docker compose version` fails (%v: %s): compose.yaml was checked with Compose's loader library (TestComposeLoads), not with an installed `docker compose`. Install the Docker Compose plugin to run this too.", err, strings.TrimSpace(string(out)))
	}
	cmd := exec.Command("docker", "compose", "-f", "compose.yaml", "config", "--quiet")
	cmd.Dir = filepath.Dir(composePath)
	cmd.Env = os.Environ()
	for _, v := range requiredVars(t) {
		cmd.Env = append(cmd.Env, v+"=test-value")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker compose config: %v\n%s", err, out)
	}
}
