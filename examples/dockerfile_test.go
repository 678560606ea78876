package examples

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mediaguard/mediaguard/internal/deploycheck"
)

const dockerfilePath = "docker/Dockerfile"

// copyDest returns the destination of the final stage's COPY of src
// (a path relative to the build context, the repository root).
func copyDest(t *testing.T, final []deploycheck.Instruction, src string) (deploycheck.Instruction, string) {
	t.Helper()
	for _, in := range deploycheck.Find(final, "COPY") {
		if len(in.Args) == 2 && strings.TrimSuffix(in.Args[0], "/") == strings.TrimSuffix(src, "/") {
			return in, in.Args[1]
		}
	}
	t.Fatalf("%s: the final stage copies no %s", dockerfilePath, src)
	return deploycheck.Instruction{}, ""
}

// The image is what the Dockerfile says: an empty base with a static
// bin/caddy, run as an unprivileged user, its entry point the binary it
// copies, its command the Caddyfile it copies, its state directory owned
// by that user and declared a volume.
func TestDockerfile(t *testing.T) {
	ins, err := deploycheck.Dockerfile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	final := deploycheck.Final(ins)
	if from := final[0]; len(from.Args) == 0 || from.Args[0] != "scratch" {
		t.Fatalf("final stage FROM %v, want scratch: nothing to pull, nothing but the binary", from.Args)
	}
	// Every COPY source exists in the build context (the repository
	// root) or is bin/caddy, which `make build` writes.
	for _, in := range deploycheck.Find(final, "COPY") {
		if _, from := in.Flags["from"]; from {
			t.Errorf("line %d: COPY --from: the final stage copies from the build context only", in.Line)
			continue
		}
		if len(in.Args) != 2 {
			t.Errorf("line %d: COPY %v: want one source and one destination", in.Line, in.Args)
			continue
		}
		if in.Args[0] == "bin/caddy" {
			continue
		}
		if _, err := os.Stat(filepath.Join(repo, in.Args[0])); err != nil {
			t.Errorf("line %d: COPY source %s: %v", in.Line, in.Args[0], err)
		}
	}
	_, binary := copyDest(t, final, "bin/caddy")
	_, caddyfile := copyDest(t, final, "examples/docker/Caddyfile")
	state, stateDir := copyDest(t, final, "examples/docker/state/")

	entry := deploycheck.Find(final, "ENTRYPOINT")
	if len(entry) != 1 || !entry[0].JSON || len(entry[0].Args) == 0 || entry[0].Args[0] != binary {
		t.Errorf("ENTRYPOINT %v: want the exec form running %s (there is no shell to run the other)", entry, binary)
	}
	cmd := deploycheck.Find(final, "CMD")
	if len(cmd) != 1 || !cmd[0].JSON {
		t.Fatalf("CMD %v: want one, in the exec form", cmd)
	}
	args := cmd[0].Args
	if i := slices.Index(args, "--config"); len(args) == 0 || args[0] != "run" || i < 0 || i+1 >= len(args) || args[i+1] != caddyfile {
		t.Errorf("CMD %v: want `run --config %s`", args, caddyfile)
	}
	if i := slices.Index(args, "--adapter"); i < 0 || i+1 >= len(args) || args[i+1] != "caddyfile" {
		t.Errorf("CMD %v: want --adapter caddyfile", args)
	}

	user := deploycheck.Find(final, "USER")
	if len(user) != 1 || len(user[0].Args) != 1 {
		t.Fatalf("USER %v: want one", user)
	}
	uid, _, _ := strings.Cut(user[0].Args[0], ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("USER %s: want a numeric unprivileged user (an empty image has no /etc/passwd to look a name up in)", user[0].Args[0])
	}
	if got := state.Flags["chown"]; got != user[0].Args[0] {
		t.Errorf("the state directory is COPY --chown=%s, the image runs as %s: it could not write there", got, user[0].Args[0])
	}
	volume := deploycheck.Find(final, "VOLUME")
	if len(volume) != 1 || len(volume[0].Args) != 1 || strings.TrimSuffix(volume[0].Args[0], "/") != strings.TrimSuffix(stateDir, "/") {
		t.Errorf("VOLUME %v: want the state directory %s", volume, stateDir)
	}
	// Caddy's data and config (certificates, autosave.json) must land
	// on that volume, not in an unwritable $HOME.
	env := map[string]string{}
	for _, in := range deploycheck.Find(final, "ENV") {
		for _, kv := range in.Args {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	for _, k := range []string{"XDG_DATA_HOME", "XDG_CONFIG_HOME"} {
		if !strings.HasPrefix(env[k]+"/", strings.TrimSuffix(stateDir, "/")+"/") {
			t.Errorf("ENV %s=%q: want it under the state directory %s", k, env[k], stateDir)
		}
	}
	if len(exposedPorts(t)) == 0 {
		t.Error("no EXPOSE")
	}
}

// exposedPorts returns the Dockerfile's EXPOSE entries (80, 443/udp ...).
func exposedPorts(t *testing.T) []string {
	t.Helper()
	ins, err := deploycheck.Dockerfile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	var ports []string
	for _, in := range deploycheck.Find(deploycheck.Final(ins), "EXPOSE") {
		ports = append(ports, in.Args...)
	}
	return ports
}
