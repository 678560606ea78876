package modcmd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"slices"
	"strings"

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

// watching tells whether roomID's media events are judged.
func (b *Bot) watching(roomID string) bool {
	if roomID == b.roomID || len(b.cfg.WatchRooms) == 0 {
		return false
	}
	return b.watchAll || slices.Contains(b.watchIDs, roomID)
}

// joinWatched joins the listed rooms (accepting invites) and resolves
// their aliases; a room it cannot join is logged and left out until the
// next (re)start.
func (b *Bot) joinWatched(ctx context.Context) {
	b.watchAll, b.watchIDs = false, nil
	for _, r := range b.cfg.WatchRooms {
		if r == WatchAll {
			b.watchAll = true
			continue
		}
		resp, err := b.cli.JoinRoom(ctx, r, nil)
		if err != nil {
			b.log.Error("cannot join a watched room; its media events are not judged", zap.String("room", r), zap.String("reason", notify.Explain(err).Error()))
			continue
		}
		b.watchIDs = append(b.watchIDs, resp.RoomID.String())
	}
}

// handleMedia judges the media a watched room's event refers to and, for
// listed media, posts a notice naming room, event and sender and (with
// Redact) redacts the event. Encrypted attachments carry no mxc the
// homeserver could serve in the clear: they are skipped.
func (b *Bot) handleMedia(ctx context.Context, roomID string, ev *event.Event) error {
	if ev.Sender.String() == b.me || ev.Unsigned.RedactedBecause != nil || b.st.handled(ev.ID.String()) {
		return nil
	}
	var c mediaContent
	if json.Unmarshal(ev.Content.VeryRaw, &c) != nil || len(c.NewContent) > 0 {
		return nil
	}
	msgType := c.MsgType
	switch {
	case ev.Type.Type == event.EventSticker.Type:
		msgType = event.EventSticker.Type
	case ev.Type.Type == event.EventMessage.Type && slices.Contains(mediaMsgTypes, c.MsgType):
	default:
		return nil
	}
	var mxcs []string
	for _, u := range []string{c.URL, c.Info.ThumbnailURL} {
		if mxcRe.MatchString(u) && !slices.Contains(mxcs, u) {
			mxcs = append(mxcs, u)
		}
	}
	if len(mxcs) == 0 {
		return nil
	}
	for _, mxc := range mxcs {
		m := WatchedMedia{MXC: mxc, RoomID: roomID, EventID: ev.ID.String(), Sender: ev.Sender.String(), MsgType: msgType}
		jctx, cancel := context.WithTimeout(ctx, b.cfg.CommandTimeout)
		j, err := b.cfg.Watch.JudgeMedia(jctx, m)
		cancel()
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
		redacted := ""
		if b.cfg.Redact {
			redacted = b.redact(ctx, roomID, m.EventID)
		}
		b.log.Warn("listed media posted in a watched room", zap.String("room", roomID), zap.String("event", m.EventID),
			zap.String("sender", m.Sender), zap.String("media", mxc), zap.String("reason", j.Reason), zap.String("redaction", redacted))
		if !b.postWatchNotice(ctx, m, j, redacted) {
			return ctx.Err()
		}
		break // one notice (and one redaction) per event
	}
	b.st.Handled = append(b.st.Handled, ev.ID.String())
	if err := b.st.save(b.cfg.StateFile); err != nil {
		return fmt.Errorf("saving the bot's state: %w", err)
	}
	return nil
}

// txnFor derives a transaction ID from what it is about, so a retry or a
// run after a crash is the same request to the homeserver.
func txnFor(kind string, parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return "mediaguard-" + kind + "-" + hex.EncodeToString(sum[:16])
}

// redact redacts the event once (the transaction ID is the event's) and
// says what happened, for the notice.
func (b *Bot) redact(ctx context.Context, roomID, eventID string) string {
	_, err := b.cli.RedactEvent(ctx, id.RoomID(roomID), id.EventID(eventID), mautrix.ReqRedact{
		Reason: "listed media (mediaguard)", TxnID: txnFor("redact", roomID, eventID),
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
// management room, retrying like an answer. It reports false only when
// ctx ended first.
func (b *Bot) postWatchNotice(ctx context.Context, m WatchedMedia, j MediaJudgement, redacted string) bool {
	lines := []string{
		"🚨 mediaguard: listed media posted in a watched room",
		"Room: " + m.RoomID,
		"Event: " + m.EventID,
		"Sent by: " + m.Sender,
		"Media: " + m.MXC,
		"Match: " + clip(j.Reason, 300),
	}
	if redacted != "" {
		lines = append(lines, "Event: "+redacted)
	}
	text := strings.Join(lines, "\n")
	var h strings.Builder
	h.WriteString("<p><strong>" + html.EscapeString(lines[0]) + "</strong></p><ul>")
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, ": ")
		h.WriteString("<li><strong>" + html.EscapeString(k) + ":</strong> <code>" + html.EscapeString(v) + "</code></li>")
	}
	h.WriteString("</ul>")
	body := map[string]any{
		"msgtype": "m.notice", "body": text, "format": "org.matrix.custom.html", "formatted_body": h.String(),
		"org.mediaguard.event_detection": map[string]any{
			"room_id": m.RoomID, "event_id": m.EventID, "sender": m.Sender, "mxc": m.MXC, "msgtype": m.MsgType,
			"reason": clip(j.Reason, 300), "redaction": redacted,
		},
	}
	return b.send(ctx, txnFor("watch", m.EventID, m.MXC), body, m.EventID)
}

// send posts body to the management room with transaction ID txn,
// retrying until it is accepted, refused for good or ctx ends; it
// reports false only when ctx ended first. about names what it is for
// in logs.
func (b *Bot) send(ctx context.Context, txn string, body map[string]any, about string) bool {
	for attempt := 0; ; attempt++ {
		_, err := b.cli.SendMessageEvent(ctx, id.RoomID(b.roomID), event.EventMessage, body, mautrix.ReqSendEvent{TransactionID: txn})
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		f := notify.Explain(err)
		wait := backoff(attempt, b.cfg.MaxRetryDelay)
		switch {
		case f.Status == http.StatusTooManyRequests && f.RetryAfter > 0:
			wait = f.RetryAfter
		case f.Status >= 400 && f.Status < 500 && f.Status != http.StatusTooManyRequests:
			b.log.Error("the management room refused a message; dropping it", zap.String("about", about), zap.String("reason", f.Error()))
			return true
		}
		b.log.Warn("posting to the management room failed; retrying", zap.String("about", about), zap.String("reason", f.Error()), zap.Duration("in", wait))
		if !sleep(ctx, wait) {
			return false
		}
	}
}
