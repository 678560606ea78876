package caddymodule

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/dustin/go-humanize"

	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/service"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("mediaguard", parseGlobal)
}

// parseGlobal parses the global option block:
//
//	mediaguard {
//		mode enforce|report
//		bank NAME PATH [disabled] {
//			mode enforce|report
//			category csam|ncii|terror|spam
//			label TEXT
//		}
//		ncmec NAME PATH {
//			environment industry|npo|test
//			base_url URL
//			username USER
//			password {env.NCMEC_PASSWORD}
//			every DURATION
//			start DATE
//			mode enforce|report
//			category csam|ncii|terror|spam
//		}
//		hma URL {
//			api_key KEY
//			banks NAME...
//			timeout DURATION
//			mode enforce|report
//			category csam|ncii|terror|spam
//		}
//		arachnid {
//			username NAME
//			password {env.ARACHNID_PASSWORD}
//			base_url URL
//			timeout DURATION
//			batch_window DURATION|off
//		}
//		service URL {
//			name NAME
//			api_key KEY
//			timeout DURATION
//			mode enforce|report
//			category csam|ncii|terror|spam
//		}
//		pdq_threshold N
//		min_pdq_quality N
//		dihedral [on|off]
//		pdq_search default|deep|off
//		pdq_exact [on|off]
//		on_matcher_error open|closed
//		on_undecodable_image block|allow
//		review_threshold N
//		review_action allow|hold
//		confirmed_bank NAME PATH
//		allow NAME PATH
//		cache { match_ttl D; miss_ttl D; max_entries N }
//		breaker { consecutive_failures N; failure_ratio F; min_requests N; open_timeout D; call_timeout D }
//		max_upload_size SIZE
//		memory_buffer SIZE
//		temp_dir PATH
//		max_download_buffer SIZE
//		max_buffered_total SIZE
//		upload_idle_timeout DURATION|off
//		max_concurrent_hashing N
//		hashing process|inline
//		max_pixels N
//		server_name NAME
//		memory_entries N
//		ledger PATH | ledger postgres DSN
//		ledger_retention DURATION
//		notify matrix {
//			homeserver URL
//			access_token TOKEN
//			room ROOM_ID_OR_ALIAS
//			command "!mjolnir redact {user} --quarantine"
//			moderator_power_level N
//			state_file PATH
//			watch_rooms all|ROOM...
//			redact on|off
//		}
//		notify webhook URL
//		synapse_admin {
//			homeserver URL
//			access_token TOKEN
//			quarantine_user_media
//			suspend_user
//			learn_quarantines BANK
//			learn_every DURATION
//		}
//		homeserver URL|off
//		audit_log PATH
//		audit_max_size SIZE
//		log_clean_scans
//	}
func parseGlobal(d *caddyfile.Dispenser, existing any) (any, error) {
	app := new(App)
	if existing != nil {
		return nil, d.Err("mediaguard: the global mediaguard block may appear only once")
	}
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "mediaguard", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile fills the app from the global block.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "mediaguard"
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		dir := d.Val()
		switch dir {
		case "bank":
			args := d.RemainingArgs()
			if len(args) < 2 || len(args) > 3 || (len(args) == 3 && args[2] != "disabled") {
				return d.Errf("bank: want `bank NAME PATH [disabled]`")
			}
			if !matcher.ValidBankName(args[0]) {
				return d.Errf("bank: name %q must match [A-Z_][A-Z0-9_]*", args[0])
			}
			bc := matcher.BankConfig{Name: args[0], Path: args[1], Disabled: len(args) == 3}
			for d.NextBlock(1) {
				if ok, err := parsePolicyOption(d, "bank "+bc.Name, &bc.Mode, &bc.Category); ok {
					if err != nil {
						return err
					}
					continue
				}
				switch d.Val() {
				case "label":
					if !d.Args(&bc.Label) || d.NextArg() {
						return d.Errf("bank %s: want `label TEXT`", bc.Name)
					}
				default:
					return d.Errf("bank %s: unknown option %q", bc.Name, d.Val())
				}
			}
			a.Banks = append(a.Banks, bc)
		case "ncmec":
			n, err := parseNCMEC(d)
			if err != nil {
				return err
			}
			a.NCMEC = append(a.NCMEC, n)
		case "hma":
			var h HMABackend
			if !d.Args(&h.URL) {
				return d.Errf("hma: want `hma URL { ... }`")
			}
			for d.NextBlock(1) {
				if ok, err := parsePolicyOption(d, "hma", &h.Mode, &h.Category); ok {
					if err != nil {
						return err
					}
					continue
				}
				switch d.Val() {
				case "api_key":
					if !d.Args(&h.APIKey) {
						return d.ArgErr()
					}
				case "banks":
					h.Banks = d.RemainingArgs()
					if len(h.Banks) == 0 {
						return d.ArgErr()
					}
				case "timeout":
					dur, err := durationArg(d)
					if err != nil {
						return err
					}
					h.Timeout = dur
				default:
					return d.Errf("hma: unknown option %q", d.Val())
				}
			}
			a.HMA = append(a.HMA, h)
		case "arachnid":
			if a.Arachnid != nil {
				return d.Err("arachnid: may appear only once")
			}
			b, err := parseArachnid(d)
			if err != nil {
				return err
			}
			a.Arachnid = b
		case "service":
			var s ServiceBackend
			if !d.Args(&s.URL) {
				return d.Errf("service: want `service URL { ... }`")
			}
			for d.NextBlock(1) {
				if ok, err := parsePolicyOption(d, "service", &s.Mode, &s.Category); ok {
					if err != nil {
						return err
					}
					continue
				}
				switch d.Val() {
				case "name":
					if !d.Args(&s.Name) {
						return d.ArgErr()
					}
				case "api_key":
					if !d.Args(&s.APIKey) {
						return d.ArgErr()
					}
				case "timeout":
					dur, err := durationArg(d)
					if err != nil {
						return err
					}
					s.Timeout = dur
				default:
					return d.Errf("service: unknown option %q", d.Val())
				}
			}
			a.Services = append(a.Services, s)
		case "mode":
			if !d.Args(&a.Mode) || d.NextArg() {
				return d.Errf("mode: want `mode enforce|report`")
			}
			if _, err := matcher.ParseMode(a.Mode, ""); err != nil {
				return d.Errf("%v", err)
			}
		case "pdq_threshold":
			n, err := intArg(d, 0, matcher.MaxPDQThreshold)
			if err != nil {
				return err
			}
			a.PDQThreshold = n
		case "min_pdq_quality":
			n, err := intArg(d, 0, 100)
			if err != nil {
				return err
			}
			a.MinPDQQuality = &n
		case "dihedral":
			a.Dihedral = true
			if d.NextArg() {
				switch d.Val() {
				case "on", "true":
				case "off", "false":
					a.Dihedral = false
				default:
					return d.Errf("dihedral: want on or off, not %q", d.Val())
				}
			}
		case "pdq_exact":
			a.PDQExact = true
			if d.NextArg() {
				switch d.Val() {
				case "on", "true":
				case "off", "false":
					a.PDQExact = false
				default:
					return d.Errf("pdq_exact: want on or off, not %q", d.Val())
				}
			}
		case "pdq_search":
			if !d.NextArg() {
				return d.ArgErr()
			}
			if d.Val() == "" {
				return d.Errf("pdq_search: want default, deep or off, not %q", d.Val())
			}
			if _, err := service.ParsePDQSearch(d.Val()); err != nil {
				return optionErr(d, dir, err)
			}
			a.PDQSearch = d.Val()
		case "on_matcher_error":
			if !d.NextArg() {
				return d.ArgErr()
			}
			if _, err := service.ParseFailPolicy(d.Val()); err != nil || d.Val() == "" {
				return optionErr(d, dir, err)
			}
			a.OnMatcherError = d.Val()
		case "on_undecodable_image":
			if !d.NextArg() {
				return d.ArgErr()
			}
			if _, err := service.ParseUndecodable(d.Val()); err != nil || d.Val() == "" {
				return optionErr(d, dir, err)
			}
			a.OnUndecodableImage = d.Val()
		case "cache":
			a.Cache = new(CacheSettings)
			for d.NextBlock(1) {
				var err error
				switch d.Val() {
				case "match_ttl":
					a.Cache.MatchTTL, err = durationArg(d)
				case "miss_ttl":
					a.Cache.MissTTL, err = durationArg(d)
				case "max_entries":
					a.Cache.MaxEntries, err = intArg(d, 1, 1<<30)
				default:
					err = d.Errf("cache: unknown option %q", d.Val())
				}
				if err != nil {
					return err
				}
			}
		case "breaker":
			a.Breaker = new(BreakerSettings)
			for d.NextBlock(1) {
				var err error
				var n int
				switch d.Val() {
				case "consecutive_failures":
					n, err = intArg(d, 1, 1<<20)
					a.Breaker.ConsecutiveFailures = uint32(n)
				case "min_requests":
					n, err = intArg(d, 1, 1<<20)
					a.Breaker.MinRequests = uint32(n)
				case "failure_ratio":
					if !d.NextArg() {
						return d.ArgErr()
					}
					f, perr := strconv.ParseFloat(d.Val(), 64)
					if perr != nil || f <= 0 || f > 1 {
						return d.Errf("failure_ratio: want a number in (0,1], not %q", d.Val())
					}
					a.Breaker.FailureRatio = f
				case "open_timeout":
					a.Breaker.OpenTimeout, err = durationArg(d)
				case "call_timeout":
					a.Breaker.CallTimeout, err = durationArg(d)
				default:
					err = d.Errf("breaker: unknown option %q", d.Val())
				}
				if err != nil {
					return err
				}
			}
		case "max_upload_size", "memory_buffer", "max_download_buffer", "max_buffered_total":
			n, err := sizeArg(d)
			if err != nil {
				return err
			}
			switch dir {
			case "max_upload_size":
				a.MaxUploadSize = n
			case "memory_buffer":
				a.MemoryBuffer = n
			case "max_buffered_total":
				a.MaxBufferedTotal = n
			default:
				a.MaxDownloadBuffer = n
			}
		case "upload_idle_timeout":
			args := d.RemainingArgs()
			if len(args) != 1 {
				return d.ArgErr()
			}
			if args[0] == "off" {
				a.UploadIdleTimeout = -1
				break
			}
			dur, err := caddy.ParseDuration(args[0])
			if err != nil || dur <= 0 {
				return d.Errf("upload_idle_timeout: want a positive duration such as 60s, or off, not %q", args[0])
			}
			a.UploadIdleTimeout = caddy.Duration(dur)
		case "temp_dir":
			if !d.Args(&a.TempDir) {
				return d.ArgErr()
			}
		case "max_concurrent_hashing":
			n, err := intArg(d, 1, 4096)
			if err != nil {
				return err
			}
			a.MaxConcurrentHashing = n
		case "hashing":
			if !d.Args(&a.Hashing) {
				return d.ArgErr()
			}
			if _, err := service.ParseHashing(a.Hashing); err != nil || a.Hashing == "" {
				return optionErr(d, dir, err)
			}
		case "max_pixels":
			n, err := intArg(d, 1, 1<<31-1)
			if err != nil {
				return err
			}
			a.MaxPixels = n
		case "server_name":
			if !d.Args(&a.ServerName) {
				return d.ArgErr()
			}
		case "notify":
			if !d.NextArg() || (d.Val() != "matrix" && d.Val() != "webhook") {
				return d.Errf("notify: want `notify matrix { homeserver URL; access_token TOKEN; room ROOM }` or `notify webhook URL`")
			}
			if d.Val() == "webhook" {
				if a.Notify == nil {
					a.Notify = new(NotifySettings)
				}
				if !d.Args(&a.Notify.Webhook) {
					return d.Errf("notify webhook: want a URL")
				}
				continue
			}
			m := new(MatrixNotify)
			for d.NextBlock(1) {
				var err error
				switch d.Val() {
				case "homeserver":
					if !d.Args(&m.Homeserver) {
						return d.ArgErr()
					}
				case "access_token":
					if !d.Args(&m.AccessToken) {
						return d.ArgErr()
					}
				case "room":
					if !d.Args(&m.Room) {
						// `room #mods:example.org` reaches us empty: in a
						// Caddyfile a token starting with # is a comment.
						return d.Errf(`notify matrix: room has no value; a room alias must be quoted because # starts a comment (room "#moderators:example.org"), or write it without the # or use the room ID (!id:server)`)
					}
					if !strings.HasPrefix(m.Room, "!") && !strings.HasPrefix(m.Room, "#") {
						m.Room = "#" + m.Room
					}
				case "queue_size":
					m.QueueSize, err = intArg(d, 1, 1<<20)
				case "command":
					var c string
					if !d.Args(&c) || !strings.HasPrefix(c, "!") {
						return d.Errf(`notify matrix: command takes one quoted Mjolnir command, e.g. command "!mjolnir redact {user} --quarantine"`)
					}
					m.Commands = append(m.Commands, c)
				default:
					if !parseMatrixModeration(d, m, &err) {
						err = d.Errf("notify matrix: unknown option %q", d.Val())
					}
				}
				if err != nil {
					return err
				}
			}
			if m.Homeserver == "" || m.AccessToken == "" || m.Room == "" {
				return d.Errf("notify matrix: homeserver, access_token and room are required")
			}
			if a.Notify == nil {
				a.Notify = new(NotifySettings)
			}
			a.Notify.Matrix = m
		case "synapse_admin":
			sa := new(SynapseAdmin)
			for d.NextBlock(1) {
				switch d.Val() {
				case "homeserver":
					if !d.Args(&sa.Homeserver) {
						return d.ArgErr()
					}
				case "access_token":
					if !d.Args(&sa.AccessToken) {
						return d.ArgErr()
					}
				case "quarantine_user_media":
					sa.QuarantineUserMedia = true
				case "suspend_user":
					sa.SuspendUser = true
				case "learn_quarantines":
					if !d.Args(&sa.LearnQuarantines) || d.NextArg() {
						return d.Errf("synapse_admin: want `learn_quarantines BANK`, a bank declared with `bank BANK PATH`")
					}
				case "learn_every":
					var err error
					if sa.LearnEvery, err = durationArg(d); err != nil {
						return err
					}
				default:
					return d.Errf("synapse_admin: unknown option %q", d.Val())
				}
			}
			if sa.Homeserver == "" || sa.AccessToken == "" {
				return d.Errf("synapse_admin: homeserver and access_token are required")
			}
			if sa.LearnEvery != 0 && sa.LearnQuarantines == "" {
				return d.Errf("synapse_admin: learn_every without learn_quarantines")
			}
			a.SynapseAdmin = sa
		case "homeserver":
			if !d.Args(&a.Homeserver) {
				return d.ArgErr()
			}
		case "audit_log":
			if !d.Args(&a.AuditLog) {
				return d.ArgErr()
			}
		case "audit_max_size":
			n, err := sizeArg(d)
			if err != nil {
				return err
			}
			a.AuditMaxSize = n
		case "log_clean_scans":
			a.LogCleanScans = true
		case "ledger":
			args := d.RemainingArgs()
			switch {
			case len(args) == 1 && args[0] != "postgres":
				a.Ledger = &LedgerSettings{Path: args[0]}
			case len(args) == 2 && args[0] == "postgres":
				a.Ledger = &LedgerSettings{Postgres: args[1]}
			default:
				return d.Errf("ledger: want PATH or postgres DSN")
			}
		case "ledger_retention":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil || dur <= 0 {
				return d.Errf("ledger_retention: want a positive duration, got %q", d.Val())
			}
			a.LedgerRetention = caddy.Duration(dur)
		case "memory_entries":
			n, err := intArg(d, 1, 1<<26)
			if err != nil {
				return err
			}
			a.MemoryEntries = n
		default:
			if ok, err := a.parseReviewOption(d); ok {
				if err != nil {
					return err
				}
				break
			}
			return d.Errf("mediaguard: unknown option %q", dir)
		}
		if d.NextArg() {
			return d.Errf("%s: unexpected extra argument %q", dir, d.Val())
		}
	}
	return nil
}

// optionErr phrases a closed-set option's error the Caddyfile's way. An
// empty value (err == nil), which the JSON reads as the default, is an
// error here.
func optionErr(d *caddyfile.Dispenser, dir string, err error) error {
	var oe *service.OptionError
	if errors.As(err, &oe) {
		return d.Errf("%s: want %s, not %q", oe.Option, oe.Want, oe.Got)
	}
	if err != nil {
		return d.Errf("%s: %v", dir, err)
	}
	return d.Errf("%s: want a value, not \"\"", dir)
}

func intArg(d *caddyfile.Dispenser, lo, hi int) (int, error) {
	dir := d.Val()
	if !d.NextArg() {
		return 0, d.ArgErr()
	}
	n, err := strconv.Atoi(d.Val())
	if err != nil || n < lo || n > hi {
		return 0, d.Errf("%s: want a whole number from %d to %d, not %q", dir, lo, hi, d.Val())
	}
	return n, nil
}

func durationArg(d *caddyfile.Dispenser) (caddy.Duration, error) {
	dir := d.Val()
	if !d.NextArg() {
		return 0, d.ArgErr()
	}
	dur, err := caddy.ParseDuration(d.Val())
	if err != nil || dur <= 0 {
		return 0, d.Errf("%s: want a positive duration such as 2s, not %q", dir, d.Val())
	}
	return caddy.Duration(time.Duration(dur)), nil
}

func sizeArg(d *caddyfile.Dispenser) (int64, error) {
	dir := d.Val()
	if !d.NextArg() {
		return 0, d.ArgErr()
	}
	n, err := humanize.ParseBytes(d.Val())
	if err != nil || n == 0 || n > 1<<40 {
		return 0, d.Errf("%s: want a size such as 100MB, not %q", dir, d.Val())
	}
	return int64(n), nil
}

var _ caddyfile.Unmarshaler = (*App)(nil)
