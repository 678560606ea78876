package caddymodule

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"unicode"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/mediaguard/mediaguard/internal/e2e"
	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// The monitoring files operators copy: Prometheus alerting rules with
// their promtool unit tests, and the Grafana dashboard.
const (
	prometheusDir = "../examples/prometheus"
	alertsFile    = prometheusDir + "/alerts.yml"
	alertsTest    = prometheusDir + "/alerts_test.yml"
	dashboardFile = "../examples/grafana/mediaguard.json"
)

// promtool finds Prometheus's promtool, or ends t loudly.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		e2e.MissingTool(t, "promtool", "apt-get install --no-install-recommends prometheus   (Debian's package; .ci/run installs it)")
	}
	return p
}

// runPromtool runs promtool in dir, failing t with its output.
func runPromtool(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// The alerting rules are valid, and each fires (and stays quiet) as its
// unit tests in alerts_test.yml say.
func TestAlertRules(t *testing.T) {
	runPromtool(t, prometheusDir, "check", "rules", "alerts.yml")
	runPromtool(t, prometheusDir, "test", "rules", "alerts_test.yml")
}

// Every alert has a unit test in which it fires, a summary and a
// description, and a runbook section named after it in
// docs/operations.md (checked once that file exists).
func TestAlertsDocumentedAndTested(t *testing.T) {
	rules, tests := readFile(t, alertsFile), readFile(t, alertsTest)
	blocks := regexp.MustCompile(`(?m)^\s*- alert: `).Split(rules, -1)[1:]
	if len(blocks) < 8 {
		t.Fatalf("%d alerts in %s", len(blocks), alertsFile)
	}
	evals := strings.Split(tests, "- eval_time:")
	docs, anchors := operationsAnchors(t)
	for _, b := range blocks {
		name := strings.TrimSpace(strings.SplitN(b, "\n", 2)[0])
		for _, want := range []string{"summary:", "description:", `runbook_url: "docs/operations.md#` + strings.ToLower(name) + `"`, "severity:"} {
			if !strings.Contains(b, want) {
				t.Errorf("alert %s lacks %s", name, want)
			}
		}
		if docs != "" && !anchors[strings.ToLower(name)] {
			t.Errorf("docs/operations.md has no section #%s for alert %s", strings.ToLower(name), name)
		}
		fires := slices.ContainsFunc(evals, func(e string) bool {
			return strings.Contains(e, "alertname: "+name+"\n") && strings.Contains(e, "exp_labels:")
		})
		if !fires {
			t.Errorf("alert %s never fires in %s", name, alertsTest)
		}
	}
}

// operationsAnchors reads docs/operations.md, the runbook, and returns the
// anchors its headings get on GitHub (and any explicit id= or name=).
// Without the file there is nothing to check, and it says so.
func operationsAnchors(t *testing.T) (string, map[string]bool) {
	t.Helper()
	b, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Logf("NOTE: docs/operations.md not found (%v): the alerts' runbook anchors are not checked", err)
		return "", nil
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if h := strings.TrimLeft(line, "#"); h != line && strings.HasPrefix(h, " ") {
			anchors[githubSlug(h)] = true
		}
		for _, m := range explicitAnchor.FindAllStringSubmatch(line, -1) {
			anchors[m[1]] = true
		}
	}
	return string(b), anchors
}

// explicitAnchor is an HTML anchor in Markdown: <a id="x"></a>.
var explicitAnchor = regexp.MustCompile(`(?:id|name)="([^"]+)"`)

// githubSlug is the anchor GitHub gives a heading: lower case, spaces to
// hyphens, other punctuation dropped.
func githubSlug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	ID         *int   `json:"id"`
	Templating struct {
		List []struct {
			Name       string         `json:"name"`
			Type       string         `json:"type"`
			Query      any            `json:"query"`
			Datasource map[string]any `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int            `json:"id"`
		Type       string         `json:"type"`
		Title      string         `json:"title"`
		Datasource map[string]any `json:"datasource"`
		GridPos    *struct{ H, W, X, Y int }
		Targets    []struct {
			RefID      string         `json:"refId"`
			Expr       string         `json:"expr"`
			Datasource map[string]any `json:"datasource"`
		} `json:"targets"`
	} `json:"panels"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(readFile(t, dashboardFile)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// dashboardExprs are the dashboard's PromQL expressions: every panel
// target's and the instance variable's query.
func dashboardExprs(d dashboard) []string {
	var out []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	return out
}

// The dashboard can be provisioned as it is: a fixed uid and title, no
// numeric id, the data source chosen through the datasource variable by
// every panel and query, an instance variable, and panels that each have
// a place and their queries.
func TestDashboardProvisioningReady(t *testing.T) {
	d := readDashboard(t)
	if d.UID != "mediaguard" || d.Title == "" || d.ID != nil {
		t.Fatalf("uid %q, title %q, id %v: want uid mediaguard, a title and no id", d.UID, d.Title, d.ID)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type == "query" && fmt.Sprint(v.Datasource["uid"]) != "${datasource}" {
			t.Errorf("variable %s queries %v, not ${datasource}", v.Name, v.Datasource)
		}
	}
	if vars["datasource"] != "datasource" || vars["instance"] != "query" {
		t.Fatalf("variables %v: want a datasource variable and an instance query", vars)
	}
	ids := map[int]bool{}
	var titles []string
	for _, p := range d.Panels {
		if ids[p.ID] || p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("panel %q: id %d repeated or no place %+v", p.Title, p.ID, p.GridPos)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		titles = append(titles, p.Title)
		if fmt.Sprint(p.Datasource["uid"]) != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: data source %v, %d queries", p.Title, p.Datasource, len(p.Targets))
		}
		for _, tg := range p.Targets {
			if tg.RefID == "" || tg.Expr == "" || fmt.Sprint(tg.Datasource["uid"]) != "${datasource}" {
				t.Errorf("panel %q: query %+v", p.Title, tg)
			}
			if !strings.Contains(tg.Expr, `instance=~"$instance"`) {
				t.Errorf("panel %q: %s ignores the instance variable", p.Title, tg.Expr)
			}
		}
	}
	// The panels the dashboard exists for.
	for _, want := range []string{"Detection rate by bank and hash type", "Matcher latency p95 by backend", "Circuit breakers", "Verdicts",
		"Hashing queue and workers", "Spool and buffer use", "Notices delivered and failed", "Notices pending"} {
		if !slices.Contains(titles, want) {
			t.Errorf("no panel %q among %q", want, titles)
		}
	}
}

// Every dashboard query is valid PromQL: promtool checks them as
// recording rules, with Grafana's variables filled in.
func TestDashboardQueriesParse(t *testing.T) {
	pt := promtool(t)
	fill := strings.NewReplacer("$__rate_interval", "5m", "$__range", "6h", "$instance", ".*")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	exprs := dashboardExprs(readDashboard(t))
	for i, e := range exprs {
		q, _ := json.Marshal(fill.Replace(e)) // a JSON string is a YAML double-quoted scalar
		fmt.Fprintf(&b, "      - record: dashboard:query_%d\n        expr: %s\n", i, q)
	}
	path := filepath.Join(t.TempDir(), "dashboard.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(pt, "check", "rules", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("SUCCESS: %d rules found", len(exprs))) {
		t.Fatalf("promtool check rules on the dashboard's %d queries: %v\n%s", len(exprs), err, out)
	}
}

// mediaguardName matches our metric names wherever they are mentioned.
var mediaguardName = regexp.MustCompile(`caddy_mediaguard_[a-z0-9_]+`)

// selector matches a metric name with its label matchers, and matcher one
// matcher in them.
var (
	selector     = regexp.MustCompile(`(caddy_mediaguard_[a-z0-9_]+)\{([^}]*)\}`)
	labelMatcher = regexp.MustCompile(`(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"`)
)

// scrape is what a /metrics exposition holds: every metric name (from
// HELP and TYPE lines and samples) and, per sample name, the values each
// label takes.
type scrape struct {
	names  map[string]bool
	labels map[string]map[string]map[string]bool
}

func scrapeExposition(t *testing.T, url string) scrape {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s := scrape{names: map[string]bool{}, labels: map[string]map[string]map[string]bool{}}
	pair := regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) >= 3 && (f[1] == "HELP" || f[1] == "TYPE") {
			s.names[f[2]] = true
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		name = strings.Fields(name)[0]
		s.names[name] = true
		if s.labels[name] == nil {
			s.labels[name] = map[string]map[string]bool{}
		}
		labels, _, _ := strings.Cut(rest, "}")
		for _, m := range pair.FindAllStringSubmatch(labels, -1) {
			if s.labels[name][m[1]] == nil {
				s.labels[name][m[1]] = map[string]bool{}
			}
			s.labels[name][m[1]][m[2]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestMonitoredMetricsExist starts mediaguard in a real Caddy with every
// part that has metrics (a bank, HMA, a notice channel, the lookup API),
// sends it a little traffic, scrapes /metrics and checks that every
// metric the dashboard and the alerting rules name exists, with the label
// names and values their selectors ask for: a renamed metric or label
// fails here, not on an operator's dashboard. It binds the admin port
// localhost:2999: run it under flock /tmp/mediaguard-caddy.lock.
func TestMonitoredMetricsExist(t *testing.T) {
	hma := fakes.NewHMA(t)
	repo, _ := fakeUploadRepo(t)
	var hooked atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		hooked.Add(1)
	}))
	defer hook.Close()
	dir := t.TempDir()
	listed := testimg.PNG(testimg.Photo(71, 80, 60))
	bank := filepath.Join(dir, "monitored.bank")
	if err := os.WriteFile(bank, []byte("sha256 "+sha256Hex(listed)+" listed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port, lookupPort := testkit.FreePort(t), testkit.FreePort(t)
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	skip_install_trust
	metrics
	mediaguard {
		bank MONITORED %s
		hma %s
		notify webhook %s
		temp_dir %s
		ledger %s
	}
}
http://127.0.0.1:%d {
	mediaguard
	reverse_proxy %s
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	mediaguard_lookup
}
`, bank, hma.URL, hook.URL, dir, filepath.Join(dir, "ledger", "media.ledger"), port, strings.TrimPrefix(repo.URL, "http://"), lookupPort), "caddyfile")
	front := fmt.Sprintf("http://127.0.0.1:%d/_matrix/media/v3/upload", port)
	post := func(url, ct string, body []byte) int {
		t.Helper()
		resp, err := http.Post(url, ct, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := post(front, "image/png", testimg.PNG(testimg.Photo(72, 80, 60))); st != 200 {
		t.Fatalf("clean upload: %d", st)
	}
	if st := post(front, "image/png", listed); st != 403 {
		t.Fatalf("listed upload: %d", st)
	}
	lookup := fmt.Sprintf("http://127.0.0.1:%d/", lookupPort)
	if st := post(lookup, "application/json", []byte(`{"hashes":{"sha256":"`+sha256Hex(listed)+`"}}`)); st != 200 {
		t.Fatalf("lookup: %d", st)
	}
	testkit.Eventually(t, "the block's webhook notice", func() bool { return hooked.Load() == 1 })

	s := scrapeExposition(t, "http://localhost:2999/metrics")
	// Names anywhere in the files (descriptions too); selectors in the
	// rules and in the dashboard's queries (its JSON escapes their quotes).
	dashText := readFile(t, dashboardFile)
	checked := map[string]bool{}
	for file, text := range map[string]string{alertsFile: readFile(t, alertsFile), dashboardFile: dashText} {
		for _, name := range mediaguardName.FindAllString(text, -1) {
			checked[name] = true
			if !s.names[name] {
				t.Errorf("%s names %s, which mediaguard does not expose", file, name)
			}
		}
	}
	sources := map[string]string{alertsFile: readFile(t, alertsFile), alertsTest: readFile(t, alertsTest),
		dashboardFile: strings.Join(dashboardExprs(readDashboard(t)), "\n")}
	for file, text := range sources {
		for _, sel := range selector.FindAllStringSubmatch(text, -1) {
			name := sel[1]
			for _, m := range labelMatcher.FindAllStringSubmatch(sel[2], -1) {
				label, op, value := m[1], m[2], m[3]
				if label == "job" || label == "instance" {
					continue // Prometheus adds them
				}
				values, ok := s.labels[name][label]
				if !ok {
					t.Errorf("%s: %s has no label %q", file, name, label)
					continue
				}
				if file == alertsTest || strings.ContainsAny(value, `.*+?()[]{}\^$`) || op == "!=" || op == "!~" {
					continue // made-up values, or patterns rather than values
				}
				for _, v := range strings.Split(value, "|") {
					if !values[v] {
						t.Errorf("%s: %s{%s} never takes the value %q (it takes %v)", file, name, label, v, keys(values))
					}
				}
			}
		}
	}
	// The unit tests' series must be the real names too, or they test
	// rules against series that never exist.
	for _, name := range mediaguardName.FindAllString(sources[alertsTest], -1) {
		if !s.names[name] {
			t.Errorf("%s feeds %s, which mediaguard does not expose", alertsTest, name)
		}
	}
	if len(checked) < 30 {
		t.Errorf("only %d metric names found in the dashboard and the rules", len(checked))
	}

	// The new series count what happened.
	m := scrapeMetrics(t, "http://localhost:2999/metrics")
	for series, least := range map[string]float64{
		`caddy_mediaguard_responses_total{code="200",direction="upload"}`:                               1,
		`caddy_mediaguard_responses_total{code="403",direction="upload"}`:                               1,
		`caddy_mediaguard_bank_blocks_total{bank="MONITORED",hash_type="sha256"}`:                       1,
		`caddy_mediaguard_lookup_requests_total{action="block",auth="off"}`:                             1,
		`caddy_mediaguard_backend_match_duration_seconds_count{backend="local"}`:                        3,
		`caddy_mediaguard_notices_delivered_total{channel="webhook"}`:                                   1,
		`caddy_mediaguard_spool_filesystem_size_bytes`:                                                  1,
		`caddy_mediaguard_hashing_slots`:                                                                2,
		`caddy_mediaguard_buffered_limit_bytes`:                                                         1,
		`caddy_mediaguard_backend_calls_total{backend="hma:` + hmaHost(hma.URL) + `"}`:                  1,
		`caddy_mediaguard_backend_match_duration_seconds_count{backend="hma:` + hmaHost(hma.URL) + `"}`: 1,
	} {
		if m[series] < least {
			t.Errorf("%s = %v; want at least %v", series, m[series], least)
		}
	}
	if avail, size := m["caddy_mediaguard_spool_filesystem_avail_bytes"], m["caddy_mediaguard_spool_filesystem_size_bytes"]; avail <= 0 || avail > size {
		t.Errorf("spool filesystem: %v available of %v", avail, size)
	}
	if m[`caddy_mediaguard_notices_pending{channel="webhook"}`] != 0 {
		t.Errorf("a notice still pending after its delivery")
	}
}

func hmaHost(url string) string { return strings.TrimPrefix(url, "http://") }

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
