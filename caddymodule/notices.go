package caddymodule

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/mediaproxy"
	"github.com/mediaguard/mediaguard/notify"
)

// NotifySettings configure where moderators are told of blocks.
type NotifySettings struct {
	// Matrix posts an m.notice to a management room (Mjolnir's) per block.
	Matrix *MatrixNotify `json:"matrix,omitempty"`
	// Webhook POSTs {"text","html"} per block (Hookshot, Slack-style
	// incoming webhooks), for teams that do not use Mjolnir. Use {env.X}
	// for a URL that embeds a secret.
	Webhook string `json:"webhook,omitempty"`
}

// MatrixNotify is the management-room notifier.
type MatrixNotify struct {
	// Homeserver is the bot's homeserver client API base URL.
	Homeserver string `json:"homeserver"`
	// AccessToken is the bot's token; use {env.MEDIAGUARD_BOT_TOKEN}.
	AccessToken string `json:"access_token"`
	// Room is a room ID (!id:server) or alias (#name:server); the bot joins
	// it on start.
	Room string `json:"room"`
	// QueueSize bounds notices waiting for delivery (default 1000).
	QueueSize int `json:"queue_size,omitempty"`
	// Commands turns on command mode: after each notice, each template is
	// sent as an m.text that Mjolnir executes ({mxc} and {user} are filled
	// in; a command whose value is unknown is skipped), e.g.
	// "!mjolnir redact {user} --quarantine". This gives mediaguard
	// Mjolnir's moderator powers over the room's members: off by default.
	Commands []string `json:"commands,omitempty"`
}

func (a *App) provisionNotify(repl replacer) error {
	if a.Notify == nil {
		return nil
	}
	var err error
	if a.Notify.Webhook != "" {
		a.webhook, err = notify.NewWebhook(notify.WebhookConfig{URL: repl.ReplaceAll(a.Notify.Webhook, ""), Logger: zapLogger{a.log.Named("webhook")}})
		if err != nil {
			return fmt.Errorf("mediaguard: notify webhook: %w", err)
		}
	}
	m := a.Notify.Matrix
	if m == nil {
		return nil
	}
	tok, err := secret(repl, "mediaguard: notify matrix access_token", m.AccessToken)
	if err != nil {
		return err
	}
	a.notifier, err = notify.NewMatrix(notify.MatrixConfig{
		Homeserver:  repl.ReplaceAll(m.Homeserver, ""),
		AccessToken: tok,
		Room:        repl.ReplaceAll(m.Room, ""),
		QueueSize:   m.QueueSize,
		Commands:    m.Commands,
		OnDelivered: a.noticeDelivered,
		Logger:      zapLogger{a.log.Named("notify")},
	})
	if err != nil {
		return fmt.Errorf("mediaguard: notify matrix: %w", err)
	}
	return nil
}

// noticeDelivered records the delivery, so a restart does not post it again.
func (a *App) noticeDelivered(id string) {
	if a.audit == nil {
		return
	}
	if err := a.audit.Append(audit.Record{Kind: audit.KindAction, Action: audit.ActionNotify, Outcome: audit.OutcomeOK, Ref: id}); err != nil {
		a.log.Error("audit: cannot record a notice's delivery", zap.String("detection", id), zap.Error(err))
	}
}

// redeliverPending queues notices for blocks whose delivery was never
// recorded (the process stopped first): nothing is lost across restarts.
func (a *App) redeliverPending() {
	if a.notifier == nil || a.audit == nil {
		return
	}
	pending, err := audit.Pending(a.AuditLog)
	if err != nil {
		a.log.Error("audit: cannot read undelivered notices", zap.Error(err))
		return
	}
	for _, r := range pending {
		a.notifier.Notify(detectionFromRecord(r))
	}
	if len(pending) > 0 {
		a.log.Info("redelivering notices recorded but not delivered before the last stop", zap.Int("count", len(pending)))
	}
}

// auditVerdict is the verdict evidence stored in audit records.
type auditVerdict struct {
	Outcome     string   `json:"outcome"`
	Bank        string   `json:"bank,omitempty"`
	HashType    string   `json:"hash_type,omitempty"`
	MatchedHash string   `json:"matched_hash,omitempty"`
	Distance    int      `json:"distance,omitempty"`
	Confidence  float64  `json:"confidence,omitempty"`
	Source      string   `json:"source,omitempty"`
	Form        string   `json:"form,omitempty"`
	Variant     string   `json:"variant,omitempty"`
	Reason      string   `json:"reason,omitempty"`
	Notes       []string `json:"notes,omitempty"`
	Unscannable string   `json:"unscannable,omitempty"`
	Error       string   `json:"error,omitempty"`
	Action      string   `json:"action,omitempty"`
}

func detection(id string, d *mediaproxy.Decision, dir string) notify.Detection {
	v := d.Verdict
	media := mxc(d.MediaKey)
	if d.Upload {
		// A refused upload stored nothing, and a PUT's media ID is the
		// client's unverified claim: never hand it to a command.
		media = ""
	}
	return notify.Detection{
		ID: id, Time: time.Now(), Direction: dir, Endpoint: d.Endpoint.Name, User: d.User,
		MXC: media, HashType: string(v.HashType), MatchedHash: v.MatchedHash,
		Bank: v.Bank, Source: v.Source, Distance: v.Distance, Confidence: v.Confidence,
		Form: v.Form, Variant: v.Variant, Action: actionTaken(d),
	}
}

func detectionFromRecord(r audit.Record) notify.Detection {
	var v auditVerdict
	json.Unmarshal(r.Verdict, &v)
	user := r.User
	if user == "unknown" {
		user = ""
	}
	return notify.Detection{
		ID: r.ID, Time: r.Time, Direction: r.Direction, Endpoint: r.Endpoint, User: user,
		MXC: mxc(r.Media), HashType: v.HashType, MatchedHash: v.MatchedHash, Bank: v.Bank,
		Source: v.Source, Distance: v.Distance, Confidence: v.Confidence, Form: v.Form, Variant: v.Variant, Action: v.Action,
	}
}

func mxc(mediaKey string) string {
	if mediaKey == "" || strings.HasPrefix(mediaKey, "/") {
		return ""
	}
	return "mxc://" + mediaKey
}

func actionTaken(d *mediaproxy.Decision) string {
	switch {
	case d.Outcome == mediaproxy.LateBlocked:
		return "connection aborted before the end of the download; media ID blocked"
	case d.Upload:
		return "upload refused (403), nothing stored"
	default:
		return "download refused (404); media ID blocked"
	}
}
