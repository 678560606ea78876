package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/mediaguard/mediaguard/doctor"
	"github.com/mediaguard/mediaguard/ledger"
)

func doctorCommand() *cobra.Command {
	var config, adapter string
	var asJSON bool
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "doctor [--config FILE] [--adapter NAME] [--json] [--timeout D]",
		Short: "Check a deployment: config, banks, homeserver, bot, admin token, backends, paths",
		Long: `Checks a deployment the way an operator would by hand and prints a checklist,
one line per check: ✓ works, ! works but needs a look, ✗ will not work.

The configuration is loaded as caddy run loads it (--config, default the
Caddyfile in the current directory; {env.X} placeholders resolved from this
environment) and mapped exactly as a start maps it. Then: every local bank
loads (entry counts, skipped entries); each homeserver URL answers (the
reverse_proxy upstream behind the mediaguard handler among them); the
homeserver's server_name is the configured one; the notify bot's token is
valid and the bot is in the management room; the synapse_admin token is a
server admin's (not applicable on a homeserver without Synapse's admin API,
such as Dendrite); each HMA instance, lookup service and Arachnid Shield
answers a lookup (with its latency) and HMA has the configured banks; NCMEC
accepts each ncmec sync's credentials and its bank is synced, and recently;
temp_dir takes spill files; audit_log can be written, with modes no looser
than mediaguard's.

Nothing is changed: no notice is sent, no room joined, nothing quarantined,
and the audit log is not opened. Run it as the user Caddy runs as: the temp
and audit checks are that user's. Secrets are never printed.

Exits 1 if any check failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			rs := runDoctor(cmd.Context(), config, adapter, timeout)
			if err := writeDoctor(cmd.OutOrStdout(), rs, asJSON); err != nil {
				return err
			}
			if n := doctor.Count(rs, doctor.Fail); n > 0 {
				return fmt.Errorf("%d of %d checks failed", n, len(rs))
			}
			return nil
		},
	}
	c.Flags().StringVar(&config, "config", "", "configuration to check (default: ./Caddyfile)")
	c.Flags().StringVar(&adapter, "adapter", "", "name of the config adapter")
	c.Flags().BoolVar(&asJSON, "json", false, "one JSON object per check (name, status, detail, took_ns)")
	c.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "bound on each homeserver check (backends use their own timeout)")
	return c
}

// writeDoctor prints the checklist, or one JSON object per result.
func writeDoctor(w io.Writer, rs []doctor.Result, asJSON bool) error {
	if !asJSON {
		return doctor.Print(w, rs)
	}
	enc := json.NewEncoder(w)
	for _, r := range rs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// runDoctor loads the configuration and, if it is valid, runs the checks
// it calls for; the first result is the configuration's.
func runDoctor(ctx context.Context, config, adapter string, timeout time.Duration) []doctor.Result {
	if ctx == nil {
		ctx = context.Background()
	}
	start := time.Now()
	cfg, r := doctorConfig(config, adapter)
	r.Took = time.Since(start)
	if r.Status == doctor.Fail {
		return []doctor.Result{r}
	}
	cfg.Timeout = timeout
	return append([]doctor.Result{r}, doctor.Run(ctx, cfg)...)
}

// doctorConfig loads a configuration as `caddy run` does (caddycmd's
// loader and adapters) and maps its mediaguard app as Provision does
// (plainConfig, with Caddy's replacer for {env.X}), opening nothing.
func doctorConfig(config, adapter string) (doctor.Config, doctor.Result) {
	r := doctor.Result{Name: "config", Status: doctor.Fail}
	raw, file, adapterUsed, err := caddycmd.LoadConfig(config, adapter)
	if err != nil {
		r.Detail = err.Error()
		return doctor.Config{}, r
	}
	if len(raw) == 0 {
		r.Detail = "no configuration: no Caddyfile in the current directory; name one with --config"
		return doctor.Config{}, r
	}
	var parsed struct {
		Apps struct {
			Mediaguard json.RawMessage `json:"mediaguard"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(raw, &parsed); err != nil {
		r.Detail = "the configuration is not a JSON object: " + err.Error()
		return doctor.Config{}, r
	}
	// A site using the handler without the global block runs the app
	// with its defaults, as here.
	var app App
	if len(parsed.Apps.Mediaguard) > 0 {
		if err := app.UnmarshalJSON(parsed.Apps.Mediaguard); err != nil {
			r.Detail = "apps.mediaguard: " + err.Error()
			return doctor.Config{}, r
		}
	}
	if err := app.checkSizes(); err != nil {
		r.Detail = err.Error()
		return doctor.Config{}, r
	}
	repl := caddy.NewReplacer()
	sc, err := app.plainConfig(repl)
	if err != nil {
		r.Detail = err.Error()
		return doctor.Config{}, r
	}
	var cfgJSON any
	json.Unmarshal(raw, &cfgJSON)
	uses := handlerUses{repl: repl}
	if err := uses.walk(cfgJSON); err != nil {
		r.Detail = err.Error()
		return doctor.Config{}, r
	}
	handlers, lookups := uses.handlers, uses.lookups
	var ledgerSpec *ledger.Spec
	if app.Ledger != nil {
		sp, err := app.Ledger.spec(repl)
		if err != nil {
			r.Detail = err.Error()
			return doctor.Config{}, r
		}
		ledgerSpec = &sp
	}

	where := file
	if adapterUsed != "" {
		where += " (" + adapterUsed + " adapter)"
	}
	r.Status = doctor.OK
	r.Detail = fmt.Sprintf("%s: valid, placeholders and secrets resolve; the mediaguard handler in %d place%s, mediaguard_lookup in %d",
		where, handlers, plural(handlers), lookups)
	if handlers == 0 {
		r.Status = doctor.Warn
		r.Detail += ": no media passes through mediaguard"
	}
	return doctor.Config{
		Local: sc.Local, Mode: sc.Mode, HMA: sc.HMA, Services: sc.Services, Arachnid: sc.Arachnid,
		Homeserver: sc.Homeserver, Upstreams: uses.upstreams, ServerName: sc.Proxy.ServerName,
		Matrix: sc.Matrix, SynapseAdmin: sc.SynapseAdmin, LearnQuarantines: learnName(&app),
		Decisions: slices.DeleteFunc([]string{sc.ConfirmedBank, sc.Allowlist}, func(s string) bool { return s == "" }),
		TempDir:   sc.Proxy.TempDir, AuditLog: app.AuditLog, Ledger: ledgerSpec, NCMEC: app.ncmecCfgs,
	}, r
}

// handlerUses walks an adapted config: it counts the mediaguard and
// mediaguard_lookup handlers, resolves each lookup handler's api_key as
// its Provision does (so an unset {env.X} is found here, not at start),
// and collects the upstreams of the reverse_proxy handlers next to a
// mediaguard handler: the homeserver the media goes to.
type handlerUses struct {
	repl              replacer
	handlers, lookups int
	upstreams         []string
}

func (u *handlerUses) walk(v any) error {
	switch x := v.(type) {
	case map[string]any:
		switch x["handler"] {
		case "mediaguard":
			u.handlers++
		case "mediaguard_lookup":
			u.lookups++
			if key, ok := x["api_key"].(string); ok {
				if _, err := secret(u.repl, "mediaguard_lookup: api_key", key); err != nil {
					return err
				}
			}
		}
		for _, e := range x {
			if err := u.walk(e); err != nil {
				return err
			}
		}
	case []any:
		u.siblings(x)
		for _, e := range x {
			if err := u.walk(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// siblings looks at a list of routes (the Caddyfile adapter puts each
// directive of a block in a route of its own, in order) or of handlers:
// when one is the mediaguard handler, the reverse_proxy upstreams among
// them are the homeserver. Dynamic upstreams and unix sockets are left
// out.
func (u *handlerUses) siblings(list []any) {
	var hs []map[string]any
	for _, e := range list {
		m, _ := e.(map[string]any)
		if _, ok := m["handler"]; ok {
			hs = append(hs, m)
		}
		if handle, ok := m["handle"].([]any); ok {
			for _, h := range handle {
				if hm, ok := h.(map[string]any); ok {
					hs = append(hs, hm)
				}
			}
		}
	}
	guarded := false
	for _, h := range hs {
		guarded = guarded || h["handler"] == "mediaguard"
	}
	if !guarded {
		return
	}
	for _, h := range hs {
		if h["handler"] != "reverse_proxy" {
			continue
		}
		scheme := "http://"
		if t, ok := h["transport"].(map[string]any); ok && t["tls"] != nil {
			scheme = "https://"
		}
		ups, _ := h["upstreams"].([]any)
		for _, up := range ups {
			m, _ := up.(map[string]any)
			dial, _ := m["dial"].(string)
			dial = u.repl.ReplaceAll(dial, "")
			if dial == "" || strings.Contains(dial, "/") {
				continue
			}
			if url := scheme + dial; !slices.Contains(u.upstreams, url) {
				u.upstreams = append(u.upstreams, url)
			}
		}
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
