// Package service wires mediaguard's plain-Go stages into one running
// instance from a plain Config: the local banks and remote lookup clients
// behind the matcher guard, the media proxy with the actions (audit,
// notices, quarantine) as its observer, and the lookup API over the same
// guard. The Config holds resolved values: no placeholders, no JSON. The
// Caddy adapter maps its JSON and Caddyfile onto it, shares state across
// config reloads and registers metrics; this package knows none of that.
//
// It must not import Caddy.
package service

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/actions"
	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/hashing/external"
	"github.com/mediaguard/mediaguard/homeserver"
	"github.com/mediaguard/mediaguard/ledger"
	"github.com/mediaguard/mediaguard/lookupapi"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
	"github.com/mediaguard/mediaguard/modcmd"
	"github.com/mediaguard/mediaguard/notify"
)

// Config configures a Service. Zero values take each stage's defaults.
type Config struct {
	// Local configures the local banks (its Logger is set by New).
	Local matcher.LocalConfig
	// HMA lists ThreatExchange HMA 2.0 instances asked after the local
	// banks. An empty Name is the URL's host; MinPDQQuality is
	// Local.MinPDQQuality and Logger is set by New.
	HMA []matcher.HMAConfig
	// Arachnid, when set, is Arachnid Shield, asked after HMA with the
	// query's PDQ hashes only; MinPDQQuality is Local.MinPDQQuality.
	Arachnid *matcher.ArachnidConfig
	// Services lists other JSON lookup services, asked after HMA. An
	// empty Name is the URL's host; MinPDQQuality is Local.MinPDQQuality.
	Services []matcher.ServiceConfig
	// Mode is the mode of every bank and backend whose own mode is
	// empty: matcher.ModeEnforce (the default, when empty) or
	// matcher.ModeReport, in which matches are reported as "would have
	// blocked" and the media passes.
	Mode string
	// FailPolicy applies when a remote cannot answer.
	FailPolicy matcher.FailPolicy
	// Cache and Breaker tune the guard in front of the remotes.
	Cache   matcher.CacheConfig
	Breaker matcher.BreakerConfig
	// OnBreakerChange is told of every breaker transition (metrics).
	OnBreakerChange func(name, from, to string)
	// OnBackendCall is told how long each backend took to answer one
	// query (metrics); see matcher.GuardConfig.
	OnBackendCall func(backend string, took time.Duration)

	// ConfirmedBank names the bank of Local.Banks that ConfirmDetection
	// writes (an owned bank, created when missing); "" for none.
	ConfirmedBank string
	// Allowlist names the allowlist of Local.Banks (BankConfig.Allow)
	// that DismissDetection writes (an owned bank); "" for none.
	Allowlist string

	// Proxy configures the media proxy. Matcher, Memory, Observer, UserOf
	// and Logger are set by New.
	Proxy mediaproxy.Config
	// MemoryEntries bounds the per-media-ID verdict memory (default
	// 100000).
	MemoryEntries int
	// Ledger, when set, is the media ledger's store: every media judged
	// is recorded there, known media is decided from it without hashing,
	// and a bank change is retro-scanned against it. It is the caller's:
	// Close leaves it open (a server shares it across config reloads).
	Ledger ledger.Store
	// LedgerRetention drops ledger records not seen for this long; 0
	// keeps them.
	LedgerRetention time.Duration
	// Homeserver is the client API base URL used to resolve the requester
	// of blocked and unscanned requests (whoami with the request's own
	// token); empty records every requester as unknown, unless
	// HomeserverLater.
	Homeserver string
	// HomeserverLater says the homeserver may only be known once the
	// server is up (the adapter learns it from the reverse proxy's
	// configuration): requesters are resolved from SetHomeserver on.
	HomeserverLater bool

	// Audit is the durable decision record; nil records nothing. It is
	// the caller's: Close leaves it open.
	Audit *audit.Log
	// LogCleanScans also records clean decisions.
	LogCleanScans bool
	// Matrix, when set, posts a notice per block to a management room
	// (OnDelivered and Logger are set by New).
	Matrix *notify.MatrixConfig
	// Webhook, when set, POSTs a notice per block to this URL.
	Webhook string
	// SynapseAdmin, when set, quarantines blocked media the homeserver
	// stores.
	SynapseAdmin *homeserver.AdminConfig
	// QuarantineUserMedia and SuspendUser also act on the requester of a
	// block (with SynapseAdmin).
	QuarantineUserMedia, SuspendUser bool
	// Observer, when set, is told of every decision after the actions
	// (the adapter's metrics, variables and events).
	Observer mediaproxy.Observer
	// Commands, when set (with Matrix), has the bot take moderators'
	// commands in the management room (see CommandsConfig).
	Commands *CommandsConfig

	// Logger receives structured logs; nil discards them.
	Logger *zap.Logger
}

// Service is one running mediaguard.
type Service struct {
	log      *zap.Logger
	local    *matcher.Local
	guard    *matcher.Guard
	remotes  []string
	proxy    *mediaproxy.Proxy
	acts     *actions.Actions
	notifier *notify.Matrix
	webhook  *notify.Webhook
	// bot takes moderators' commands (nil without Commands); admin is
	// the Synapse admin API client (nil without one); audit is the
	// caller's audit log; recent counts the last hour's decisions.
	bot    *modcmd.Bot
	admin  *homeserver.Admin
	audit  *audit.Log
	recent *recent
	// fetch reaches stored media for watched rooms (nil unless watching).
	fetch *watchFetch
	// book is the media ledger (nil without one); changes queues bank
	// changes for its retro-scans, run one at a time by Start's worker.
	book    *ledger.Book
	changes chan matcher.BankChange
	// profile is the hashing profile ledger records carry.
	profile string
	// lostChange is set when a bank change could not be queued: the
	// next retro-scan re-judges the whole ledger.
	lostChange atomic.Bool
	// stopRetro ends the retro-scan worker (Close).
	stopRetro context.CancelFunc
	// retros counts the retro-scans run here, by outcome; retroHits the
	// stored media they blocked.
	retroRuns, retroSkipped, retroFailed, retroHits atomic.Int64
	wg                                              sync.WaitGroup
	// who resolves requesters (nil: not resolved); see SetHomeserver.
	who    atomic.Pointer[homeserver.Whoami]
	whoLog *zap.Logger
	// decisions holds what moderators' confirmations and dismissals
	// need (see decide.go).
	decisions decisions
	// stories ties the management room's notices about one file
	// together, and links is the lookup API's way into them (both nil
	// without the Matrix notifier); stopLinks ends the linker (Close).
	stories   *notify.Stories
	links     *linker
	stopLinks context.CancelFunc
}

// New builds a Service; nothing runs in the background until Start. On
// error, what was built is closed again.
func New(cfg Config) (_ *Service, err error) {
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	s := &Service{log: log, audit: cfg.Audit, recent: newRecent()}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	mode, err := matcher.ParseMode(cfg.Mode, matcher.ModeEnforce)
	if err != nil {
		return nil, err
	}
	lc := cfg.Local
	lc.Logger = log.Named("banks")
	lc.Banks = withMode(lc.Banks, mode)
	if cfg.Ledger != nil {
		s.changes = make(chan matcher.BankChange, 64)
		lc.OnChange = func(ch matcher.BankChange) {
			select {
			case s.changes <- ch:
			default:
				// The worker is far behind: this change is caught up by
				// a full re-judgement of the ledger at the next reload.
				s.lostChange.Store(true)
				log.Error("retro-scan queue full: a bank change will be caught up by a full re-judgement of the ledger")
			}
		}
	}
	// The owned banks exist before the banks load: a new one is created.
	if err := s.openDecisionBanks(cfg, lc.Banks); err != nil {
		return nil, err
	}
	if s.local, err = matcher.NewLocal(lc); err != nil {
		return nil, err
	}
	for prog, what := range map[string]string{"ffmpeg": "videos are judged by their exact hashes only, not by their frames", "djxl": "JPEG XL images are refused as undecodable (on_undecodable_image) or let through unscanned"} {
		if !external.Available(prog) {
			log.Warn("decoder program not installed: "+what, zap.String("program", prog))
		}
	}
	var remotes []matcher.Remote
	for i, h := range cfg.HMA {
		if h.Name == "" {
			h.Name = hostName(h.URL, fmt.Sprintf("hma%d", i))
		}
		// One min_pdq_quality for every PDQ lookup, local or HMA.
		h.MinPDQQuality = cfg.Local.MinPDQQuality
		// A configured bank HMA lacks is logged as an error.
		h.Logger = log.Named("hma")
		c, err := matcher.NewHMA(h)
		if err != nil {
			return nil, fmt.Errorf("hma %s: %w", h.URL, err)
		}
		remotes = append(remotes, matcher.Remote{Name: "hma:" + h.Name, Matcher: c, Policy: policyOr(h.Policy, mode)})
	}
	if cfg.Arachnid != nil {
		ac := *cfg.Arachnid
		ac.MinPDQQuality = cfg.Local.MinPDQQuality
		c, err := matcher.NewArachnid(ac)
		if err != nil {
			return nil, err
		}
		remotes = append(remotes, matcher.Remote{Name: "arachnid:" + c.Name(), Matcher: c, Policy: policyOr(ac.Policy, mode)})
	}
	for _, sc := range cfg.Services {
		if sc.Name == "" {
			sc.Name = hostName(sc.URL, "service")
		}
		sc.MinPDQQuality = cfg.Local.MinPDQQuality
		c, err := matcher.NewService(sc)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", sc.URL, err)
		}
		remotes = append(remotes, matcher.Remote{Name: "service:" + sc.Name, Matcher: c, Policy: policyOr(sc.Policy, mode)})
	}
	for _, r := range remotes {
		s.remotes = append(s.remotes, r.Name)
	}
	s.guard, err = matcher.NewGuard(matcher.GuardConfig{
		Local: s.local, Remotes: remotes, FailPolicy: cfg.FailPolicy, Cache: cfg.Cache, Breaker: cfg.Breaker,
		OnBreakerChange: cfg.OnBreakerChange, OnBackendCall: cfg.OnBackendCall, Logger: log.Named("matcher"),
	})
	if err != nil {
		return nil, err
	}
	ac := actions.Config{Audit: cfg.Audit, LogCleanScans: cfg.LogCleanScans, Logger: log}
	if cfg.Webhook != "" {
		s.webhook, err = notify.NewWebhook(notify.WebhookConfig{URL: cfg.Webhook, Logger: log.Named("webhook")})
		if err != nil {
			return nil, fmt.Errorf("notify webhook: %w", err)
		}
		ac.Webhook = s.webhook
	}
	if cfg.Matrix != nil {
		mc := *cfg.Matrix
		// s.acts exists before any delivery: the notifier starts in Start.
		mc.OnDelivered = func(id string) { s.acts.Delivered(id) }
		// A lookup's report is on record once delivered (lookuplink.go).
		mc.OnSightingDelivered = func(sg notify.Sighting) { s.links.delivered(sg) }
		mc.Logger = log.Named("notify")
		s.stories = notify.NewStories(0)
		mc.Stories = s.stories
		s.notifier, err = notify.NewMatrix(mc)
		if err != nil {
			return nil, fmt.Errorf("notify matrix: %w", err)
		}
		ac.Matrix = s.notifier
		s.links = newLinker(s)
	}
	if cfg.SynapseAdmin != nil {
		admin, err := homeserver.NewAdmin(*cfg.SynapseAdmin)
		if err != nil {
			return nil, fmt.Errorf("synapse_admin: %w", err)
		}
		ac.Admin, ac.QuarantineUserMedia, ac.SuspendUser = admin, cfg.QuarantineUserMedia, cfg.SuspendUser
		s.admin = admin
	}
	s.acts = actions.New(ac)
	pc := cfg.Proxy
	if cfg.Homeserver != "" || cfg.HomeserverLater {
		s.whoLog = log.Named("whoami")
		if err := s.SetHomeserver(cfg.Homeserver); err != nil {
			return nil, err
		}
		pc.UserOf = s.userOf
	}
	pc.Matcher = s.guard
	// Local banks say when they change, so a clean verdict lives until
	// they do; remote lists change without telling, so with remotes it
	// also expires (the guard's cache asks them again).
	cleanTTL := time.Duration(0)
	if len(remotes) > 0 {
		cleanTTL = time.Hour
	}
	pc.Memory = mediaproxy.NewMemory(cfg.MemoryEntries, cleanTTL)
	// The backfill builds a Service without a ledger and writes records
	// as the proxy would: the profile is known either way.
	s.profile = hashingProfile(pc)
	obs := observers{s.acts, s.recent}
	if cfg.Ledger != nil {
		s.book = ledger.NewBook(ledger.BookConfig{Store: cfg.Ledger, Matcher: s.guard, Fingerprint: s.local.Fingerprint,
			Profile: s.profile, Remote: len(remotes) > 0, Retention: cfg.LedgerRetention, Logger: log.Named("ledger")})
		pc.Ledger = bookRecall{s.book}
		obs = append(obs, bookWriter{s.book, s.local, s.profile})
	}
	if cfg.Observer != nil {
		obs = append(obs, cfg.Observer)
	}
	pc.Observer = obs
	pc.Logger = log.Named("proxy")
	if s.proxy, err = mediaproxy.New(pc); err != nil {
		return nil, err
	}
	if cfg.Commands != nil {
		if err := s.newBot(cfg); err != nil {
			return nil, fmt.Errorf("commands: %w", err)
		}
	}
	return s, nil
}

// observers tells each observer in turn.
type observers []mediaproxy.Observer

func (o observers) Observe(d *mediaproxy.Decision) {
	for _, ob := range o {
		ob.Observe(d)
	}
}

// Start begins hot-reloading the bank files and delivering notices
// (including those a previous run recorded but never delivered). ctx ends
// the bank reloads and the notifier.
func (s *Service) Start(ctx context.Context) error {
	s.local.Start(ctx)
	if s.book != nil {
		wctx, cancel := context.WithCancel(ctx)
		s.stopRetro = cancel
		s.wg.Add(1)
		go s.retroWorker(wctx)
	}
	if s.notifier != nil {
		if err := s.notifier.Start(ctx); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
		s.acts.RedeliverPending()
		// The events reported before this start are claimed before the
		// first lookup is linked (and before the command bot's watcher
		// starts), here rather than on the linker's goroutine.
		s.links.seed()
		lctx, cancel := context.WithCancel(ctx)
		s.stopLinks = cancel
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.links.run(lctx)
		}()
	}
	if s.bot != nil {
		if err := s.bot.Start(); err != nil {
			return fmt.Errorf("commands: %w", err)
		}
	}
	return nil
}

// Close ends background work. It may be called more than once, and on a
// Service that was never started.
func (s *Service) Close() {
	// The command bot first (after the lookup linker, which asks it to
	// redact): a command in progress acts through everything below. The
	// retro worker next: a scan finishing now still reaches the actions,
	// notifiers and matcher it acts through.
	if s.stopLinks != nil {
		s.stopLinks()
	}
	if s.bot != nil {
		s.bot.Close()
	}
	if s.stopRetro != nil {
		s.stopRetro()
	}
	s.wg.Wait()
	if s.local != nil {
		s.local.Close()
	}
	if s.guard != nil {
		s.guard.Close()
	}
	if s.notifier != nil {
		s.notifier.Close()
	}
	if s.webhook != nil {
		s.webhook.Close()
	}
	if s.acts != nil {
		s.acts.Close()
	}
	if s.book != nil {
		s.book.Close()
	}
}

// Proxy is the media proxy.
func (s *Service) Proxy() *mediaproxy.Proxy { return s.proxy }

// Guard is the matcher the proxy and the lookup API share.
func (s *Service) Guard() *matcher.Guard { return s.guard }

// Local is the local banks.
func (s *Service) Local() *matcher.Local { return s.local }

// NoticeStats returns the counters of each configured notice channel,
// by channel: "matrix" (the management room) and "webhook".
func (s *Service) NoticeStats() map[string]notify.Stats {
	out := map[string]notify.Stats{}
	if s.notifier != nil {
		out["matrix"] = s.notifier.Stats()
	}
	if s.webhook != nil {
		out["webhook"] = s.webhook.Stats()
	}
	return out
}

// Remotes names the remote backends, as the guard's stats and breaker
// changes name them.
func (s *Service) Remotes() []string { return s.remotes }

// LookupConfig configures a lookup API handler.
type LookupConfig struct {
	// APIKey, MaxBodyBytes, RateLimit and RateBurst: see lookupapi.Config.
	APIKey       string
	MaxBodyBytes int64
	RateLimit    float64
	RateBurst    int
	// OnAnswer is told of every request answered (metrics); see
	// lookupapi.Config.
	OnAnswer func(lookupapi.Answer)
	// Logger receives the handler's logs; nil discards them.
	Logger *zap.Logger
}

// Lookup returns a lookup API handler answered by the proxy's own guard,
// with a health document of the same banks and remotes. With the Matrix
// notifier, a block of a request naming a room event (Mjolnir's plugin
// sends eventId, roomId and userId) is reported in the management room,
// in the story of the file (see lookuplink.go).
func (s *Service) Lookup(cfg LookupConfig) (*lookupapi.Handler, error) {
	if s == nil || s.guard == nil {
		return nil, errors.New("service: lookup API of a service not built")
	}
	lc := lookupapi.Config{
		Matcher: s.guard, APIKey: cfg.APIKey, MaxBodyBytes: cfg.MaxBodyBytes, RateLimit: cfg.RateLimit, RateBurst: cfg.RateBurst,
		Health: lookupapi.NewHealth(s.local, s.guard), OnAnswer: cfg.OnAnswer, Logger: cfg.Logger,
	}
	if s.links != nil {
		// A block of a room event joins the story of its file in the
		// management room; queued, never waited for.
		lc.OnBlock = s.links.offer
	}
	return lookupapi.New(lc)
}

func hostName(raw, fallback string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return fallback
}

// withMode returns banks with mode given to those that name none.
func withMode(banks []matcher.BankConfig, mode string) []matcher.BankConfig {
	out := make([]matcher.BankConfig, len(banks))
	for i, b := range banks {
		if b.Mode == "" {
			b.Mode = mode
		}
		out[i] = b
	}
	return out
}

// policyOr is p with mode when p names none.
func policyOr(p matcher.BackendPolicy, mode string) matcher.BackendPolicy {
	if p.Mode == "" {
		p.Mode = mode
	}
	return p
}
