package modcmd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"go.uber.org/zap"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/mediaguard/mediaguard/notify"
)

// WatchAll in Config.WatchRooms watches every room the bot is in.
const WatchAll = "all"

// WatchedMedia is one mxc URI a media event in a watched room refers to.
type WatchedMedia struct {
	// MXC is the media (the file or its thumbnail).
	MXC string
	// RoomID, EventID and Sender name the event.
	RoomID, EventID, Sender string
	// MsgType is the event's msgtype (m.image, ...) or "m.sticker".
	MsgType string
}

// MediaJudgement is what a Watcher found.
type MediaJudgement struct {
	// Listed is true when a bank lists the media.
	Listed bool
	// Reason says which bank and hash, for the notice.
	Reason string
}

// Watcher judges the media of watched rooms' events. The service
// implements it: from the media ledger when it knows the media, else by
// fetching it from the homeserver and hashing it as the proxy would.
type Watcher interface {
	JudgeMedia(ctx context.Context, m WatchedMedia) (MediaJudgement, error)
}

// mediaContent is the part of a media event the watcher reads
// (https://spec.matrix.org/v1.11/client-server-api/#mimage and the
// other msgtypes; m.sticker has the same url and info).
type mediaContent struct {
	MsgType string          `json:"msgtype"`
	URL     string          `json:"url"`
	File    json.RawMessage `json:"file"`
	Info    struct {
		ThumbnailURL string `json:"thumbnail_url"`
	} `json:"info"`
	NewContent json.RawMessage `json:"m.new_content"`
}

var mediaMsgTypes = []string{"m.image", "m.video", "m.file", "m.audio"}

// watchSet is what the bot watches, swapped whole at each (re)start so
// that RedactIfListed may read it from another goroutine.
type watchSet struct {
	// mgmt is the management room, never watched.
	mgmt string
	all  bool
	ids  []string
}

// watching tells whether roomID's media events are judged.
func (b *Bot) watching(roomID string) bool {
	w := b.watched.Load()
	if w == nil || roomID == w.mgmt || len(b.cfg.WatchRooms) == 0 {
		return false
	}
	return w.all || slices.Contains(w.ids, roomID)
}

// joinWatched joins the listed rooms (accepting invites) and resolves
// their aliases; a room it cannot join is logged and left out until the
// next (re)start.
func (b *Bot) joinWatched(ctx context.Context) {
	w := &watchSet{mgmt: b.roomID}
	for _, r := range b.cfg.WatchRooms {
		if r == WatchAll {
			w.all = true
			continue
		}
		resp, err := b.cli.JoinRoom(ctx, r, nil)
		if err != nil {
			b.log.Error("cannot join a watched room; its media events are not judged", zap.String("room", r), zap.String("reason", notify.Explain(err).Error()))
			continue
		}
		w.ids = append(w.ids, resp.RoomID.String())
	}
	b.watched.Store(w)
}

// mediaOf is the media a room event refers to (the file and its
// thumbnail) and its msgtype ("m.sticker" for a sticker); none for
// anything but an unedited media message or sticker. Encrypted
// attachments carry no mxc the homeserver could serve in the clear.
func mediaOf(ev *event.Event) (mxcs []string, msgType string) {
	var c mediaContent
	if json.Unmarshal(ev.Content.VeryRaw, &c) != nil || len(c.NewContent) > 0 {
		return nil, ""
	}
	msgType = c.MsgType
	switch {
	case ev.Type.Type == event.EventSticker.Type:
		msgType = event.EventSticker.Type
	case ev.Type.Type == event.EventMessage.Type && slices.Contains(mediaMsgTypes, c.MsgType):
	default:
		return nil, ""
	}
	for _, u := range []string{c.URL, c.Info.ThumbnailURL} {
		if mxcRe.MatchString(u) && !slices.Contains(mxcs, u) {
			mxcs = append(mxcs, u)
		}
	}
	return mxcs, msgType
}

// judge asks the Watcher about one media, within CommandTimeout.
func (b *Bot) judge(ctx context.Context, m WatchedMedia) (MediaJudgement, error) {
	jctx, cancel := context.WithTimeout(ctx, b.cfg.CommandTimeout)
	defer cancel()
	return b.cfg.Watch.JudgeMedia(jctx, m)
}

// handleMedia judges the media a watched room's event refers to and, for
// listed media, redacts the event (with Redact) and posts a notice naming
// room, event and sender, unless another reporter (the lookup API)
// claimed the room's event first (Config.Stories): then that report is
// its one notice, but the redaction is still the watch path's.
func (b *Bot) handleMedia(ctx context.Context, roomID string, ev *event.Event) error {
	if ev.Sender.String() == b.me || ev.Unsigned.RedactedBecause != nil || b.st.handled(ev.ID.String()) {
		return nil
	}
	mxcs, msgType := mediaOf(ev)
	if len(mxcs) == 0 {
		return nil
	}
	for _, mxc := range mxcs {
		m := WatchedMedia{MXC: mxc, RoomID: roomID, EventID: ev.ID.String(), Sender: ev.Sender.String(), MsgType: msgType}
		j, err := b.judge(ctx, m)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b.log.Warn("media of a watched event could not be judged", zap.String("room", roomID), zap.String("event", m.EventID), zap.String("media", mxc), zap.Error(err))
			continue
		}
		if !j.Listed {
			continue
		}
		// The watch path redacts whoever reported the event first: a
		// lookup's claim comes from an untrusted caller and its own
		// redaction may have failed. The transaction ID is the one
		// RedactIfListed uses, so the event is redacted once.
		redacted := ""
		if b.cfg.Redact {
			redacted = b.redact(ctx, roomID, m.EventID)
		}
		b.log.Warn("listed media posted in a watched room", zap.String("room", roomID), zap.String("event", m.EventID),
			zap.String("sender", m.Sender), zap.String("media", mxc), zap.String("reason", j.Reason), zap.String("redaction", redacted))
		if !b.cfg.Stories.Claim(roomID, m.EventID) {
			b.log.Info("listed media of a watched event already reported (by the lookup API); no second notice", zap.String("room", roomID),
				zap.String("event", m.EventID), zap.String("redaction", redacted))
			break
		}
		delivered, ok := b.postWatchNotice(ctx, m, j, redacted)
		if !ok {
			return ctx.Err()
		}
		if delivered && b.cfg.OnWatchNotice != nil {
			b.cfg.OnWatchNotice(m)
		}
		break // one notice (and one redaction) per event
	}
	b.st.Handled = append(b.st.Handled, ev.ID.String())
	if err := b.st.save(b.cfg.StateFile); err != nil {
		return fmt.Errorf("saving the bot's state: %w", err)
	}
	return nil
}

// EventCheck is what RedactIfListed found of a reported event.
type EventCheck struct {
	// Read is true when the bot read the event from the homeserver in
	// the room named: the room and event are then real, and Sender is
	// the event's own, not the report's word.
	Read bool
	// Sender is the event's sender, when Read.
	Sender string
	// Redaction is what became of the event, for the report's notice:
	// "redacted", "already redacted" or "not redacted: why"; "" when it
	// is not the bot's to redact (Redact off, or the room not watched).
	Redaction string
}

// RedactIfListed is the watch path's reading, judgement and redaction of
// a room event another reporter named (a lookup API request carries the
// event Mjolnir's plugin asked about). It acts only where the watch path
// would, in a watched room (and redacts only with Redact on), and it
// trusts the report with nothing: the event is read from the homeserver,
// its sender taken from it and its own media judged, so whoever knows
// one listed hash cannot have any event redacted by naming it. Safe to
// call from any goroutine.
func (b *Bot) RedactIfListed(ctx context.Context, roomID, eventID string) EventCheck {
	var c EventCheck
	if !b.watching(roomID) {
		return c
	}
	ev, err := b.cli.GetEvent(ctx, id.RoomID(roomID), id.EventID(eventID))
	if err != nil {
		if b.cfg.Redact {
			c.Redaction = "not redacted: the event could not be read (" + notify.Explain(err).Error() + ")"
		}
		return c
	}
	c.Read, c.Sender = true, ev.Sender.String()
	if !b.cfg.Redact {
		return c
	}
	if ev.Unsigned.RedactedBecause != nil {
		c.Redaction = "already redacted"
		return c
	}
	mxcs, msgType := mediaOf(ev)
	if len(mxcs) == 0 {
		c.Redaction = "not redacted: the event has no media mediaguard can judge (not a media message, an edit, or an encrypted attachment)"
		return c
	}
	var failed error
	for _, mxc := range mxcs {
		j, err := b.judge(ctx, WatchedMedia{MXC: mxc, RoomID: roomID, EventID: eventID, Sender: c.Sender, MsgType: msgType})
		if err != nil {
			b.log.Warn("media of a reported event could not be judged", zap.String("room", roomID), zap.String("event", eventID), zap.String("media", mxc), zap.Error(err))
			failed = err
			continue
		}
		if j.Listed {
			c.Redaction = b.redact(ctx, roomID, eventID)
			return c
		}
	}
	if failed != nil {
		// Not "nothing listed": mediaguard could not tell.
		c.Redaction = "not redacted: the event's media could not be judged (" + clip(failed.Error(), 200) + ")"
		return c
	}
	c.Redaction = "not redacted: mediaguard's own judgement of the event's media found nothing listed"
	return c
}

// redact redacts the event once (the transaction ID is the event's) and
// says what happened, for the notice.
func (b *Bot) redact(ctx context.Context, roomID, eventID string) string {
	_, err := b.cli.RedactEvent(ctx, id.RoomID(roomID), id.EventID(eventID), mautrix.ReqRedact{
		Reason: "listed media (mediaguard)", TxnID: notify.TxnID("redact", roomID, eventID),
	})
	if err == nil {
		return "redacted"
	}
	f := notify.Explain(err)
	if f.Status == http.StatusForbidden {
		return "not redacted: the bot lacks the power to redact in that room (" + f.Error() + ")"
	}
	return "not redacted: " + f.Error()
}

// postWatchNotice posts the notice of a listed media event to the
// management room (in the words of every event report, see
// notify.SightingContent), retrying like an answer. delivered says the
// homeserver accepted it; ok is false only when ctx ended first.
func (b *Bot) postWatchNotice(ctx context.Context, m WatchedMedia, j MediaJudgement, redacted string) (delivered, ok bool) {
	body := notify.SightingContent(notify.Sighting{RoomID: m.RoomID, EventID: m.EventID, Sender: m.Sender, MXC: m.MXC,
		MsgType: m.MsgType, Reason: j.Reason, Redaction: redacted, Via: notify.SightingWatch}, "")
	return b.deliver(ctx, notify.TxnID("watch", m.EventID, m.MXC), body, m.EventID)
}

// send posts body to the management room with transaction ID txn,
// retrying until it is accepted, refused for good or ctx ends; it
// reports false only when ctx ended first. about names what it is for
// in logs.
func (b *Bot) send(ctx context.Context, txn string, body map[string]any, about string) bool {
	_, ok := b.deliver(ctx, txn, body, about)
	return ok
}

// deliver is send, also saying whether the homeserver accepted the
// message (delivered) rather than refused it for good.
func (b *Bot) deliver(ctx context.Context, txn string, body map[string]any, about string) (delivered, ok bool) {
	for attempt := 0; ; attempt++ {
		_, err := b.cli.SendMessageEvent(ctx, id.RoomID(b.roomID), event.EventMessage, body, mautrix.ReqSendEvent{TransactionID: txn})
		if err == nil {
			return true, true
		}
		if ctx.Err() != nil {
			return false, false
		}
		f := notify.Explain(err)
		wait := backoff(attempt, b.cfg.MaxRetryDelay)
		switch {
		case f.Status == http.StatusTooManyRequests && f.RetryAfter > 0:
			wait = f.RetryAfter
		case f.Status >= 400 && f.Status < 500 && f.Status != http.StatusTooManyRequests:
			b.log.Error("the management room refused a message; dropping it", zap.String("about", about), zap.String("reason", f.Error()))
			return false, true
		}
		b.log.Warn("posting to the management room failed; retrying", zap.String("about", about), zap.String("reason", f.Error()), zap.Duration("in", wait))
		if !sleep(ctx, wait) {
			return false, false
		}
	}
}
