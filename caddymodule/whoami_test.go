package caddymodule

import (
	"fmt"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/mediaguard/mediaguard/internal/testkit"
)

func TestChooseWhoami(t *testing.T) {
	const notify = "https://matrix.example.org"
	for _, tc := range []struct {
		name   string
		ups    upstreamSet
		notify string
		want   whoamiChoice
		note   string
	}{
		{"one upstream", upstreamSet{urls: []string{"http://127.0.0.1:8008"}}, notify, whoamiChoice{URL: "http://127.0.0.1:8008", Source: whoamiUpstream}, ""},
		{"two upstreams: notify", upstreamSet{urls: []string{"http://a:1", "http://b:2"}}, notify, whoamiChoice{URL: notify, Source: whoamiNotify}, "2 upstreams, not one (http://a:1, http://b:2)"},
		{"unix socket: notify", upstreamSet{urls: []string{"http://a:1"}, unknowable: "unix//run/synapse.sock"}, notify, whoamiChoice{URL: notify, Source: whoamiNotify}, "unix//run/synapse.sock"},
		{"no upstream: notify", upstreamSet{}, notify, whoamiChoice{URL: notify, Source: whoamiNotify}, "no reverse_proxy"},
		{"nothing", upstreamSet{}, "", whoamiChoice{}, "no homeserver, synapse_admin or notify matrix option"},
		{"two upstreams, no notify", upstreamSet{urls: []string{"http://a:1", "http://b:2"}}, "", whoamiChoice{}, "not one"},
	} {
		got := chooseWhoami(tc.ups, tc.notify)
		note := got.Note
		got.Note = ""
		if got != tc.want || !strings.Contains(note, tc.note) {
			t.Errorf("%s: %+v (note %q); want %+v, note with %q", tc.name, got, note, tc.want, tc.note)
		}
	}
}

// Each source of the homeserver adapts from the Caddyfile into the app's
// JSON as written, `homeserver off` included, and the JSON reads back;
// "off" is no URL for the service.
func TestHomeserverSourcesAdapt(t *testing.T) {
	for _, tc := range []struct {
		name, global     string
		homeserver       string
		notify, synapseA string
	}{
		{"homeserver", "homeserver http://127.0.0.1:8008", "http://127.0.0.1:8008", "", ""},
		{"off", "homeserver off", "off", "", ""},
		{"notify matrix", "notify matrix {\n homeserver https://matrix.example.org\n access_token t\n room !r:example.org\n }", "", "https://matrix.example.org", ""},
		{"synapse_admin", "synapse_admin {\n homeserver http://10.0.0.2:8008\n access_token t\n }", "", "", "http://10.0.0.2:8008"},
		{"reverse_proxy only", "", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := adaptApp(t, "{\n mediaguard {\n "+tc.global+"\n }\n}\n:8080 {\n mediaguard\n reverse_proxy 127.0.0.1:8008\n}\n")
			if err != nil {
				t.Fatal(err)
			}
			var notify, sa string
			if a.Notify != nil && a.Notify.Matrix != nil {
				notify = a.Notify.Matrix.Homeserver
			}
			if a.SynapseAdmin != nil {
				sa = a.SynapseAdmin.Homeserver
			}
			if a.Homeserver != tc.homeserver || notify != tc.notify || sa != tc.synapseA {
				t.Fatalf("homeserver %q, notify %q, synapse_admin %q", a.Homeserver, notify, sa)
			}
			sc, err := a.plainConfig(caddy.NewReplacer())
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.TrimSuffix(tc.homeserver, "off"); sc.Homeserver != want {
				t.Fatalf("service homeserver %q; want %q", sc.Homeserver, want)
			}
		})
	}
	var a App
	if err := a.UnmarshalJSON([]byte(`{"homeserver":"off"}`)); err != nil || a.Homeserver != "off" {
		t.Fatalf("JSON homeserver off: %q, %v", a.Homeserver, err)
	}
}

// TestWhoamiSources starts Caddy with each way the homeserver may be
// known and checks the one chosen, by precedence: homeserver, then
// synapse_admin, then the site's one reverse_proxy upstream (however deep
// in handle or route blocks), then notify matrix; `homeserver off` wins
// over all. No request is made: the choice is read from the running app.
func TestWhoamiSources(t *testing.T) {
	const (
		notify = "notify matrix {\n\t\t\thomeserver http://127.0.0.1:9\n\t\t\taccess_token t\n\t\t\troom !r:example.org\n\t\t}"
		admin  = "synapse_admin {\n\t\t\thomeserver http://127.0.0.1:7\n\t\t\taccess_token t\n\t\t}"
		proxy  = "mediaguard\n\treverse_proxy 127.0.0.1:8008"
	)
	port := testkit.FreePort(t)
	tester := caddytest.NewTester(t)
	for _, tc := range []struct {
		name, global, site string
		want               whoamiChoice
	}{
		{"homeserver first", "homeserver http://127.0.0.1:5\n\t\t" + admin + "\n\t\t" + notify, proxy, whoamiChoice{URL: "http://127.0.0.1:5", Source: whoamiHomeserver}},
		{"off", "homeserver off\n\t\t" + admin + "\n\t\t" + notify, proxy, whoamiChoice{Source: whoamiOff}},
		{"synapse_admin before the upstream", admin + "\n\t\t" + notify, proxy, whoamiChoice{URL: "http://127.0.0.1:7", Source: whoamiSynapseAdmin}},
		{"upstream before notify", notify, proxy, whoamiChoice{URL: "http://127.0.0.1:8008", Source: whoamiUpstream}},
		{"upstream over TLS", "", "mediaguard\n\treverse_proxy https://matrix.example.org", whoamiChoice{URL: "https://matrix.example.org:443", Source: whoamiUpstream}},
		{"upstream in handle blocks", "", "handle /_matrix/* {\n\t\troute {\n\t\t\tmediaguard\n\t\t}\n\t\treverse_proxy 127.0.0.1:8008\n\t}\n\thandle {\n\t\trespond 404\n\t}", whoamiChoice{URL: "http://127.0.0.1:8008", Source: whoamiUpstream}},
		{"two upstreams: notify", notify, "mediaguard\n\treverse_proxy /_matrix/media/* 127.0.0.1:8085\n\treverse_proxy 127.0.0.1:8008", whoamiChoice{URL: "http://127.0.0.1:9", Source: whoamiNotify}},
		{"unix socket: notify", notify, "mediaguard\n\treverse_proxy unix//run/synapse.sock", whoamiChoice{URL: "http://127.0.0.1:9", Source: whoamiNotify}},
		{"nothing known", "", "mediaguard\n\trespond 204", whoamiChoice{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tester.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	skip_install_trust
	mediaguard {
		%s
	}
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	%s
}
# Another site on the same listener, proxying elsewhere: not the
# homeserver's, so not counted.
http://localhost:%d {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:6
}
`, tc.global, port, tc.site, port), "caddyfile")
			a := currentApp.Load()
			if a == nil {
				t.Fatal("no running app")
			}
			got := a.whoamiChosen()
			note := got.Note
			got.Note = ""
			if got != tc.want {
				t.Fatalf("chose %+v (%s); want %+v", got, note, tc.want)
			}
		})
	}
}
