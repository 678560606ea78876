package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

	"github.com/mediaguard/mediaguard/actions"
	"github.com/mediaguard/mediaguard/backfill"
	"github.com/mediaguard/mediaguard/homeserver"
	"github.com/mediaguard/mediaguard/ledger"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/notify"
	"github.com/mediaguard/mediaguard/service"
)

// backfillFlags are the command line of mediaguard backfill.
type backfillFlags struct {
	mediaStore, serverName, synapseDB string
	config, adapter, ledgerSpec       string
	act, restart, rehash              bool
	jobs                              int
	every                             time.Duration
}

func backfillCommand() *cobra.Command {
	var f backfillFlags
	c := &cobra.Command{
		Use:   "backfill --synapse-media-store DIR [--server-name NAME] [--synapse-db DSN] [--config FILE] [--act] [--jobs N] [--restart] [--rehash]",
		Short: "Judge the media a Synapse homeserver already stores, into the ledger",
		Long: `Walks Synapse's media store (media_store_path) and judges every original
file exactly as the proxy judges an upload (same decoders, frames,
orientation, variants and embedded files, on the idle-priority hashing
workers), against the configuration's local banks, and writes each file's
record to the media ledger. Matches are printed: the mxc URI, the file, the
bank, the hash type and the start of the listed hash, the variant and form.

local_content/aa/bb/rest is local media aabbrest of --server-name (default
the configuration's server_name). remote_content/SERVER/aa/bb/rest is
stored under a filesystem ID: with --synapse-db (Synapse's PostgreSQL DSN,
read-only) it is named by its remote media ID from remote_media_cache,
otherwise recorded by content only as SERVER/fs:ID. Thumbnails and URL
previews are counted and skipped. Files larger than max_upload_size are
judged by their exact digests only, as the proxy would.

A dry run by default: nothing is quarantined or reported. With --act each
match is quarantined through synapse_admin and reported through notify,
once per match (also when a dry run found it first).

Resumable: the place is saved in the ledger every 0.5% of the files (at
most 256) and on Ctrl-C, and a rerun continues after it (--restart walks
from the start). A file the ledger holds at the same size is not hashed
again (--rehash does).

The configuration (--config, --adapter; default ./Caddyfile) is read as
caddy run reads it, for the banks, hashing options, ledger, server_name,
synapse_admin and notify. Remote lookup backends (HMA, services) are not
asked: a backfill would send them every file of the store.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runBackfill(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.mediaStore, "synapse-media-store", "", "Synapse's media_store_path (required)")
	fl.StringVar(&f.serverName, "server-name", "", "the homeserver's name, the server of local media (default: the configuration's server_name)")
	fl.StringVar(&f.synapseDB, "synapse-db", "", "Synapse's PostgreSQL DSN, to name remote media by their media IDs (read-only); {env.X} placeholders are resolved, so a password need not show in ps")
	fl.StringVar(&f.config, "config", "", "configuration to read (default: ./Caddyfile)")
	fl.StringVar(&f.adapter, "adapter", "", "name of the config adapter")
	fl.StringVar(&f.ledgerSpec, "ledger", "", "the ledger to write: PATH, or \"postgres DSN\" (default: the configuration's)")
	fl.BoolVar(&f.act, "act", false, "quarantine and report each match (default: a dry run)")
	fl.BoolVar(&f.restart, "restart", false, "ignore the saved place and walk from the start")
	fl.BoolVar(&f.rehash, "rehash", false, "hash again files the ledger already holds at the same size")
	fl.IntVar(&f.jobs, "jobs", max(1, runtime.NumCPU()-1), "files judged at once")
	fl.DurationVar(&f.every, "progress-every", 10*time.Second, "interval of progress lines when stderr is not a terminal")
	c.MarkFlagRequired("synapse-media-store")
	return c
}

// runBackfill builds the stages from the configuration and runs the
// backfill; the summary goes to stdout, progress to stderr.
func runBackfill(ctx context.Context, stdout, stderr io.Writer, f backfillFlags) error {
	app, _, err := loadApp(f.config, f.adapter)
	if err != nil {
		return err
	}
	sc, err := app.plainConfig(caddy.NewReplacer())
	if err != nil {
		return err
	}
	serverName := f.serverName
	if serverName == "" {
		serverName = sc.Proxy.ServerName
	}
	if f.ledgerSpec == "" && app.Ledger == nil {
		return errors.New("no ledger: the configuration names none; give --ledger")
	}
	log := stderrLogger(stderr)
	// The proxy's own matcher and hashing, minus what would act or reach
	// out: no audit, notices, quarantine, whoami or remote backends.
	mc := sc
	mc.HMA, mc.Services, mc.Matrix, mc.Webhook, mc.SynapseAdmin, mc.Audit, mc.Homeserver = nil, nil, nil, "", nil, nil, ""
	mc.Arachnid = nil
	mc.Proxy.MaxConcurrentHashing = f.jobs
	mc.Logger = log
	svc, err := service.New(mc)
	if err != nil {
		return err
	}
	defer svc.Close()

	var store ledger.Store
	if f.ledgerSpec != "" {
		store, err = openLedger(ctx, f.ledgerSpec)
	} else {
		var sp ledger.Spec
		if sp, err = app.Ledger.spec(caddy.NewReplacer()); err == nil {
			store, err = ledger.Open(ctx, sp)
		}
	}
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	defer store.Close()
	release, ok, err := store.TryLock(ctx, "backfill")
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	if !ok {
		return errors.New("another backfill is writing this ledger")
	}
	defer release()

	cfg := backfill.Config{
		MediaStore: f.mediaStore, ServerName: serverName, Scanner: svc.Proxy(), Matcher: svc.Guard(), Ledger: store,
		Jobs: f.jobs, Restart: f.restart, Rehash: f.rehash, Out: stdout,
		Progress: stderr, Terminal: isTerminal(stderr), ProgressInterval: f.every,
	}
	cfg.Banks = svc.LedgerBanks
	if f.synapseDB != "" {
		dsn, err := secret(caddy.NewReplacer(), "--synapse-db", f.synapseDB)
		if err != nil {
			return err
		}
		db, err := backfill.OpenSynapseDB(ctx, dsn, f.jobs)
		if err != nil {
			return err
		}
		defer db.Close()
		cfg.Resolver = db
	}
	var drain func()
	if f.act {
		actor, wait, err := backfillActor(ctx, sc, log)
		if err != nil {
			return err
		}
		cfg.Actor, drain = actor, wait
	}
	sum, runErr := backfill.Run(ctx, cfg)
	if drain != nil {
		drain()
	}
	sum.Print(stdout, f.act)
	return runErr
}

// backfillActor acts on a backfill's matches as the proxy acts on a
// retro-scan's (package actions: quarantine through synapse_admin, one
// notice per match to the configured channels); wait lets queued notices
// and quarantines finish (up to a minute). The proxy's audit log is not
// written: a running proxy holds it open, and two writers would tear its
// lines; the ledger records each match as blocked.
func backfillActor(ctx context.Context, sc service.Config, log *zap.Logger) (backfill.Actor, func(), error) {
	var ac actions.Config
	if sc.SynapseAdmin != nil {
		admin, err := homeserver.NewAdmin(*sc.SynapseAdmin)
		if err != nil {
			return nil, nil, fmt.Errorf("synapse_admin: %w", err)
		}
		ac.Admin = admin
	}
	type pending interface{ Stats() notify.Stats }
	var queues []pending
	var closers []func()
	if sc.Matrix != nil {
		mc := *sc.Matrix
		mc.Logger = log.Named("notify")
		m, err := notify.NewMatrix(mc)
		if err != nil {
			return nil, nil, fmt.Errorf("notify matrix: %w", err)
		}
		if err := m.Start(ctx); err != nil {
			return nil, nil, fmt.Errorf("notify: %w", err)
		}
		ac.Matrix, queues, closers = m, append(queues, m), append(closers, m.Close)
	}
	if sc.Webhook != "" {
		w, err := notify.NewWebhook(notify.WebhookConfig{URL: sc.Webhook, Logger: log.Named("webhook")})
		if err != nil {
			return nil, nil, fmt.Errorf("notify webhook: %w", err)
		}
		ac.Webhook, queues, closers = w, append(queues, w), append(closers, w.Close)
	}
	if ac.Admin == nil && ac.Matrix == nil && ac.Webhook == nil {
		return nil, nil, errors.New("--act: the configuration has neither synapse_admin nor notify: there is nothing to act with")
	}
	ac.Logger = log
	acts := actions.New(ac)
	wait := func() {
		acts.Wait()
		deadline := time.Now().Add(time.Minute)
		for _, q := range queues {
			for q.Stats().Pending > 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
		}
		for _, c := range closers {
			c()
		}
		acts.Close()
	}
	return storedMatchActor{acts}, wait, nil
}

// storedMatchActor hands a backfill's matches to the actions.
type storedMatchActor struct{ a *actions.Actions }

func (s storedMatchActor) RetroBlock(_ context.Context, r ledger.Record, v matcher.Verdict) error {
	s.a.StoredMatch(r, v, actions.ByBackfill)
	return nil
}

// loadApp loads a configuration as caddy run does and decodes its
// mediaguard app (defaults when the global block is absent); raw is the
// whole adapted JSON.
func loadApp(config, adapter string) (App, []byte, error) {
	var app App
	raw, _, _, err := caddycmd.LoadConfig(config, adapter)
	if err != nil {
		return app, nil, fmt.Errorf("loading the configuration: %w", err)
	}
	if len(raw) == 0 {
		return app, nil, errors.New("no configuration: no Caddyfile in the current directory; name one with --config")
	}
	var parsed struct {
		Apps struct {
			Mediaguard json.RawMessage `json:"mediaguard"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(raw, &parsed); err != nil {
		return app, nil, fmt.Errorf("the configuration is not a JSON object: %w", err)
	}
	if len(parsed.Apps.Mediaguard) > 0 {
		if err := app.UnmarshalJSON(parsed.Apps.Mediaguard); err != nil {
			return app, nil, fmt.Errorf("apps.mediaguard: %w", err)
		}
	}
	if err := app.checkSizes(); err != nil {
		return app, nil, err
	}
	return app, raw, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// stderrLogger logs warnings and errors (a hashing worker that died, a
// bank entry skipped) to stderr, between the progress lines.
func stderrLogger(w io.Writer) *zap.Logger {
	enc := zap.NewDevelopmentEncoderConfig()
	enc.TimeKey = ""
	return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(w), zap.WarnLevel))
}

// openLedger opens the ledger --ledger names (see cmdbackfill_ledger.go);
// without it, the configuration's ledger option is opened.
var openLedger = func(ctx context.Context, spec string) (ledger.Store, error) {
	return openLedgerSpec(ctx, spec)
}
