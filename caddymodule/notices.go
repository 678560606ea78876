package caddymodule

import (
	"fmt"

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
		// a.acts exists before any delivery: the notifier starts in Start.
		OnDelivered: func(id string) { a.acts.Delivered(id) },
		Logger:      zapLogger{a.log.Named("notify")},
	})
	if err != nil {
		return fmt.Errorf("mediaguard: notify matrix: %w", err)
	}
	return nil
}

// SynapseAdmin configures removal through Synapse's admin API.
type SynapseAdmin struct {
	// Homeserver is Synapse's base URL for the admin API.
	Homeserver string `json:"homeserver"`
	// AccessToken is a Synapse admin's token; use {env.X}.
	AccessToken string `json:"access_token"`
	// QuarantineUserMedia also quarantines all of the uploader's media
	// when their upload or download is blocked (off by default).
	QuarantineUserMedia bool `json:"quarantine_user_media,omitempty"`
	// SuspendUser also suspends the uploader (off by default).
	SuspendUser bool `json:"suspend_user,omitempty"`
}
