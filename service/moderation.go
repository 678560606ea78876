package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/ledger"
	"github.com/mediaguard/mediaguard/lookupwire"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
	"github.com/mediaguard/mediaguard/modcmd"
)

// CommandsConfig turns on the moderators' commands in the management
// room (it needs Config.Matrix: the bot follows the room its notices go
// to).
type CommandsConfig struct {
	// StateFile keeps the bot's sync position and handled commands
	// across restarts (required).
	StateFile string
	// ModeratorLevel is the power level needed to command the bot; nil
	// means modcmd.DefaultModeratorLevel (50).
	ModeratorLevel *int64
	// WatchRooms, when not empty, has the bot judge the media events of
	// these rooms ("all", or room IDs and aliases); see modcmd.Config.
	WatchRooms []string
	// Redact also redacts a watched event whose media is listed.
	Redact bool
}

// moderation carries out the moderators' commands (modcmd.Moderation)
// on the service's stages. It is its own type because Service.Lookup
// already names the lookup API's handler.
type moderation struct{ *Service }

// Moderation is what carries out the moderators' commands from the
// management room, for the bot and for tests.
func (s *Service) Moderation() modcmd.Moderation { return moderation{s} }

// Confirm takes a review request as a true match: its hashes go into
// the confirmed bank and the media is blocked (ConfirmDetection).
func (s moderation) Confirm(ctx context.Context, detectionID, moderator string) (string, error) {
	return s.ConfirmDetection(ctx, detectionID, moderator)
}

// Dismiss takes a review request as a false positive: its exact digests
// go on the allowlist (DismissDetection).
func (s moderation) Dismiss(ctx context.Context, detectionID, moderator string) (string, error) {
	return s.DismissDetection(ctx, detectionID, moderator)
}

// parseMXC splits mxc://server/id.
func parseMXC(mxc string) (mediaproxy.MediaKey, error) {
	rest, ok := strings.CutPrefix(mxc, "mxc://")
	server, id, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || server == "" || id == "" || strings.ContainsAny(id, "/?#") {
		return mediaproxy.MediaKey{}, fmt.Errorf("%q is not an mxc://server/id URI", mxc)
	}
	return mediaproxy.MediaKey{Server: server, ID: id}, nil
}

// Block blocks the media: the proxy's memory answers 404 for it at once,
// the media ledger (if any) records the block so it survives restarts
// and holds for the whole fleet (a retro-scan never lifts a block made by
// hand), and the homeserver quarantines it (with synapse_admin). Blocking
// blocked media again says so and changes nothing.
func (s moderation) Block(ctx context.Context, mxc, moderator string) (string, error) {
	k, err := parseMXC(mxc)
	if err != nil {
		return "", err
	}
	mem := s.proxy.Memory()
	j, known := mem.Get(k.Original())
	already := known && j.Blocked
	reason := ledger.ManualReasonPrefix + moderator
	var lines []string
	if s.book == nil {
		lines = append(lines, "No media ledger is configured: the block lasts until this proxy restarts.")
	} else {
		store := s.book.Store()
		r, ok, err := store.Get(ctx, ledger.Key{Server: k.Server, ID: k.ID})
		switch {
		case err != nil:
			return "", fmt.Errorf("reading the media ledger: %w", err)
		case !ok:
			already = false
			lines = append(lines, "mediaguard has never seen this media, so the media ledger has no record of it: the block lasts until this proxy restarts.")
		case r.Verdict == ledger.Blocked:
			lines = append(lines, "The media ledger has it blocked ("+clipText(r.Reason, 120)+").")
		default:
			already = false
			if _, err := store.SetVerdict(ctx, r.Key, ledger.Blocked, reason, r.Banks); err != nil {
				return "", fmt.Errorf("recording the block in the media ledger: %w", err)
			}
			lines = append(lines, "Recorded in the media ledger: the block holds across restarts and for every proxy sharing it.")
		}
	}
	if already {
		return "Already blocked: " + mxc + "\n" + strings.Join(lines, "\n"), nil
	}
	mem.Block(k, reason)
	s.log.Warn("media blocked by a moderator", zap.String("media", mxc), zap.String("moderator", moderator))
	if s.admin != nil {
		if err := s.admin.QuarantineMedia(ctx, k.Server, k.ID); err != nil {
			lines = append(lines, "Quarantine through the Synapse admin API failed: "+err.Error())
		} else {
			lines = append(lines, "Quarantined through the Synapse admin API.")
		}
	}
	return "Blocked " + mxc + ": downloads and thumbnails through mediaguard answer 404 from now on.\n" + strings.Join(lines, "\n"), nil
}

// Unblock lifts a block: the proxy's memory forgets it, the ledger's
// record is judged again from its digests, and the quarantine is lifted
// (with synapse_admin). Media a bank lists stays blocked, and the answer
// says so: lifting that is the allowlist's job.
func (s moderation) Unblock(ctx context.Context, mxc, moderator string) (string, error) {
	k, err := parseMXC(mxc)
	if err != nil {
		return "", err
	}
	mem := s.proxy.Memory()
	j, known := mem.Get(k.Original())
	was := known && j.Blocked
	mem.Unblock(k)
	var lines []string
	if s.book != nil {
		store := s.book.Store()
		r, ok, err := store.Get(ctx, ledger.Key{Server: k.Server, ID: k.ID})
		if err != nil {
			return "", fmt.Errorf("reading the media ledger: %w", err)
		}
		if ok && r.Verdict == ledger.Blocked {
			was = true
			// No banks fingerprint: the next request re-derives the
			// verdict from the stored digests against the banks now.
			if _, err := store.SetVerdict(ctx, r.Key, ledger.Clean, "", ""); err != nil {
				return "", fmt.Errorf("recording the unblock in the media ledger: %w", err)
			}
			lines = append(lines, "The media ledger's block is lifted.")
		}
		if ok && r.Query.Has != 0 {
			v, err := s.guard.Match(ctx, r.Query)
			switch {
			case err != nil:
				lines = append(lines, "Whether a bank still lists it could not be checked: "+err.Error())
			case v.Match:
				lines = append(lines, fmt.Sprintf("It still matches bank %s (%s), so it stays blocked: remove the entry or allowlist the media.", v.Bank, v.HashType))
			}
		}
	}
	if s.admin != nil {
		if err := s.admin.UnquarantineMedia(ctx, k.Server, k.ID); err != nil {
			lines = append(lines, "Lifting the quarantine through the Synapse admin API failed: "+err.Error())
		} else {
			lines = append(lines, "Quarantine lifted through the Synapse admin API.")
		}
	}
	head := "Unblocked " + mxc + ": mediaguard judges it again at its next request."
	if !was {
		head = "Not blocked here: " + mxc + " (nothing to lift in this proxy's memory or the media ledger)."
	}
	s.log.Warn("media unblocked by a moderator", zap.String("media", mxc), zap.String("moderator", moderator), zap.Bool("was_blocked", was))
	if len(lines) == 0 {
		return head, nil
	}
	return head + "\n" + strings.Join(lines, "\n"), nil
}

// Status describes the banks, the remote backends' breakers and the
// last hour's requests.
func (s moderation) Status(ctx context.Context) (string, error) {
	var b strings.Builder
	banks := s.local.Status()
	fmt.Fprintf(&b, "mediaguard status\nBanks: %d", len(banks))
	total := 0
	for _, st := range banks {
		total += st.Counts.Total()
	}
	fmt.Fprintf(&b, " (%d entries)", total)
	for _, st := range banks {
		c := st.Counts
		fmt.Fprintf(&b, "\n• %s: %d entries (md5 %d, sha1 %d, sha256 %d, pdq %d, video md5 %d)", st.Name, c.Total(), c.MD5, c.SHA1, c.SHA256, c.PDQ, c.VideoMD5)
		switch {
		case !st.Enabled:
			b.WriteString(", disabled")
		case !st.LoadedAt.IsZero():
			b.WriteString(", loaded " + st.LoadedAt.UTC().Format(time.RFC3339))
		}
		if st.Mode != "" {
			b.WriteString(", " + st.Mode + "-only")
		}
		if st.Category != "" {
			b.WriteString(", category " + st.Category)
		}
		if st.Problems > 0 {
			fmt.Fprintf(&b, ", %d entries rejected", st.Problems)
		}
		if st.LastError != "" {
			b.WriteString("; last change not loaded: " + clipText(st.LastError, 200))
		}
	}
	states := s.guard.BreakerStates()
	if len(states) == 0 {
		b.WriteString("\nRemote backends: none")
	} else {
		b.WriteString("\nRemote backends (breaker):")
		for _, name := range sortedKeys(states) {
			fmt.Fprintf(&b, " %s %s;", name, states[name])
		}
	}
	counts := s.recent.Counts()
	if len(counts) == 0 {
		b.WriteString("\nRequests in the last hour: none")
	} else {
		b.WriteString("\nRequests in the last hour:")
		for i, o := range sortedKeys(counts) {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " %s %d", o, counts[o])
		}
	}
	notices := s.NoticeStats()
	for _, ch := range sortedKeys(notices) {
		st := notices[ch]
		fmt.Fprintf(&b, "\nNotices (%s): %d delivered, %d pending, %d dropped", ch, st.Delivered, st.Pending, st.Dropped)
	}
	if ls, ok := s.LedgerStats(); ok {
		n, err := s.book.Store().Len(ctx)
		if err != nil {
			fmt.Fprintf(&b, "\nMedia ledger: unreadable (%v)", err)
		} else {
			fmt.Fprintf(&b, "\nMedia ledger: %d media, %d stored media blocked by retro-scans since start", n, ls.RetroBlocked)
		}
	}
	return b.String(), nil
}

// Lookup asks the guard (local banks, then remotes) about one hash: hex
// md5 (32 digits), sha1 (40), or sha256 or pdq (64: both are asked unless
// the "sha256:" or "pdq:" prefix says which). A PDQ hash given by hand
// has no quality, so it is taken as of full quality.
func (s moderation) Lookup(ctx context.Context, hash string) (string, error) {
	typ, hex, typed := strings.Cut(strings.ToLower(strings.TrimSpace(hash)), ":")
	if !typed {
		typ, hex = "", typ
	}
	var h lookupwire.Hashes
	switch {
	case typ == "md5" || typ == "" && len(hex) == 32:
		h.MD5 = hex
	case typ == "sha1" || typ == "" && len(hex) == 40:
		h.SHA1 = hex
	case typ == "sha256":
		h.SHA256 = hex
	case typ == "pdq":
		h.PDQ = hex
	case typ == "" && len(hex) == 64:
		h.SHA256, h.PDQ = hex, hex
	default:
		return "", fmt.Errorf("%q is not an md5, sha1, sha256 or pdq hash", clipText(hash, 80))
	}
	full := 100
	q, err := matcher.QueryFromLookup(&lookupwire.Request{Hashes: h, PDQQuality: &full})
	if err != nil {
		return "", err
	}
	v, err := s.guard.Match(ctx, q)
	if err != nil {
		return "", fmt.Errorf("the banks could not be asked: %w", err)
	}
	var b strings.Builder
	switch {
	case v.Match:
		b.WriteString("Listed: ")
	case v.WouldBlock:
		b.WriteString("Listed by a report-only bank (it would be blocked): ")
	default:
		b.WriteString("Not listed in any bank or backend.")
		if v.Unscanned {
			b.WriteString(" Not every remote backend could be asked: " + strings.Join(v.Notes, "; "))
		}
		return b.String(), nil
	}
	fmt.Fprintf(&b, "bank %s (source %s)", v.Bank, v.Source)
	if v.Category != "" {
		b.WriteString(", category " + v.Category)
	}
	fmt.Fprintf(&b, "\nMatched: %s %s…", v.HashType, clipHash(v.MatchedHash))
	if v.HashType == matcher.PDQ {
		fmt.Fprintf(&b, ", PDQ distance %d", v.Distance)
	}
	fmt.Fprintf(&b, ", confidence %.2f", v.Confidence)
	return b.String(), nil
}

// clipHash is as much of a listed hash as an answer shows, like a notice.
func clipHash(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// recordCommand appends a moderator's command to the audit log.
func (s *Service) recordCommand(r modcmd.Record) {
	if s.audit == nil {
		return
	}
	outcome := "ok: "
	if !r.OK {
		outcome = "failed: "
	}
	rec := audit.Record{Kind: audit.KindAction, Action: audit.ActionCommand, User: r.Moderator, Command: r.Command,
		Event: r.EventID, Outcome: outcome + clipText(r.Outcome, 2000)}
	switch r.Verb {
	case modcmd.VerbBlock, modcmd.VerbUnblock:
		if k, err := parseMXC(r.Arg); err == nil {
			rec.Media = k.String()
		}
	case modcmd.VerbConfirm, modcmd.VerbDismiss:
		rec.Ref = r.Arg
	}
	if err := s.audit.Append(rec); err != nil {
		s.log.Error("audit: cannot record a moderator's command", zap.String("command", clipText(r.Command, 200)), zap.Error(err))
	}
}

// newBot builds the command bot over the notifier's room.
func (s *Service) newBot(cfg Config) error {
	if cfg.Matrix == nil {
		return errors.New("commands need the Matrix notifier (notify matrix)")
	}
	m := cfg.Matrix
	bot, err := modcmd.New(modcmd.Config{
		Homeserver: m.Homeserver, AccessToken: m.AccessToken, Room: m.Room, HTTPClient: m.HTTPClient,
		StateFile: cfg.Commands.StateFile, ModeratorLevel: cfg.Commands.ModeratorLevel,
		Moderation: moderation{s}, OnRecord: s.recordCommand, Logger: s.log.Named("commands"),
		WatchRooms: cfg.Commands.WatchRooms, Redact: cfg.Commands.Redact, Watch: moderation{s}, Stories: s.stories,
		OnWatchNotice: s.recordWatchNotice,
	})
	if err != nil {
		return err
	}
	s.bot = bot
	if len(cfg.Commands.WatchRooms) > 0 {
		s.fetch = newWatchFetch(cfg)
	}
	return nil
}

var (
	_ modcmd.Moderation = moderation{}
	_ modcmd.Watcher    = moderation{}
)
