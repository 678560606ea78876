package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/homeserver"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
	"github.com/mediaguard/mediaguard/ncmec"
	"github.com/mediaguard/mediaguard/notify"
	"github.com/mediaguard/mediaguard/service"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the `mediaguard` app: the state every mediaguard handler shares
// (banks, remote lookup clients, breakers, caches and the verdict memory).
// It is configured by the Caddyfile's global `mediaguard { ... }` block.
type App struct {
	// Mode is "enforce" (the default: matches are blocked) or "report"
	// (matches are audited, counted and posted as "would have blocked",
	// and the media passes). It applies to every bank and backend that
	// sets no mode of its own, so a new list can be rolled out in report
	// mode beside enforcing ones, or everything dry-run at first.
	Mode string `json:"mode,omitempty"`
	// Banks are local hash-list files (text, CSV or NCMEC XML), consulted
	// first and in order. They are reloaded within 2 seconds of a change.
	// Each may set its own mode, category and default label.
	Banks []matcher.BankConfig `json:"banks,omitempty"`
	// PDQThreshold is the largest PDQ Hamming distance that counts as a
	// match (default 31, at most 63).
	PDQThreshold int `json:"pdq_threshold,omitempty"`
	// MinPDQQuality is the PDQ quality below which perceptual hashes are
	// not matched (default 50; exact hashes are always matched).
	MinPDQQuality *int `json:"min_pdq_quality,omitempty"`
	// Dihedral also matches the 8 rotations and mirror images of every
	// image against local banks.
	Dihedral bool `json:"dihedral,omitempty"`
	// PDQSearch selects the variants of every picture hashed and matched
	// beside the forms a viewer is shown, each undoing a cheap edit made
	// to slip a picture past hash lists: "default" (when empty) adds the
	// picture with borders trimmed, caption bars peeled and gaps removed,
	// the quadrants of a collage, the negative and the contrast
	// stretched; "deep" adds half-size windows and small rotations, at
	// several times the hashing cost; "off" hashes only what a viewer is
	// shown.
	PDQSearch string `json:"pdq_search,omitempty"`
	// PDQExact hashes JPEGs from their decoded pixels, the PDQ reference
	// convention bit for bit, as mediaguard hash --exact does. Off by
	// default: a JPEG is then hashed from its DCT coefficients (the same
	// filter, clamping folded in, without the decoder's rounding), for
	// a fraction of the CPU (BENCHMARKS.md), within 4 bits of the pixels' hash over the
	// test corpus (BENCHMARKS.md). mediaguard hash computes what the
	// proxy does (--exact with this option), so bank entries made with
	// it match exactly.
	PDQExact bool `json:"pdq_exact,omitempty"`
	// NCMEC are banks pulled from NCMEC's hash-sharing API and kept up to
	// date (see NCMECSync); each is also a local bank, after Banks.
	NCMEC []NCMECSync `json:"ncmec,omitempty"`
	// HMA lists ThreatExchange HMA 2.0 instances asked after local banks.
	HMA []HMABackend `json:"hma,omitempty"`
	// Arachnid is Arachnid Shield, asked after HMA with PDQ hashes only.
	Arachnid *ArachnidBackend `json:"arachnid,omitempty"`
	// Services lists other JSON lookup services (the Mjolnir HMA plugin's
	// contract, e.g. another mediaguard) asked after local banks and HMA.
	Services []ServiceBackend `json:"services,omitempty"`
	// OnMatcherError is the policy when a remote backend cannot answer:
	// "open" (allow, recorded as unscanned; the default) or "closed"
	// (refuse with 503). Local banks are consulted either way.
	OnMatcherError string `json:"on_matcher_error,omitempty"`
	// OnUndecodableImage is the policy for media that is an image by its
	// bytes but cannot be decoded here: "block" (the default; 403 on
	// upload, 404 on download, audited as undecodable) or "allow"
	// (recorded as unscannable). A viewer may still be shown such a file.
	OnUndecodableImage string `json:"on_undecodable_image,omitempty"`
	// Review configures the review band, the confirmed bank and the
	// allowlists (see ReviewSettings).
	Review
	// Cache tunes the verdict cache for remote answers.
	Cache *CacheSettings `json:"cache,omitempty"`
	// Breaker tunes the per-backend circuit breakers.
	Breaker *BreakerSettings `json:"breaker,omitempty"`
	// MaxUploadSize is the largest upload accepted, in bytes (default
	// 100 MiB; larger answers 413 M_TOO_LARGE). Keep it ≥ Synapse's.
	MaxUploadSize int64 `json:"max_upload_size,omitempty"`
	// MemoryBuffer is how much of an upload is held in memory before
	// spilling to a temp file (default 4 MiB).
	MemoryBuffer int64 `json:"memory_buffer,omitempty"`
	// TempDir is where uploads spill (default: the system temp dir), in a
	// private subdirectory mediaguard-UID (0700, refused if planted by
	// another user). Files are created 0600 and always removed; leftovers
	// of a crash are swept at start.
	TempDir string `json:"temp_dir,omitempty"`
	// MaxDownloadBuffer is how much of an unknown download is buffered and
	// judged before any byte is sent (default 16 MiB); larger downloads
	// stream while hashed and are cut off on a late match.
	MaxDownloadBuffer int64 `json:"max_download_buffer,omitempty"`
	// MaxBufferedTotal bounds the bytes all concurrent uploads and
	// downloads hold in memory while being judged (default 32 MiB); past
	// it, bodies are spooled to temp_dir and judged from disk (federation
	// downloads stream with exact hashes only).
	MaxBufferedTotal int64 `json:"max_buffered_total,omitempty"`
	// MaxConcurrentHashing bounds how many bodies are decoded and
	// PDQ-hashed at once (default: CPU cores minus one, at least 1). It
	// bounds the memory images take under load and leaves a core for the
	// downloads that need no hashing; others wait their turn.
	MaxConcurrentHashing int `json:"max_concurrent_hashing,omitempty"`
	// Hashing is where images are decoded and PDQ-hashed: "process" (the
	// default) in max_concurrent_hashing worker processes of this same
	// binary at idle priority, so a decoder crash or blow-up costs one
	// worker (restarted) and decoding takes neither CPU nor garbage
	// collection from proxying; or "inline", on niced threads of Caddy's
	// process. Where no worker can start, images are hashed inline.
	Hashing string `json:"hashing,omitempty"`
	// UploadIdleTimeout cuts off an upload whose client sends nothing for
	// this long, answering 408 (default 60s, like nginx's
	// client_body_timeout); a negative value disables it.
	UploadIdleTimeout caddy.Duration `json:"upload_idle_timeout,omitempty"`
	// MaxPixels is the most pixels an image is decoded at in full
	// (default 16 million); larger ones (big phone photos, decompression
	// bombs) are decoded at a reduced scale that fits, which PDQ barely
	// notices, so a bomb costs bounded memory and time.
	MaxPixels int `json:"max_pixels,omitempty"`
	// ServerName is the homeserver's server name, used to key federation
	// media requests; learned from the first upload when empty.
	ServerName string `json:"server_name,omitempty"`
	// MemoryEntries bounds the per-media-ID verdict memory (default 100000).
	MemoryEntries int `json:"memory_entries,omitempty"`
	// Ledger is the media ledger: every media judged is recorded (digests
	// and IDs, never bytes), known media is decided from it without
	// hashing, and a bank change is retro-scanned against it. Off when
	// nil.
	Ledger *LedgerSettings `json:"ledger,omitempty"`
	// LedgerRetention drops ledger records of media not seen for this
	// long; 0 keeps them.
	LedgerRetention caddy.Duration `json:"ledger_retention,omitempty"`
	// Homeserver is the homeserver's client API base URL (usually the
	// reverse_proxy upstream, e.g. http://127.0.0.1:8008). The requester
	// of every blocked or unscanned request is resolved with
	// /account/whoami using the request's own token (cached by a hash of
	// the token, never the token) for logs, audit records and notices.
	// When empty, the homeserver is synapse_admin's, else the one
	// reverse_proxy upstream of the site holding the mediaguard handler,
	// else notify matrix's (see whoami.go); "off" resolves no requester.
	Homeserver string `json:"homeserver,omitempty"`
	// Notify tells moderators of every block (upload, download, late
	// match), without ever blocking the request path.
	Notify *NotifySettings `json:"notify,omitempty"`
	// SynapseAdmin quarantines blocked media the homeserver stores (late
	// matches and blocked downloads) through Synapse's admin API.
	SynapseAdmin *SynapseAdmin `json:"synapse_admin,omitempty"`
	// AuditLog is the durable decision record: every block, every
	// unscannable, unscanned (fail-open) and refused decision is appended
	// and fsynced before the response is sent. Read it with
	// `caddy mediaguard audit --log PATH`. Empty disables it.
	AuditLog string `json:"audit_log,omitempty"`
	// AuditMaxSize rotates the audit log at this size in bytes (default
	// 64 MiB; 5 old files are kept). The Caddyfile's name; the old JSON
	// name audit_max_bytes is still read.
	AuditMaxSize int64 `json:"audit_max_size,omitempty"`
	// LogCleanScans also records clean decisions (off by default, for the
	// users' privacy, like the Mjolnir plugin's setting).
	LogCleanScans bool `json:"log_clean_scans,omitempty"`

	ctx    caddy.Context
	log    *zap.Logger
	svc    *service.Service
	events *caddyevents.App

	auditHeld bool
	// ncmecCfgs are the resolved ncmec syncs (plainConfig), ncmecHeld
	// those this app runs (Start).
	ncmecCfgs []ncmec.Config
	ncmecHeld *ncmecHolds
	// ledgerKey is the shared ledger this app holds, "" for none.
	ledgerKey   string
	releaseOnce *sync.Once
	// learn is this app's share of the quarantine learner (learn.go).
	learn learnState
	// drain closes svc and releases the audit log once this app has been
	// cleaned up and its last request has finished.
	drain *drain
	// whoami is where requesters are resolved (whoami.go).
	whoami *whoamiState
}

// HMABackend is one ThreatExchange HMA 2.0 instance.
type HMABackend struct {
	// URL is HMA's base URL, e.g. http://127.0.0.1:5100.
	URL string `json:"url"`
	// APIKey is sent as a bearer token (for a proxy in front of HMA);
	// use a placeholder such as {env.HMA_TOKEN}.
	APIKey string `json:"api_key,omitempty"`
	// Banks restricts lookups to these HMA banks (default: all).
	Banks []string `json:"banks,omitempty"`
	// Timeout bounds each request (default 2s).
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// Mode is "enforce" or "report" for this backend's matches (default:
	// the app's mode).
	Mode string `json:"mode,omitempty"`
	// Category is the kind of harm its banks list: csam, ncii, terror or
	// spam.
	Category string `json:"category,omitempty"`
}

// ServiceBackend is one JSON lookup service.
type ServiceBackend struct {
	// Name identifies it in verdicts, logs and metrics (default: its host).
	Name string `json:"name,omitempty"`
	// URL receives the lookup POSTs.
	URL string `json:"url"`
	// APIKey is sent as a bearer token; use a placeholder.
	APIKey string `json:"api_key,omitempty"`
	// Timeout bounds each request (default 2s).
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// Mode is "enforce" or "report" for this backend's matches (default:
	// the app's mode).
	Mode string `json:"mode,omitempty"`
	// Category is the kind of harm its lists hold: csam, ncii, terror or
	// spam.
	Category string `json:"category,omitempty"`
}

// CacheSettings tune the verdict cache (remote answers only; local banks
// are asked every time so a bank edit takes effect at once).
type CacheSettings struct {
	// MatchTTL is how long a remote match is remembered (default 1h).
	MatchTTL caddy.Duration `json:"match_ttl,omitempty"`
	// MissTTL is how long a remote non-match is remembered (default 30s,
	// so new list entries take effect soon).
	MissTTL caddy.Duration `json:"miss_ttl,omitempty"`
	// MaxEntries caps the cache (default 100000): hashes come from
	// clients, so it must not grow without bound.
	MaxEntries int `json:"max_entries,omitempty"`
}

// BreakerSettings tune the circuit breaker in front of each remote.
type BreakerSettings struct {
	// ConsecutiveFailures opens the breaker (default 5).
	ConsecutiveFailures uint32 `json:"consecutive_failures,omitempty"`
	// FailureRatio opens it once MinRequests were seen (default 0.5).
	FailureRatio float64 `json:"failure_ratio,omitempty"`
	// MinRequests before the ratio counts (default 20).
	MinRequests uint32 `json:"min_requests,omitempty"`
	// OpenTimeout is how long it stays open before a real request is let
	// through as a probe (default 30s); HMA and services are probed in the
	// background meanwhile and it closes as soon as they answer again.
	OpenTimeout caddy.Duration `json:"open_timeout,omitempty"`
	// CallTimeout bounds each call inside the breaker (default 2s).
	CallTimeout caddy.Duration `json:"call_timeout,omitempty"`
}

// UnmarshalJSON reads the app's JSON as strictly as Caddy does (an
// unknown field is an error), taking audit_max_bytes, the old name of
// audit_max_size, when the new one is absent.
func (a *App) UnmarshalJSON(b []byte) error {
	type plain App
	aux := struct {
		*plain
		AuditMaxBytes int64 `json:"audit_max_bytes,omitempty"`
	}{plain: (*plain)(a)}
	if err := strictUnmarshal(b, &aux); err != nil {
		return err
	}
	if a.AuditMaxSize == 0 {
		a.AuditMaxSize = aux.AuditMaxBytes
	}
	return nil
}

// strictUnmarshal is json.Unmarshal refusing unknown fields, as Caddy
// decodes module configs.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("unexpected data after the JSON object")
	}
	return nil
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "mediaguard", New: func() caddy.Module { return new(App) }}
}

// Provision maps the config onto a service.Config, resolving
// placeholders and secrets, and builds the service.
func (a *App) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	a.log = ctx.Logger()
	a.releaseOnce = new(sync.Once)
	a.drain = &drain{close: a.close}
	cfg, err := a.plainConfig(caddy.NewReplacer())
	if err != nil {
		return err
	}
	a.planWhoami(&cfg)
	cfg.Proxy.OnSpool = func(d int64) { spoolBytes.Add(float64(d)) }
	cfg.Proxy.OnResponse = countResponse
	cfg.Proxy.Runner = hashRunner()
	cfg.Observer = &observer{app: a}
	cfg.OnBreakerChange = func(name, from, to string) {
		// The Guard logs each transition once; here it is only counted.
		breakerState.WithLabelValues(name).Set(breakerStateValue(to))
		breakerTransitions.WithLabelValues(name, to).Inc()
	}
	cfg.OnBackendCall = func(backend string, took time.Duration) {
		backendSeconds.WithLabelValues(backend).Observe(took.Seconds())
	}
	cfg.Logger = a.log
	if ev, err := ctx.App("events"); err == nil {
		a.events, _ = ev.(*caddyevents.App)
	}
	if a.AuditLog != "" {
		// One open log per path for the whole process: during a config
		// reload the old and new apps overlap, and a second Open would
		// "repair" a line the old app is still writing.
		val, loaded, err := auditPool.LoadOrNew(a.AuditLog, func() (caddy.Destructor, error) {
			l, err := audit.Open(audit.Options{Path: a.AuditLog, MaxBytes: a.AuditMaxSize})
			return sharedAudit{l}, err
		})
		if err != nil {
			return fmt.Errorf("mediaguard: audit_log: %w", err)
		}
		cfg.Audit = val.(sharedAudit).Log
		a.auditHeld = true
		if rec := cfg.Audit.Recovery(); !loaded && (rec.TornBytes > 0 || rec.Invalid > 0) {
			a.log.Warn("audit log recovered after an unclean stop", zap.String("path", a.AuditLog),
				zap.Int64("torn_bytes_dropped", rec.TornBytes), zap.Int("invalid_lines", rec.Invalid))
		}
	}
	if a.Ledger != nil {
		sp, err := a.Ledger.spec(caddy.NewReplacer())
		if err != nil {
			return err
		}
		if cfg.Ledger, a.ledgerKey, err = openSharedLedger(sp); err != nil {
			return err
		}
	}
	if err := a.prepareNCMEC(); err != nil {
		return err
	}
	// Before the banks load: the learned bank's file is created here.
	if err := a.provisionLearn(cfg); err != nil {
		return err
	}
	hashRunner().SetLogger(a.log.Named("hashing"))
	if a.svc, err = service.New(cfg); err != nil {
		return fmt.Errorf("mediaguard: %w", err)
	}
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	backendSeconds.WithLabelValues(matcher.LocalBackend)
	for _, name := range a.svc.Remotes() {
		breakerState.WithLabelValues(name).Set(0)
		backendSeconds.WithLabelValues(name)
	}
	for _, b := range a.Banks {
		allowBankLabels(b.Name)
	}
	for _, h := range a.HMA {
		allowBankLabels(h.Banks...)
	}
	if a.Arachnid != nil {
		allowBankLabels(matcher.ArachnidBanks...)
	}
	return nil
}

// plainConfig maps the app's settings onto a service.Config: placeholders
// and secrets resolved, the options with a closed set of values parsed.
// It opens, starts and registers nothing (no audit log, hashing runner,
// metrics or logger: Provision adds those), so `caddy mediaguard doctor`
// reads a configuration through the very mapping a start uses.
func (a *App) plainConfig(repl replacer) (service.Config, error) {
	if a.PDQThreshold < 0 || a.PDQThreshold > matcher.MaxPDQThreshold {
		return service.Config{}, fmt.Errorf("mediaguard: pdq_threshold %d out of range 0..%d", a.PDQThreshold, matcher.MaxPDQThreshold)
	}
	cfg := service.Config{
		Local: matcher.LocalConfig{Banks: a.Banks, PDQThreshold: a.PDQThreshold, MinPDQQuality: a.MinPDQQuality, Dihedral: a.Dihedral},
		Proxy: mediaproxy.Config{
			MaxUploadSize:        a.MaxUploadSize,
			MemoryBuffer:         a.MemoryBuffer,
			TempDir:              a.TempDir,
			MaxDownloadBuffer:    a.MaxDownloadBuffer,
			MaxBufferedTotal:     a.MaxBufferedTotal,
			UploadIdleTimeout:    time.Duration(a.UploadIdleTimeout),
			MaxConcurrentHashing: a.MaxConcurrentHashing,
			MaxPixels:            a.MaxPixels,
			Dihedral:             a.Dihedral,
			ServerName:           a.ServerName,
		},
		Mode:            a.Mode,
		MemoryEntries:   a.MemoryEntries,
		LogCleanScans:   a.LogCleanScans,
		LedgerRetention: time.Duration(a.LedgerRetention),
	}
	var err error
	cfg.Proxy.PDQExact = a.PDQExact
	if cfg.Proxy.PDQSearch, err = service.ParsePDQSearch(a.PDQSearch); err != nil {
		return cfg, fmt.Errorf("mediaguard: %w", err)
	}
	if cfg.FailPolicy, err = service.ParseFailPolicy(a.OnMatcherError); err != nil {
		return cfg, fmt.Errorf("mediaguard: %w", err)
	}
	if cfg.Proxy.OnUndecodableImage, err = service.ParseUndecodable(a.OnUndecodableImage); err != nil {
		return cfg, fmt.Errorf("mediaguard: %w", err)
	}
	if cfg.Proxy.Hashing, err = service.ParseHashing(a.Hashing); err != nil {
		return cfg, fmt.Errorf("mediaguard: %w", err)
	}
	if err := a.Review.plain(&cfg); err != nil {
		return cfg, err
	}
	for _, h := range a.HMA {
		key, err := secret(repl, "mediaguard: hma "+h.URL+" api_key", h.APIKey)
		if err != nil {
			return cfg, err
		}
		cfg.HMA = append(cfg.HMA, matcher.HMAConfig{URL: repl.ReplaceAll(h.URL, ""), APIKey: key, Banks: h.Banks, Timeout: time.Duration(h.Timeout),
			Policy: matcher.BackendPolicy{Mode: h.Mode, Category: h.Category}})
	}
	if a.Arachnid != nil {
		if cfg.Arachnid, err = a.Arachnid.plain(repl); err != nil {
			return cfg, err
		}
	}
	for _, sv := range a.Services {
		key, err := secret(repl, "mediaguard: service "+sv.URL+" api_key", sv.APIKey)
		if err != nil {
			return cfg, err
		}
		cfg.Services = append(cfg.Services, matcher.ServiceConfig{Name: sv.Name, URL: repl.ReplaceAll(sv.URL, ""), APIKey: key, Timeout: time.Duration(sv.Timeout),
			Policy: matcher.BackendPolicy{Mode: sv.Mode, Category: sv.Category}})
	}
	if c := a.Cache; c != nil {
		cfg.Cache = matcher.CacheConfig{MatchTTL: time.Duration(c.MatchTTL), MissTTL: time.Duration(c.MissTTL), MaxEntries: c.MaxEntries}
	}
	if b := a.Breaker; b != nil {
		cfg.Breaker = matcher.BreakerConfig{ConsecutiveFailures: b.ConsecutiveFailures, FailureRatio: b.FailureRatio, MinRequests: b.MinRequests, OpenTimeout: time.Duration(b.OpenTimeout), CallTimeout: time.Duration(b.CallTimeout)}
	}
	if n := a.Notify; n != nil {
		if cfg.Webhook = repl.ReplaceAll(n.Webhook, ""); n.Webhook != "" && cfg.Webhook == "" {
			return cfg, errors.New("mediaguard: notify webhook: notify: webhook URL is required")
		}
		if m := n.Matrix; m != nil {
			tok, err := secret(repl, "mediaguard: notify matrix access_token", m.AccessToken)
			if err != nil {
				return cfg, err
			}
			cfg.Matrix = &notify.MatrixConfig{Homeserver: repl.ReplaceAll(m.Homeserver, ""), AccessToken: tok, Room: repl.ReplaceAll(m.Room, ""), QueueSize: m.QueueSize, Commands: m.Commands}
			if cfg.Commands, err = a.moderatorCommands(repl, m); err != nil {
				return cfg, err
			}
		}
	}
	if sa := a.SynapseAdmin; sa != nil {
		tok, err := secret(repl, "mediaguard: synapse_admin access_token", sa.AccessToken)
		if err != nil {
			return cfg, err
		}
		cfg.SynapseAdmin = &homeserver.AdminConfig{Homeserver: repl.ReplaceAll(sa.Homeserver, ""), AccessToken: tok}
		cfg.QuarantineUserMedia, cfg.SuspendUser = sa.QuarantineUserMedia, sa.SuspendUser
	}
	if a.Homeserver != whoamiOff {
		cfg.Homeserver = repl.ReplaceAll(a.Homeserver, "")
	}
	if err := a.ncmecPlain(repl, &cfg); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// Validate checks what Provision could not.
func (a *App) Validate() error {
	if err := a.checkSizes(); err != nil {
		return err
	}
	if a.TempDir != "" {
		if st, err := os.Stat(a.TempDir); err != nil || !st.IsDir() {
			return fmt.Errorf("mediaguard: temp_dir %q is not a directory", a.TempDir)
		}
	}
	if len(a.Banks) == 0 && len(a.NCMEC) == 0 && len(a.HMA) == 0 && len(a.Services) == 0 && a.Arachnid == nil {
		a.log.Warn("no banks, HMA or lookup services configured: every upload will be allowed")
	}
	return nil
}

// Start begins hot-reloading the bank files and delivering notices
// (including those a previous run recorded but never delivered).
func (a *App) Start() error {
	if err := a.svc.Start(a.ctx); err != nil {
		return fmt.Errorf("mediaguard: %w", err)
	}
	a.resolveWhoami()
	if err := a.startNCMEC(); err != nil {
		return err
	}
	if err := a.startLearn(); err != nil {
		return err
	}
	// The running config's app feeds the scrape-time metrics. Not from
	// Provision: when another module fails to provision, Caddy discards
	// this app and keeps running the old one.
	currentApp.Store(a)
	return nil
}

// Cleanup releases what Provision opened: at once if no request is using
// it, else when the last one finishes (see drain). Caddy calls it after
// Stop, once every app of the config has stopped, on exit and on reload
// alike, and (without Stop) when this or another module fails to
// provision.
func (a *App) Cleanup() error {
	a.Stop()
	a.stopNCMEC()
	if a.drain != nil {
		a.drain.release()
	} else {
		a.close()
	}
	return nil
}

// Stop hands the metrics over to the next config's app. Closing waits for
// Cleanup: Caddy may stop this app before the HTTP app that serves
// requests through it.
func (a *App) Stop() error {
	// Only if it is still this app: on a reload the new app has started
	// before the old one stops.
	currentApp.CompareAndSwap(a, nil)
	return nil
}

// close ends background work and releases the audit log; every close in
// it is idempotent.
func (a *App) close() {
	// The learner first: a round in progress uses the service's proxy
	// and matcher.
	a.stopLearn()
	a.stopNCMEC()
	if a.svc != nil {
		a.svc.Close()
	}
	if a.releaseOnce != nil {
		a.releaseOnce.Do(func() {
			if a.auditHeld {
				auditPool.Delete(a.AuditLog)
			}
			if a.ledgerKey != "" {
				ledgerPool.Delete(a.ledgerKey)
			}
			a.dropLearn()
		})
	}
}

// checkSizes refuses negative sizes and counts (doctor checks them too).
func (a *App) checkSizes() error {
	if a.MaxUploadSize < 0 || a.MemoryBuffer < 0 || a.MaxDownloadBuffer < 0 || a.MaxBufferedTotal < 0 || a.MaxPixels < 0 || a.MaxConcurrentHashing < 0 {
		return errors.New("mediaguard: sizes must not be negative")
	}
	return nil
}

// auditPool shares open audit logs across config reloads.
var auditPool = caddy.NewUsagePool()

type sharedAudit struct{ *audit.Log }

func (s sharedAudit) Destruct() error { return s.Close() }

// Interface guards.
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
