// Package doctor checks a mediaguard deployment the way an operator would
// by hand: the banks load, the homeserver answers and is the server the
// config names, the bot's token works and the bot is in the management
// room, the Synapse admin token is an admin's, every remote backend
// answers (with its banks, and how fast), and the temp and audit paths are
// usable with the right modes. Each check is one Result; `caddy mediaguard
// doctor` prints them as a checklist.
//
// It takes the plain, already resolved configuration (the Caddy adapter
// maps its config onto it with the same code a start uses) and reuses the
// stages' own clients, so a check passes exactly when the stage would
// work. It reads and never acts: no notice is sent, no room joined, no
// media quarantined, no audit log opened. It must not import Caddy.
package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mediaguard/mediaguard/homeserver"
	"github.com/mediaguard/mediaguard/ledger"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/ncmec"
	"github.com/mediaguard/mediaguard/notify"
)

// Status is a check's outcome.
type Status int

// The outcomes, from best to worst.
const (
	// OK: works as configured.
	OK Status = iota
	// Warn: works, but not as well as it could, or not yet, or the check
	// could not tell; the exit status stays 0.
	Warn
	// Fail: will not work as configured; the exit status is 1.
	Fail
)

// String is "ok", "warn" or "fail".
func (s Status) String() string {
	switch s {
	case OK:
		return "ok"
	case Warn:
		return "warn"
	}
	return "fail"
}

// Mark is the checklist's sign for s: ✓, ! or ✗.
func (s Status) Mark() string {
	switch s {
	case OK:
		return "✓"
	case Warn:
		return "!"
	}
	return "✗"
}

// MarshalJSON writes the status as its String.
func (s Status) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// Result is one line of the checklist.
type Result struct {
	// Name says what was checked, e.g. "bank CSAM" or "hma 10.0.0.5:5100".
	Name string `json:"name"`
	// Status is the outcome.
	Status Status `json:"status"`
	// Detail says what was found, or what is wrong and what to do. It
	// never holds a secret.
	Detail string `json:"detail"`
	// Took is how long the check took (for a remote, its latency).
	Took time.Duration `json:"took_ns"`
}

// Config is the part of a mediaguard configuration the checks read, with
// placeholders and secrets already resolved. Most fields are
// service.Config's, which the adapter fills them from; Upstreams and
// AuditLog come from the adapter's own config.
type Config struct {
	// Local are the local banks, loaded as a start loads them.
	Local matcher.LocalConfig
	// Mode is the global mode, given to banks that set none.
	Mode string
	// HMA and Services are the remote backends.
	HMA      []matcher.HMAConfig
	Services []matcher.ServiceConfig
	// Arachnid is Arachnid Shield, if configured.
	Arachnid *matcher.ArachnidConfig
	// Homeserver is the client API base URL whoami is asked at.
	Homeserver string
	// Upstreams are the base URLs the proxied media goes to (the
	// reverse_proxy upstreams behind the mediaguard handler): the
	// homeserver, whether or not Homeserver is set.
	Upstreams []string
	// ServerName is the configured server_name ("" when it is learned
	// from the first upload).
	ServerName string
	// Matrix is the management room notifier, if any.
	Matrix *notify.MatrixConfig
	// SynapseAdmin is the Synapse admin API client's config, if any.
	SynapseAdmin *homeserver.AdminConfig
	// LearnQuarantines is the bank synapse_admin's learn_quarantines
	// writes, "" when it is off.
	LearnQuarantines string
	// Decisions are the banks moderators' decisions write
	// (confirmed_bank, the first allow), created at the first start.
	Decisions []string
	// TempDir is where uploads spill ("" = the system temp dir).
	TempDir string
	// AuditLog is the audit log's path ("" = none).
	AuditLog string
	// Ledger is the media ledger's store, nil when there is none.
	Ledger *ledger.Spec
	// NCMEC are the banks synced from NCMEC's hash-sharing API (each is
	// also in Local.Banks).
	NCMEC []ncmec.Config

	// Timeout bounds each network check (default 5s); a remote backend's
	// own timeout bounds its requests, as it bounds lookups.
	Timeout time.Duration
	// HTTPClient is used for the homeserver (default: one with Timeout).
	HTTPClient *http.Client
}

// Run performs every check the configuration calls for and returns the
// results in checklist order. Independent checks run concurrently, so a
// backend that is down costs its timeout once, not once per line.
func Run(ctx context.Context, cfg Config) []Result {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: cfg.Timeout}
	}
	groups := []func(context.Context, Config) []Result{checkBanks, checkHomeserver}
	for _, h := range cfg.HMA {
		groups = append(groups, func(ctx context.Context, cfg Config) []Result { return checkHMA(ctx, h) })
	}
	for _, s := range cfg.Services {
		groups = append(groups, func(ctx context.Context, cfg Config) []Result { return checkService(ctx, s) })
	}
	groups = append(groups, checkNCMEC)
	if cfg.Arachnid != nil {
		groups = append(groups, func(ctx context.Context, cfg Config) []Result { return checkArachnid(ctx, *cfg.Arachnid) })
	}
	groups = append(groups, checkLearn, checkTempDir, checkAuditLog, checkLedger)

	out := make([][]Result, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Go(func() { out[i] = g(ctx, cfg) })
	}
	wg.Wait()
	var all []Result
	for _, rs := range out {
		all = append(all, rs...)
	}
	secrets := cfg.secrets()
	for i := range all {
		all[i].Detail = redact(all[i].Detail, secrets)
		all[i].Name = redact(all[i].Name, secrets)
	}
	return all
}

// Count returns how many results have status s.
func Count(rs []Result, s Status) int {
	n := 0
	for _, r := range rs {
		if r.Status == s {
			n++
		}
	}
	return n
}

// Print writes the checklist: one line per result, its mark, name, detail
// and how long it took, then a summary line.
func Print(w io.Writer, rs []Result) error {
	width := 0
	for _, r := range rs {
		width = max(width, len(r.Name))
	}
	for _, r := range rs {
		took := ""
		if r.Took >= time.Millisecond {
			took = fmt.Sprintf(" (%s)", r.Took.Round(time.Millisecond))
		} else if r.Took > 0 {
			took = " (<1ms)"
		}
		if _, err := fmt.Fprintf(w, "%s %-*s  %s%s\n", r.Status.Mark(), width, r.Name, r.Detail, took); err != nil {
			return err
		}
	}
	fails, warns := Count(rs, Fail), Count(rs, Warn)
	verdict := "all checks passed"
	switch {
	case fails > 0:
		verdict = fmt.Sprintf("%d of %d checks FAILED", fails, len(rs))
	case warns > 0:
		verdict = "no check failed"
	}
	_, err := fmt.Fprintf(w, "%s, %d warning%s\n", verdict, warns, plural(warns))
	return err
}

// secrets lists every secret the checks were given, so that no detail
// carries one even when an error message quotes a request.
func (cfg Config) secrets() []string {
	var s []string
	add := func(v string) {
		if v != "" {
			s = append(s, v)
		}
	}
	addURL := func(raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		if u.User != nil {
			p, _ := u.User.Password()
			add(p)
		}
		for _, vs := range u.Query() { // e.g. ?api_key=
			for _, v := range vs {
				add(v)
			}
		}
	}
	for _, h := range cfg.HMA {
		add(h.APIKey)
		addURL(h.URL)
	}
	for _, n := range cfg.NCMEC {
		add(n.Password)
	}
	for _, sv := range cfg.Services {
		add(sv.APIKey)
		addURL(sv.URL)
	}
	if cfg.Arachnid != nil {
		add(cfg.Arachnid.Password)
	}
	if cfg.Matrix != nil {
		add(cfg.Matrix.AccessToken)
		addURL(cfg.Matrix.Homeserver)
	}
	if cfg.SynapseAdmin != nil {
		add(cfg.SynapseAdmin.AccessToken)
		addURL(cfg.SynapseAdmin.Homeserver)
	}
	addURL(cfg.Homeserver)
	return s
}

func redact(s string, secrets []string) string {
	for _, v := range secrets {
		s = strings.ReplaceAll(s, v, "REDACTED")
	}
	return s
}

// shownURL is a URL as a checklist shows it: no user info, no query (a
// credential may hide in either).
func shownURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return strings.TrimRight(u.String(), "/")
}

// hostOf is a URL's host, or the URL shown when it has none.
func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return shownURL(raw)
}

// timed runs f and returns how long it took.
func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
