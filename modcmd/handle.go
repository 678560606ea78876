package modcmd

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"strings"

	"go.uber.org/zap"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/mediaguard/mediaguard/notify"
)

// Relation types (https://spec.matrix.org/v1.11/client-server-api/#forming-relationships-between-events).
const (
	relThread     = "m.thread"
	relReplace    = "m.replace"
	relAnnotation = "m.annotation"
)

// content is the part of a message or reaction the bot reads.
type content struct {
	MsgType    string          `json:"msgtype"`
	Body       string          `json:"body"`
	NewContent json.RawMessage `json:"m.new_content"`
	RelatesTo  *struct {
		RelType string `json:"rel_type"`
		EventID string `json:"event_id"`
		Key     string `json:"key"`
	} `json:"m.relates_to"`
	Detection *struct {
		ID string `json:"id"`
	} `json:"org.mediaguard.detection"`
}

func (c *content) relType() string {
	if c.RelatesTo == nil {
		return ""
	}
	return c.RelatesTo.RelType
}

// handle looks at one timeline event and carries out the command it
// holds, if any. Its error is only a state file that cannot be written.
func (b *Bot) handle(ctx context.Context, ev *event.Event) error {
	if ev.Sender.String() == b.me {
		return nil // its own answers and notices: never commands
	}
	if ev.Unsigned.RedactedBecause != nil {
		return nil
	}
	var c content
	if json.Unmarshal(ev.Content.VeryRaw, &c) != nil {
		return nil
	}
	var cmd Command
	var usage error
	root := ev.ID.String()
	switch ev.Type.Type {
	case event.EventMessage.Type:
		// An edit repeats the command it corrects: carrying it out again
		// would run one command twice, so edits are never commands.
		if c.relType() == relReplace || len(c.NewContent) > 0 {
			b.debug("edit ignored", ev)
			return nil
		}
		// m.notice is never a command (Mjolnir's rule too): bots post
		// notices, and two bots must not command each other.
		if c.MsgType != string(event.MsgText) {
			return nil
		}
		var ok bool
		cmd, ok, usage = Parse(c.Body)
		if !ok {
			return nil
		}
		if usage != nil {
			// Recorded as typed (bounded): what was not understood.
			cmd = Command{Arg: clip(firstLine(stripReplyFallback(c.Body)), 200)}
		}
		if c.relType() == relThread && c.RelatesTo.EventID != "" {
			// A command inside a thread is answered in that thread: an
			// event in a thread cannot root another.
			root = c.RelatesTo.EventID
		}
	case event.EventReaction.Type:
		if c.relType() != relAnnotation || c.RelatesTo.EventID == "" {
			return nil
		}
		verb, ok := ReactionCommand(c.RelatesTo.Key)
		if !ok {
			return nil
		}
		// Who and whether, before the notice is fetched: a reaction
		// from anyone else costs no request.
		if !b.mayRun(ev) {
			return nil
		}
		detID, err := b.reviewNotice(ctx, c.RelatesTo.EventID)
		if err != nil {
			b.debug("reaction not on a detection notice: "+err.Error(), ev)
			return nil
		}
		return b.execute(ctx, ev, Command{Verb: verb, Arg: detID}, nil, c.RelatesTo.EventID)
	default:
		return nil
	}
	if !b.mayRun(ev) {
		return nil
	}
	return b.execute(ctx, ev, cmd, usage, root)
}

// mayRun tells whether ev is a command to carry out now: from a
// moderator and not handled before.
func (b *Bot) mayRun(ev *event.Event) bool {
	if !b.moderator(ev) {
		return false
	}
	if b.st.handled(ev.ID.String()) {
		b.debug("command already handled", ev)
		return false
	}
	return true
}

// moderator tells whether the sender may command the bot; if not, the
// event is logged at debug level and counted.
func (b *Bot) moderator(ev *event.Event) bool {
	l := b.levels.Level(ev.Sender.String())
	if l >= b.level {
		return true
	}
	b.ignored.Add(1)
	if ce := b.log.Check(zap.DebugLevel, "command ignored: the sender's power level is below moderator_power_level"); ce != nil {
		ce.Write(zap.String("sender", ev.Sender.String()), zap.String("event", ev.ID.String()), zap.Int64("level", l), zap.Int64("needed", b.level))
	}
	return false
}

func (b *Bot) debug(msg string, ev *event.Event) {
	if ce := b.log.Check(zap.DebugLevel, msg); ce != nil {
		ce.Write(zap.String("sender", ev.Sender.String()), zap.String("event", ev.ID.String()))
	}
}

// reviewNotice returns the detection ID of the bot's notice eventID.
// Only the bot's own notices count: anyone can post an event that looks
// like one.
func (b *Bot) reviewNotice(ctx context.Context, eventID string) (string, error) {
	ev, err := b.cli.GetEvent(ctx, id.RoomID(b.roomID), id.EventID(eventID))
	if err != nil {
		return "", notify.Explain(err)
	}
	if ev.Sender.String() != b.me {
		return "", fmt.Errorf("sent by %s, not the bot", ev.Sender)
	}
	var c content
	if json.Unmarshal(ev.Content.VeryRaw, &c) != nil || c.Detection == nil || !ValidDetectionID(c.Detection.ID) {
		return "", fmt.Errorf("no detection in it")
	}
	return c.Detection.ID, nil
}

// execute carries cmd out (or answers usage), answers in the thread on
// root, records it and remembers the event as handled.
//
// The order makes a crash harmless: the state file marks the event
// handled only after the answer is posted, so a crash before that carries
// the command out again after the restart, which Moderation's
// idempotence makes a no-op, and the answer's transaction ID (derived
// from the command's event ID) keeps it from being posted twice.
func (b *Bot) execute(ctx context.Context, ev *event.Event, cmd Command, usage error, root string) error {
	moderator := ev.Sender.String()
	var answer string
	ok := usage == nil
	if usage != nil {
		answer = usage.Error()
	} else {
		cctx, cancel := context.WithTimeout(ctx, b.cfg.CommandTimeout)
		reply, err := b.dispatch(cctx, cmd, moderator)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err() // shutting down: carried out again after the restart
			}
			ok = false
			answer = fmt.Sprintf("⚠️ %s failed: %v", cmd.Verb, err)
		} else {
			answer = reply
		}
	}
	b.commands.Add(1)
	b.log.Info("moderator command", zap.String("moderator", moderator), zap.String("command", clip(cmd.String(), 200)),
		zap.String("event", ev.ID.String()), zap.Bool("ok", ok), zap.String("outcome", clip(firstLine(answer), 200)))
	if b.cfg.OnRecord != nil {
		b.cfg.OnRecord(Record{EventID: ev.ID.String(), Moderator: moderator, Command: cmd.String(), Verb: cmd.Verb, Arg: cmd.Arg, OK: ok, Outcome: answer})
	}
	if !b.answer(ctx, ev.ID.String(), root, answer, cmd, ok) {
		return ctx.Err()
	}
	b.st.Handled = append(b.st.Handled, ev.ID.String())
	if err := b.st.save(b.cfg.StateFile); err != nil {
		return fmt.Errorf("saving the bot's state: %w", err)
	}
	return nil
}

func (b *Bot) dispatch(ctx context.Context, cmd Command, moderator string) (string, error) {
	m := b.cfg.Moderation
	switch cmd.Verb {
	case VerbConfirm:
		return m.Confirm(ctx, cmd.Arg, moderator)
	case VerbDismiss:
		return m.Dismiss(ctx, cmd.Arg, moderator)
	case VerbBlock:
		return m.Block(ctx, cmd.Arg, moderator)
	case VerbUnblock:
		return m.Unblock(ctx, cmd.Arg, moderator)
	case VerbStatus:
		return m.Status(ctx)
	case VerbLookup:
		return m.Lookup(ctx, cmd.Arg)
	case VerbHelp:
		return helpText, nil
	}
	return "", fmt.Errorf("unknown command %q", cmd.Verb)
}

// maxAnswer bounds an answer well below Matrix's 64 KiB event limit.
const maxAnswer = 16 << 10

// answer posts text as an m.notice in the thread on root, replying to
// the command event, and retries until it is accepted, refused for good
// or ctx ends. It reports false only when ctx ended first.
func (b *Bot) answer(ctx context.Context, commandID, root, text string, cmd Command, ok bool) bool {
	text = clip(text, maxAnswer)
	body := map[string]any{
		// m.notice: Mjolnir and this bot never read notices as commands.
		"msgtype":        "m.notice",
		"body":           text,
		"format":         "org.matrix.custom.html",
		"formatted_body": strings.ReplaceAll(html.EscapeString(text), "\n", "<br>"),
		// A thread on the command (or the notice reacted to), with the
		// reply fallback for clients without threads
		// (https://spec.matrix.org/v1.11/client-server-api/#threading).
		"m.relates_to": map[string]any{
			"rel_type": relThread, "event_id": root, "is_falling_back": true,
			"m.in_reply_to": map[string]any{"event_id": commandID},
		},
		"org.mediaguard.command": map[string]any{"event_id": commandID, "verb": cmd.Verb, "ok": ok},
	}
	return b.send(ctx, notify.TxnID("answer", commandID), body, commandID)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
