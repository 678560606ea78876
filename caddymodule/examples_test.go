package caddymodule

import (
	"encoding/json"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/mediaguard/mediaguard/internal/deploycheck"
)

// The deployment examples' Caddyfiles (examples/README.md). The files
// beside them (Dockerfile, systemd units, compose.yaml, nginx.conf) are
// checked on their own in package examples; here each Caddyfile is
// adapted through the mediaguard module and compared with them.
var exampleCaddyfiles = []struct {
	path string
	env  map[string]string // read when adapted: {$X}
}{
	{"../examples/docker/Caddyfile", map[string]string{"MATRIX_DOMAIN": "matrix.example.org", "MEDIAGUARD_ROOM": "#moderators:example.org"}},
	{"../examples/systemd/Caddyfile", nil},
	{"../examples/synapse-workers/Caddyfile", nil},
	{"../examples/tls-front/Caddyfile", nil},
}

// adapted is the part of an adapted config these tests read.
type adapted struct {
	Admin struct {
		Listen string `json:"listen"`
	} `json:"admin"`
	Apps struct {
		HTTP struct {
			Servers map[string]struct {
				Listen []string          `json:"listen"`
				Routes []json.RawMessage `json:"routes"`
			} `json:"servers"`
		} `json:"http"`
		Mediaguard *App `json:"mediaguard"`
	} `json:"apps"`
}

// step is one handler of a server's routes, in the order requests meet
// them, with the matchers of every route on the way to it.
type step struct {
	handler map[string]any
	match   []any
}

// flatten lists a route list's handlers in order, descending into
// subroutes.
func flatten(t *testing.T, routes []json.RawMessage, outer []any) []step {
	t.Helper()
	var out []step
	for _, raw := range routes {
		var r struct {
			Match  []any            `json:"match"`
			Handle []map[string]any `json:"handle"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		match := append(slices.Clone(outer), r.Match...)
		for _, h := range r.Handle {
			if h["handler"] == "subroute" {
				b, _ := json.Marshal(h["routes"])
				var sub []json.RawMessage
				json.Unmarshal(b, &sub)
				out = append(out, flatten(t, sub, match)...)
				continue
			}
			out = append(out, step{handler: h, match: match})
		}
	}
	return out
}

// adaptExample adapts one example Caddyfile, failing on any warning
// (Caddy warns, for instance, when a file is not `caddy fmt` formatted).
func adaptExample(t *testing.T, p string, env map[string]string) (adapted, map[string][]step) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	src, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	for _, w := range warnings {
		t.Errorf("%s: warning: %v", p, w)
	}
	var a adapted
	if err := json.Unmarshal(out, &a); err != nil {
		t.Fatal(err)
	}
	steps := map[string][]step{}
	for name, s := range a.Apps.HTTP.Servers {
		steps[name] = flatten(t, s.Routes, nil)
	}
	return a, steps
}

// serving returns the listen addresses of the servers that run handler.
func serving(a adapted, steps map[string][]step, handler string) []string {
	var out []string
	for name, s := range a.Apps.HTTP.Servers {
		for _, st := range steps[name] {
			if st.handler["handler"] == handler {
				out = append(out, s.Listen...)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// Every example Caddyfile adapts without a warning through the mediaguard
// module, takes its secrets from the environment, and serves the lookup
// API either on loopback only or behind a key.
func TestExampleCaddyfiles(t *testing.T) {
	for _, ex := range exampleCaddyfiles {
		t.Run(path.Base(path.Dir(ex.path)), func(t *testing.T) {
			a, steps := adaptExample(t, ex.path, ex.env)
			if mg := a.Apps.Mediaguard; mg != nil {
				secrets := map[string]string{}
				for _, h := range mg.HMA {
					secrets["hma api_key"] = h.APIKey
				}
				if n := mg.Notify; n != nil && n.Matrix != nil {
					secrets["notify access_token"] = n.Matrix.AccessToken
				}
				if sa := mg.SynapseAdmin; sa != nil {
					secrets["synapse_admin access_token"] = sa.AccessToken
				}
				for what, v := range secrets {
					if !regexp.MustCompile(`^\{env\.[A-Z_][A-Z0-9_]*\}$`).MatchString(v) {
						t.Errorf("%s is %q: want an {env.X} placeholder, never a secret in the file", what, v)
					}
				}
			}
			for name, s := range a.Apps.HTTP.Servers {
				for _, st := range steps[name] {
					if st.handler["handler"] != "mediaguard_lookup" {
						continue
					}
					key, _ := st.handler["api_key"].(string)
					loopback := true
					for _, l := range s.Listen {
						loopback = loopback && (strings.HasPrefix(l, "127.0.0.1:") || strings.HasPrefix(l, "fd/"))
					}
					if key == "" && !loopback {
						t.Errorf("server %s (%v) serves the lookup API off loopback without an api_key", name, s.Listen)
					}
					if key != "" && !strings.HasPrefix(key, "{env.") {
						t.Errorf("lookup api_key %q: want an {env.X} placeholder", key)
					}
				}
			}
		})
	}
}

// The container image exposes exactly what its Caddyfile serves to the
// outside: the public sites (with 80 for ACME and redirects, 443/udp for
// HTTP/3), not the lookup API, which stays on the Compose network; and
// everything mediaguard writes lies on the image's volume.
func TestExampleDockerMatchesCaddyfile(t *testing.T) {
	a, steps := adaptExample(t, exampleCaddyfiles[0].path, exampleCaddyfiles[0].env)
	ins, err := deploycheck.Dockerfile("../examples/docker/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	final := deploycheck.Final(ins)
	var exposed []string
	for _, in := range deploycheck.Find(final, "EXPOSE") {
		exposed = append(exposed, in.Args...)
	}
	port := func(l string) string { return l[strings.LastIndex(l, ":")+1:] }
	want := []string{"80"}
	for _, l := range serving(a, steps, "mediaguard") {
		want = append(want, port(l))
		if port(l) == "443" {
			want = append(want, "443/udp")
		}
	}
	slices.Sort(want)
	want = slices.Compact(want)
	slices.Sort(exposed)
	if !slices.Equal(exposed, want) {
		t.Errorf("the image exposes %v; its Caddyfile's public sites need %v", exposed, want)
	}
	for _, l := range serving(a, steps, "mediaguard_lookup") {
		if slices.Contains(exposed, port(l)) {
			t.Errorf("the lookup API's port %s is exposed: it is for Mjolnir on the Compose network only", port(l))
		}
	}
	vol := deploycheck.Find(final, "VOLUME")
	if len(vol) != 1 || len(vol[0].Args) != 1 {
		t.Fatalf("VOLUME %v", vol)
	}
	mg := a.Apps.Mediaguard
	if mg.Ledger == nil {
		t.Fatal("the docker example keeps no ledger: a restarted container would hash everything again")
	}
	for what, p := range map[string]string{"audit_log": mg.AuditLog, "temp_dir": mg.TempDir, "ledger": mg.Ledger.Path} {
		if p == "" || !strings.HasPrefix(p+"/", strings.TrimSuffix(vol[0].Args[0], "/")+"/") {
			t.Errorf("%s %q is not on the image's volume %s: it would be lost with the container, or unwritable (read_only)", what, p, vol[0].Args[0])
		}
	}
	var cmd []string
	for _, in := range deploycheck.Find(final, "CMD") {
		cmd = in.Args
	}
	if a.Admin.Listen != "localhost:2019" && a.Admin.Listen != "" {
		t.Errorf("admin %q: `docker compose exec mediaguard caddy reload` (the README's reload) talks to localhost:2019", a.Admin.Listen)
	}
	if !slices.Contains(cmd, "/etc/mediaguard/Caddyfile") {
		t.Errorf("CMD %v does not run the Caddyfile whose reload docs/operations.md gives", cmd)
	}
}

// mediaguard.socket's sockets are the Caddyfile's fd/3 (the proxy, what
// the TLS front forwards to) and fd/4 (the lookup API), in order; the
// paths mediaguard writes are the unit's ReadWritePaths; `systemctl
// reload` talks to the admin socket the Caddyfile opens.
func TestExampleSystemdMatchesCaddyfile(t *testing.T) {
	a, steps := adaptExample(t, exampleCaddyfiles[1].path, nil)
	service, err := deploycheck.ReadUnit("../examples/systemd/mediaguard.service")
	if err != nil {
		t.Fatal(err)
	}
	socket, err := deploycheck.ReadUnit("../examples/systemd/mediaguard.socket")
	if err != nil {
		t.Fatal(err)
	}
	listen := socket.Words("Socket", "ListenStream")
	if len(listen) != 2 {
		t.Fatalf("ListenStream %v: want the proxy's and the lookup API's", listen)
	}
	if got := serving(a, steps, "mediaguard"); !slices.Equal(got, []string{"fd/3"}) {
		t.Errorf("the proxy listens on %v, want fd/3 (%s, the socket unit's first)", got, listen[0])
	}
	if got := serving(a, steps, "mediaguard_lookup"); !slices.Equal(got, []string{"fd/4"}) {
		t.Errorf("the lookup API listens on %v, want fd/4 (%s, the socket unit's second)", got, listen[1])
	}
	for name, s := range a.Apps.HTTP.Servers {
		for _, l := range s.Listen {
			if !strings.HasPrefix(l, "fd/") {
				t.Errorf("server %s listens on %s itself: under the socket unit every listener comes from it (and a restart would drop this one's connections)", name, l)
			}
		}
	}

	rw := service.Words("Service", "ReadWritePaths")
	mg := a.Apps.Mediaguard
	if mg.Ledger == nil {
		t.Fatal("the systemd example keeps no ledger")
	}
	for what, dir := range map[string]string{"audit_log": path.Dir(mg.AuditLog), "temp_dir": mg.TempDir, "ledger": path.Dir(mg.Ledger.Path)} {
		if !slices.Contains(rw, dir) {
			t.Errorf("%s needs %s writable; ReadWritePaths=%v", what, dir, rw)
		}
	}
	runtime := service.Words("Service", "RuntimeDirectory")
	admin := strings.TrimPrefix(a.Admin.Listen, "unix/")
	if len(runtime) == 0 || !strings.HasPrefix(admin, "/run/"+runtime[0]+"/") {
		t.Errorf("admin %q: want a unix socket in the RuntimeDirectory %v", a.Admin.Listen, runtime)
	}
	reload, _ := service.Get("Service", "ExecReload")
	start, _ := service.Get("Service", "ExecStart")
	if !strings.Contains(reload, "--address "+a.Admin.Listen) {
		t.Errorf("ExecReload=%s does not talk to the admin socket %s", reload, a.Admin.Listen)
	}
	config := regexp.MustCompile(`--config (\S+)`).FindStringSubmatch(start)
	if config == nil || !strings.Contains(reload, "--config "+config[1]) {
		t.Errorf("ExecStart=%s and ExecReload=%s read different configs", start, reload)
	}
}

// The TLS front forwards everything to mediaguard.socket's first socket,
// on a fresh connection per request, retrying connections refused.
func TestExampleTLSFrontMatchesSocket(t *testing.T) {
	a, steps := adaptExample(t, exampleCaddyfiles[3].path, nil)
	socket, err := deploycheck.ReadUnit("../examples/systemd/mediaguard.socket")
	if err != nil {
		t.Fatal(err)
	}
	listen := socket.Words("Socket", "ListenStream")
	var proxies int
	for _, ss := range steps {
		for _, st := range ss {
			if st.handler["handler"] != "reverse_proxy" {
				continue
			}
			proxies++
			b, _ := json.Marshal(st.handler)
			var rp struct {
				Upstreams []struct {
					Dial string `json:"dial"`
				} `json:"upstreams"`
				Transport struct {
					KeepAlive *struct {
						Enabled *bool `json:"enabled"`
					} `json:"keep_alive"`
				} `json:"transport"`
				LoadBalancing struct {
					TryDuration int64 `json:"try_duration"`
				} `json:"load_balancing"`
			}
			json.Unmarshal(b, &rp)
			if len(rp.Upstreams) != 1 || len(listen) == 0 || rp.Upstreams[0].Dial != listen[0] {
				t.Errorf("the front forwards to %v, mediaguard.socket's proxy socket is %v", rp.Upstreams, listen)
			}
			if ka := rp.Transport.KeepAlive; ka == nil || ka.Enabled == nil || *ka.Enabled {
				t.Error("the front keeps connections to mediaguard alive: a restart could drop a request sent on one being closed")
			}
			if rp.LoadBalancing.TryDuration == 0 {
				t.Error("the front does not retry refused connections (lb_try_duration)")
			}
		}
	}
	if proxies == 0 {
		t.Fatal("the front proxies nothing")
	}
	if mg := a.Apps.Mediaguard; mg != nil {
		t.Error("the TLS front configures mediaguard: it is meant to run on a stock Caddy")
	}
}

// With Synapse's workers, every request meets mediaguard first and media
// paths then go to the media worker: the routes, in order, in the
// adapted config. The admin router sends the media admin calls
// mediaguard makes (quarantine) to the worker and the others (suspend)
// to the main process, as Synapse's docs/workers.md assigns them.
func TestExampleSynapseWorkersRoutes(t *testing.T) {
	a, steps := adaptExample(t, exampleCaddyfiles[2].path, nil)
	const worker, main = "127.0.0.1:8085", "127.0.0.1:8008"
	dial := func(h map[string]any) string {
		ups, _ := h["upstreams"].([]any)
		if len(ups) != 1 {
			return ""
		}
		d, _ := ups[0].(map[string]any)["dial"].(string)
		return d
	}
	public := 0
	for name, s := range a.Apps.HTTP.Servers {
		ss := steps[name]
		guard := slices.IndexFunc(ss, func(st step) bool { return st.handler["handler"] == "mediaguard" })
		if guard < 0 {
			continue
		}
		public++
		var toWorker, toMain bool
		for i, st := range ss {
			if st.handler["handler"] != "reverse_proxy" {
				continue
			}
			if i < guard {
				t.Errorf("server %v: a reverse_proxy comes before mediaguard", s.Listen)
			}
			b, _ := json.Marshal(st.match)
			switch dial(st.handler) {
			case worker:
				toWorker = true
				for _, prefix := range []string{"/_matrix/media/*", "/_matrix/client/v1/media/*", "/_matrix/federation/v1/media/*"} {
					if !strings.Contains(string(b), `"`+prefix+`"`) {
						t.Errorf("server %v: media path %s is not routed to the media worker", s.Listen, prefix)
					}
				}
			case main:
				toMain = true
			}
		}
		if !toWorker || !toMain {
			t.Errorf("server %v: want routes to the media worker and the main process", s.Listen)
		}
	}
	if public == 0 {
		t.Fatal("no server runs mediaguard")
	}

	// The admin router.
	sa := a.Apps.Mediaguard.SynapseAdmin
	if sa == nil {
		t.Fatal("no synapse_admin")
	}
	router := strings.TrimPrefix(sa.Homeserver, "http://")
	var routerSteps []step
	for name, s := range a.Apps.HTTP.Servers {
		if slices.Contains(s.Listen, router) {
			routerSteps = steps[name]
		}
	}
	if routerSteps == nil {
		t.Fatalf("synapse_admin's homeserver %s is no server of this file", sa.Homeserver)
	}
	route := func(p string) string {
		for _, st := range routerSteps {
			if st.handler["handler"] != "reverse_proxy" {
				continue
			}
			ok := true
			for _, m := range st.match {
				mm, _ := m.(map[string]any)
				if re, has := mm["path_regexp"].(map[string]any); has {
					ok = ok && regexp.MustCompile(re["pattern"].(string)).MatchString(p)
				}
			}
			if ok {
				return dial(st.handler)
			}
		}
		return ""
	}
	for _, tc := range []struct{ path, want string }{
		{"/_synapse/admin/v1/media/quarantine/example.org/abcdef", worker},
		{"/_synapse/admin/v1/user/@u:example.org/media/quarantine", worker},
		{"/_synapse/admin/v1/suspend/@u:example.org", main},
	} {
		if got := route(tc.path); got != tc.want {
			t.Errorf("admin router: %s goes to %q, want %s", tc.path, got, tc.want)
		}
	}
}
