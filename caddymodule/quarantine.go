package caddymodule

import (
	"context"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

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

// quarantineTimeout bounds all retries of one action: it runs in the
// background and must end even if Synapse never answers.
const quarantineTimeout = 2 * time.Minute

// quarantine removes blocked media that the homeserver holds. A late match
// means the bytes were served in part and are stored; a blocked download
// also names stored media. Uploads refused before storage need nothing.
// It runs in the background: failures are retried by the client and
// recorded in the audit log, never stalling the proxy.
func (a *App) quarantine(id string, d *mediaproxy.Decision) {
	if a.admin == nil || d.Upload || d.MediaKey == "" || strings.HasPrefix(d.MediaKey, "/") {
		return
	}
	server, media, ok := strings.Cut(d.MediaKey, "/")
	if !ok {
		return
	}
	user := d.User
	go func() {
		ctx, cancel := context.WithTimeout(a.ctx, quarantineTimeout)
		defer cancel()
		a.recordAction(id, "quarantine", a.admin.QuarantineMedia(ctx, server, media))
		if user == "" {
			return
		}
		if a.SynapseAdmin.QuarantineUserMedia {
			_, err := a.admin.QuarantineUserMedia(ctx, user)
			a.recordAction(id, "quarantine_user_media", err)
		}
		if a.SynapseAdmin.SuspendUser {
			a.recordAction(id, "suspend_user", a.admin.SuspendUser(ctx, user))
		}
	}()
}

func (a *App) recordAction(id, action string, err error) {
	outcome := audit.OutcomeOK
	if err != nil {
		outcome = "failed: " + err.Error()
		a.log.Error("synapse admin action failed", zap.String("action", action), zap.String("detection", id), zap.Error(err))
	} else {
		a.log.Info("synapse admin action done", zap.String("action", action), zap.String("detection", id))
	}
	if a.audit != nil {
		if aerr := a.audit.Append(audit.Record{Kind: audit.KindAction, Action: action, Outcome: outcome, Ref: id}); aerr != nil {
			a.log.Error("audit: cannot record an action", zap.String("action", action), zap.Error(aerr))
		}
	}
}
