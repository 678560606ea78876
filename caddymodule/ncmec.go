package caddymodule

// The `ncmec` option: banks pulled from NCMEC's hash-sharing API by
// package ncmec. Each is also an ordinary local bank (metrics, doctor,
// lookups and retro-scans see it as one); its sync runs on a Runner shared
// by path across config reloads, so that a reload never runs two syncs
// writing one file.

import (
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/ncmec"
	"github.com/mediaguard/mediaguard/service"
)

// NCMECSync is a bank pulled from NCMEC's hash-sharing API: every image
// MD5, SHA-1 and PDQ and every video MD5 of the entries the account may
// read, kept up to date incrementally.
type NCMECSync struct {
	// Name is the bank's name ([A-Z_][A-Z0-9_]*).
	Name string `json:"name"`
	// Path is the bank file the sync writes (atomically; the checkpoint
	// is kept in Path.sync). Its directory must exist.
	Path string `json:"path"`
	// Environment is industry, npo or test: NCMEC's base URL for it.
	Environment string `json:"environment,omitempty"`
	// BaseURL overrides the environment's base URL (e.g.
	// https://report.cybertip.org/hashsharing).
	BaseURL string `json:"base_url,omitempty"`
	// Username is the account NCMEC issued.
	Username string `json:"username"`
	// Password is its password: use a placeholder such as
	// {env.NCMEC_PASSWORD}. One that resolves empty stops the start.
	Password string `json:"password"`
	// Every is how often the bank is synced (default 15m).
	Every caddy.Duration `json:"every,omitempty"`
	// Start is where the first sync begins, a date (2024-01-31) or an
	// RFC 3339 time (default: all of NCMEC's entries).
	Start string `json:"start,omitempty"`
	// Mode is "enforce" or "report" for the bank (default: the app's
	// mode).
	Mode string `json:"mode,omitempty"`
	// Category is the kind of harm it lists (NCMEC's lists: csam).
	Category string `json:"category,omitempty"`
}

// parseNCMEC parses `ncmec NAME PATH { ... }` in the global block.
func parseNCMEC(d *caddyfile.Dispenser) (NCMECSync, error) {
	var n NCMECSync
	if !d.Args(&n.Name, &n.Path) {
		return n, d.Errf("ncmec: want `ncmec NAME PATH { environment industry|npo|test; username U; password P }`")
	}
	if !matcher.ValidBankName(n.Name) {
		return n, d.Errf("ncmec: name %q must match [A-Z_][A-Z0-9_]*", n.Name)
	}
	for d.NextBlock(1) {
		if ok, err := parsePolicyOption(d, "ncmec", &n.Mode, &n.Category); ok {
			if err != nil {
				return n, err
			}
			continue
		}
		opt := d.Val()
		var err error
		switch opt {
		case "environment":
			if !d.Args(&n.Environment) {
				return n, d.ArgErr()
			}
			if _, ok := ncmec.Environments[n.Environment]; !ok {
				return n, d.Errf("ncmec: environment must be industry, npo or test, not %q", n.Environment)
			}
		case "base_url":
			if !d.Args(&n.BaseURL) {
				return n, d.ArgErr()
			}
		case "username":
			if !d.Args(&n.Username) {
				return n, d.ArgErr()
			}
		case "password":
			if !d.Args(&n.Password) {
				return n, d.ArgErr()
			}
		case "every":
			n.Every, err = durationArg(d)
		case "start":
			if !d.Args(&n.Start) {
				return n, d.ArgErr()
			}
			if _, perr := parseStart(n.Start); perr != nil {
				return n, d.Errf("ncmec: %v", perr)
			}
		default:
			return n, d.Errf("ncmec: unknown option %q", opt)
		}
		if err != nil {
			return n, err
		}
		if d.NextArg() {
			return n, d.Errf("ncmec %s: unexpected extra argument %q", opt, d.Val())
		}
	}
	if n.Environment == "" && n.BaseURL == "" {
		return n, d.Errf("ncmec %s: environment (industry, npo or test) or base_url is required", n.Name)
	}
	if n.Username == "" || n.Password == "" {
		return n, d.Errf("ncmec %s: username and password are required (password {env.NCMEC_PASSWORD})", n.Name)
	}
	return n, nil
}

func parseStart(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.DateOnly, time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("start %q is neither a date (2024-01-31) nor an RFC 3339 time", s)
}

// ncmecPlain resolves the ncmec options (placeholders, the password) into
// the syncs' configs, kept in a.ncmecCfgs, and adds each bank to cfg's
// local banks after the configured ones. It opens and writes nothing.
func (a *App) ncmecPlain(repl replacer, cfg *service.Config) error {
	a.ncmecCfgs = nil
	names := map[string]bool{}
	for _, b := range cfg.Local.Banks {
		names[b.Name] = true
	}
	paths := map[string]string{}
	for _, n := range a.NCMEC {
		where := "mediaguard: ncmec " + n.Name
		if names[n.Name] {
			return fmt.Errorf("%s: a bank of that name is configured already", where)
		}
		names[n.Name] = true
		p := repl.ReplaceAll(n.Path, "")
		if p == "" {
			return fmt.Errorf("%s: the path resolves empty", where)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if other, dup := paths[abs]; dup {
			return fmt.Errorf("%s: %s is also bank %s's path", where, abs, other)
		}
		paths[abs] = n.Name
		if n.Password == "" {
			return fmt.Errorf("%s: a password is required (e.g. password {env.NCMEC_PASSWORD})", where)
		}
		pass, err := secret(repl, where+" password", n.Password)
		if err != nil {
			return err
		}
		start, err := parseStart(n.Start)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		c := ncmec.Config{
			Name: n.Name, Path: abs, Environment: n.Environment, BaseURL: repl.ReplaceAll(n.BaseURL, ""),
			Username: repl.ReplaceAll(n.Username, ""), Password: pass, Every: time.Duration(n.Every), Start: start,
		}
		if err := c.Validate(); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		a.ncmecCfgs = append(a.ncmecCfgs, c)
		cfg.Local.Banks = append(cfg.Local.Banks, matcher.BankConfig{Name: n.Name, Path: abs, Mode: n.Mode, Category: n.Category})
	}
	return nil
}

// prepareNCMEC creates each synced bank's file when it has none yet, so
// that the matcher, which refuses a bank it cannot load, starts before
// the first sync.
func (a *App) prepareNCMEC() error {
	for _, c := range a.ncmecCfgs {
		if err := ncmec.EnsureBank(c); err != nil {
			return fmt.Errorf("mediaguard: ncmec %s: %w", c.Name, err)
		}
		allowBankLabels(c.Name)
	}
	return nil
}

// ncmecPool shares one Runner per bank path across config reloads.
var ncmecPool = caddy.NewUsagePool()

// ncmecRunners are the live Runners, for the metrics.
var ncmecRunners sync.Map // path -> *ncmec.Runner

type sharedRunner struct {
	*ncmec.Runner
	path string
}

func (s sharedRunner) Destruct() error {
	ncmecRunners.Delete(s.path)
	return s.Close()
}

// ncmecHold is one sync this app runs: its attachment to the shared
// Runner.
type ncmecHold struct {
	path string
	att  *ncmec.Attachment
}

// ncmecHolds are the syncs an app runs.
type ncmecHolds struct {
	mu   sync.Mutex
	held []ncmecHold
}

// startNCMEC attaches this app's syncs to their Runners: each syncs at
// once, then every `every`, with the newest started config's settings,
// and has this app's banks reloaded after each new bank file.
func (a *App) startNCMEC() error {
	if len(a.ncmecCfgs) == 0 {
		return nil
	}
	holds := &ncmecHolds{}
	a.ncmecHeld = holds
	for _, c := range a.ncmecCfgs {
		val, _, err := ncmecPool.LoadOrNew(c.Path, func() (caddy.Destructor, error) {
			r := ncmec.NewRunner(c.Path)
			ncmecRunners.Store(c.Path, r)
			return sharedRunner{r, c.Path}, nil
		})
		if err != nil {
			return err
		}
		c.Logger = a.log.Named("ncmec")
		svc := a.svc
		c.OnWritten = func() {
			// The matcher polls its files too; this makes the new
			// entries match at once, and starts their retro-scan.
			svc.Local().Reload()
		}
		att, err := val.(sharedRunner).Attach(c)
		if err != nil {
			ncmecPool.Delete(c.Path)
			return fmt.Errorf("mediaguard: ncmec %s: %w", c.Name, err)
		}
		holds.mu.Lock()
		holds.held = append(holds.held, ncmecHold{c.Path, att})
		holds.mu.Unlock()
	}
	return nil
}

// stopNCMEC detaches this app's syncs; a Runner no config holds any more
// is closed, cancelling a sync in progress (which leaves the bank and its
// checkpoint as the last whole window left them).
func (a *App) stopNCMEC() {
	holds := a.ncmecHeld
	if holds == nil {
		return
	}
	holds.mu.Lock()
	held := holds.held
	holds.held = nil
	holds.mu.Unlock()
	for _, h := range held {
		h.att.Detach()
		ncmecPool.Delete(h.path)
	}
}

// ncmecCollector reports the syncs' state at scrape time. The Runners
// outlive config reloads, and so do their counters.
type ncmecCollector struct{ success, entries, lag, syncs, failures *prometheus.Desc }

var ncmecMetrics = ncmecCollector{
	success: prometheus.NewDesc("caddy_mediaguard_ncmec_last_success_timestamp_seconds",
		"When the NCMEC sync of the bank last finished without error (Unix time; 0 before the first).", []string{"bank"}, nil),
	entries: prometheus.NewDesc("caddy_mediaguard_ncmec_entries",
		"Hashes in the NCMEC-synced bank file, by type (md5 and sha1 of images, pdq, video_md5).", []string{"bank", "type"}, nil),
	lag: prometheus.NewDesc("caddy_mediaguard_ncmec_lag_seconds",
		"How far the NCMEC-synced bank is behind: now minus its checkpoint (every change NCMEC made up to the checkpoint is in the bank). Absent before the first window is committed.", []string{"bank"}, nil),
	syncs: prometheus.NewDesc("caddy_mediaguard_ncmec_syncs_total",
		"NCMEC syncs of the bank run, failed ones included.", []string{"bank"}, nil),
	failures: prometheus.NewDesc("caddy_mediaguard_ncmec_sync_failures_total",
		"NCMEC syncs of the bank that failed (logged; the bank stays as the last whole window left it, and the sync is retried).", []string{"bank"}, nil),
}

func init() { collectors = append(collectors, ncmecMetrics) }

func (c ncmecCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.success, c.entries, c.lag, c.syncs, c.failures} {
		ch <- d
	}
}

func (c ncmecCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	ncmecRunners.Range(func(_, v any) bool {
		st := v.(*ncmec.Runner).Stats()
		if st.Bank == "" {
			return true
		}
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{st.Bank}, labels...)...)
		}
		success := 0.0
		if !st.LastSuccess.IsZero() {
			success = float64(st.LastSuccess.UnixNano()) / 1e9
		}
		gauge(c.success, success)
		for typ, n := range map[string]int{"md5": st.Counts.MD5, "sha1": st.Counts.SHA1, "pdq": st.Counts.PDQ, "video_md5": st.Counts.VideoMD5} {
			gauge(c.entries, float64(n), typ)
		}
		if !st.Through.IsZero() {
			gauge(c.lag, now.Sub(st.Through).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(c.syncs, prometheus.CounterValue, float64(st.Syncs), st.Bank)
		ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(st.Failures), st.Bank)
		return true
	})
}
