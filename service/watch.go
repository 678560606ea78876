package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/homeserver"
	"github.com/mediaguard/mediaguard/ledger"
	"github.com/mediaguard/mediaguard/mediaproxy"
	"github.com/mediaguard/mediaguard/modcmd"
)

// ActionWatch is the audit action of listed media found in a watched
// room's event (Ref the event, User its sender, Outcome the reason). It
// is written when the media is judged, before the event is redacted or
// noticed, so it proves neither.
const ActionWatch = "watch_listed"

// ActionWatchNoticed is the audit action of a watched event whose notice
// the management room accepted (Ref the event, Endpoint the room, User
// its sender, Media what matched): the proof a lookup naming the event
// after a restart needs to post nothing more.
const ActionWatchNoticed = "watch_noticed"

// watchFetch is how the watcher reaches stored media: the homeserver's
// client API with the bot's token.
type watchFetch struct {
	base, token string
	client      *http.Client
	limit       int64
}

// JudgeMedia judges the media of a watched room's event: from the
// proxy's memory or the media ledger when mediaguard has judged it
// before, else by fetching it from the homeserver (the upstream, so a
// download mediaguard itself would refuse still reaches the bytes) and
// hashing it exactly as the proxy hashes a body. Listed media is blocked
// in memory, recorded in the ledger and the audit log, and quarantined
// where the admin API is configured; clean media is recorded in the
// ledger, so the next event naming it costs no download.
func (s moderation) JudgeMedia(ctx context.Context, m modcmd.WatchedMedia) (modcmd.MediaJudgement, error) {
	k, err := parseMXC(m.MXC)
	if err != nil {
		return modcmd.MediaJudgement{}, err
	}
	if j, ok := s.proxy.Memory().Get(k.Original()); ok {
		if j.Blocked {
			s.recordWatch(m, k, j.Reason)
		}
		return modcmd.MediaJudgement{Listed: j.Blocked, Reason: j.Reason}, nil
	}
	if s.book != nil {
		if blocked, reason, ok := s.book.Recall(ctx, ledger.Key{Server: k.Server, ID: k.ID}); ok {
			if blocked {
				s.proxy.Memory().Block(k, reason)
				s.recordWatch(m, k, reason)
			}
			return modcmd.MediaJudgement{Listed: blocked, Reason: reason}, nil
		}
	}
	if s.fetch == nil {
		return modcmd.MediaJudgement{}, errors.New("no homeserver to fetch unknown media from")
	}
	f, size, ctype, err := s.fetch.get(ctx, k, s.proxy.SpoolDir())
	if err != nil {
		return modcmd.MediaJudgement{}, err
	}
	defer func() { f.Close(); os.Remove(f.Name()) }()
	gen := s.proxy.Memory().Generation()
	scan, err := s.proxy.ScanFile(ctx, f, size, ctype)
	if err != nil {
		return modcmd.MediaJudgement{}, fmt.Errorf("hashing %s: %w", m.MXC, err)
	}
	v, err := s.guard.Match(ctx, scan.Query)
	if err != nil {
		return modcmd.MediaJudgement{}, fmt.Errorf("matching %s: %w", m.MXC, err)
	}
	verdict := ledger.Clean
	if v.Match {
		verdict = ledger.Blocked
		s.proxy.Memory().Block(k, v.Reason)
		s.recordWatch(m, k, v.Reason)
		if s.admin != nil {
			if err := s.admin.QuarantineMedia(ctx, k.Server, k.ID); err != nil {
				s.log.Error("quarantining listed media of a watched event failed", zap.String("media", m.MXC), zap.Error(err))
			}
		}
	} else if !v.Unscanned {
		s.proxy.Memory().CleanAsOf(k.Original(), gen)
	}
	if s.book != nil && !v.Unscanned && scan.Undecodable == "" {
		if scan.Unscannable != "" && verdict == ledger.Clean {
			verdict = ledger.Unscannable
		}
		now := time.Now()
		s.book.Remember(ledger.Record{Key: ledger.Key{Server: k.Server, ID: k.ID}, Size: size, Type: scan.Format, Query: scan.Query,
			FirstSeen: now, LastSeen: now, Verdict: verdict, Reason: v.Reason, Banks: s.LedgerBanks()})
	}
	return modcmd.MediaJudgement{Listed: v.Match, Reason: v.Reason}, nil
}

// recordWatch puts listed media found in a watched event on record.
func (s moderation) recordWatch(m modcmd.WatchedMedia, k mediaproxy.MediaKey, reason string) {
	if s.audit == nil {
		return
	}
	err := s.audit.Append(audit.Record{Kind: audit.KindAction, Action: ActionWatch, User: m.Sender, Media: k.String(),
		Ref: m.EventID, Endpoint: m.RoomID, Outcome: clipText(reason, 500)})
	if err != nil {
		s.log.Error("audit: cannot record listed media of a watched event", zap.Error(err))
	}
}

// recordWatchNotice puts a watched event's delivered notice on record;
// it is the bot's OnWatchNotice.
func (s *Service) recordWatchNotice(m modcmd.WatchedMedia) {
	if s.audit == nil {
		return
	}
	rec := audit.Record{Kind: audit.KindAction, Action: ActionWatchNoticed, User: m.Sender, Ref: m.EventID, Endpoint: m.RoomID, Outcome: audit.OutcomeOK}
	if k, err := parseMXC(m.MXC); err == nil {
		rec.Media = k.String()
	}
	if err := s.audit.Append(rec); err != nil {
		s.log.Error("audit: cannot record a watched event's notice", zap.String("event_id", m.EventID), zap.Error(err))
	}
}

// get downloads the media into a private temporary file through the
// authenticated media API (homeserver.DownloadMedia: bounded, and a body
// cut short is an error, never a partial file judged as the media).
func (w *watchFetch) get(ctx context.Context, k mediaproxy.MediaKey, dir string) (_ *os.File, size int64, ctype string, err error) {
	f, err := os.CreateTemp(dir, "watch-*")
	if err != nil {
		return nil, 0, "", err
	}
	ctype, n, err := homeserver.DownloadMedia(ctx, w.client, w.base, w.token, k.Server, k.ID, "", f, w.limit)
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, 0, "", fmt.Errorf("fetching %s: %w", k, err)
	}
	return f, n, ctype, nil
}

// newWatchFetch picks where unknown watched media is fetched from: the
// upstream homeserver when configured (mediaguard would refuse listed
// media to itself), else the bot's homeserver.
func newWatchFetch(cfg Config) *watchFetch {
	base := strings.TrimRight(cfg.Homeserver, "/")
	if base == "" {
		base = strings.TrimRight(cfg.Matrix.Homeserver, "/")
	}
	limit := cfg.Proxy.MaxUploadSize
	if limit <= 0 {
		limit = mediaproxy.DefaultMaxUploadSize
	}
	return &watchFetch{base: base, token: cfg.Matrix.AccessToken, client: &http.Client{Timeout: 2 * time.Minute}, limit: limit}
}
