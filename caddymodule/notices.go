package caddymodule

import "github.com/caddyserver/caddy/v2"

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
	// ModeratorPowerLevel is the power level a member of the room needs
	// for the bot to take their "!mediaguard ..." commands and ✅/❌
	// reactions (default 50, Matrix clients' "Moderator").
	ModeratorPowerLevel *int `json:"moderator_power_level,omitempty"`
	// StateFile keeps the bot's position in the room and the commands it
	// handled, so a restart neither replays nor loses a command. Default:
	// the audit log's path with ".commands.json" appended; without
	// either, the bot takes no commands.
	StateFile string `json:"state_file,omitempty"`
	// WatchRooms is "all" (every room the bot is in) or room IDs and
	// aliases (joined at start) whose media events the bot judges: on a
	// match it posts a notice naming room, event, sender and media to the
	// management room. Unknown media is fetched from the homeserver with
	// the bot's token and hashed as the proxy would.
	WatchRooms []string `json:"watch_rooms,omitempty"`
	// Redact also redacts a watched room's event whose media matched,
	// once, where the bot has the power to (needs WatchRooms).
	Redact bool `json:"redact,omitempty"`
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
	// LearnQuarantines names a local bank, declared with `bank NAME
	// PATH`, that mediaguard writes: every media quarantined in Synapse
	// (its quarantine feed, Synapse ≥ 1.152) is fetched, hashed as the
	// proxy hashes uploads and its hashes added there, so re-encoded,
	// resized or re-framed copies are refused too; an unquarantine
	// removes them. The file is created when missing; an existing one
	// must have been written by mediaguard. Empty: off.
	LearnQuarantines string `json:"learn_quarantines,omitempty"`
	// LearnEvery is how often the quarantine feed is polled (default
	// 30s).
	LearnEvery caddy.Duration `json:"learn_every,omitempty"`
}
