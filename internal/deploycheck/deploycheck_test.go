package deploycheck

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func write(t *testing.T, name, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDockerfile(t *testing.T) {
	p := write(t, "Dockerfile", `# syntax=docker/dockerfile:1
FROM golang AS build
RUN go build \
    ./x
FROM scratch
COPY --from=build --chown=1:2 /a /b
ENTRYPOINT ["/b", "run"]
EXPOSE 80 443/udp
`)
	ins, err := Dockerfile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		i     int
		cmd   string
		args  []string
		json  bool
		stage int
		flags map[string]string
		line  int
	}{
		{0, "FROM", []string{"golang", "AS", "build"}, false, 0, nil, 2},
		{1, "RUN", []string{"go", "build", "./x"}, false, 0, nil, 3},
		{2, "FROM", []string{"scratch"}, false, 1, nil, 5},
		{3, "COPY", []string{"/a", "/b"}, false, 1, map[string]string{"from": "build", "chown": "1:2"}, 6},
		{4, "ENTRYPOINT", []string{"/b", "run"}, true, 1, nil, 7},
		{5, "EXPOSE", []string{"80", "443/udp"}, false, 1, nil, 8},
	} {
		in := ins[tc.i]
		if in.Cmd != tc.cmd || !slices.Equal(in.Args, tc.args) || in.JSON != tc.json || in.Stage != tc.stage || in.Line != tc.line {
			t.Errorf("%d: %+v, want %s %v json=%v stage=%d line=%d", tc.i, in, tc.cmd, tc.args, tc.json, tc.stage, tc.line)
		}
		for k, v := range tc.flags {
			if in.Flags[k] != v {
				t.Errorf("%d: flag %s=%q, want %q", tc.i, k, in.Flags[k], v)
			}
		}
	}
	if f := Final(ins); len(f) != 4 || f[0].Args[0] != "scratch" {
		t.Errorf("Final: %+v", f)
	}
	if _, err := Dockerfile(write(t, "bad", "RUN x\n")); err == nil {
		t.Error("an instruction before FROM was accepted")
	}
}

func TestUnit(t *testing.T) {
	p := write(t, "x.service", `[Unit]
Requires=a.socket
[Service]
# comment
ReadWritePaths=/a /b
ReadWritePaths=/c
CapabilityBoundingSet=
Environment=A=1 B=2
ListenStream=1
ListenStream=
ListenStream=2
`)
	u, err := ReadUnit(p)
	if err != nil {
		t.Fatal(err)
	}
	if w := u.Words("Service", "ReadWritePaths"); !slices.Equal(w, []string{"/a", "/b", "/c"}) {
		t.Errorf("ReadWritePaths %v", w)
	}
	if v, ok := u.Get("Service", "CapabilityBoundingSet"); !ok || v != "" {
		t.Errorf("an empty assignment: %q %v, want set and empty", v, ok)
	}
	if _, ok := u.Get("Service", "NoNewPrivileges"); ok {
		t.Error("an unset key reads as set")
	}
	if w := u.Words("Service", "ListenStream"); !slices.Equal(w, []string{"2"}) {
		t.Errorf("an empty assignment resets the list: %v", w)
	}
	if v, _ := u.Get("Service", "Environment"); v != "A=1 B=2" {
		t.Errorf("Environment %q", v)
	}
}
