package actions

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// quarantineTimeout bounds all retries of one action: it runs in the
// background and must end even if Synapse never answers.
const quarantineTimeout = 2 * time.Minute

// quarantine removes blocked media that the homeserver holds. A late match
// means the bytes were served in part and are stored; a blocked download
// also names stored media. Uploads refused before storage need nothing.
// It runs in the background: failures are retried by the client and
// recorded in the audit log, never stalling the proxy.
func (a *Actions) quarantine(id string, d *mediaproxy.Decision) {
	if d.Upload {
		return
	}
	a.quarantineMedia(id, d.MediaKey.Server, d.MediaKey.ID, d.User)
}

// quarantineMedia quarantines stored media server/media and, as
// configured, acts on user, in the background.
func (a *Actions) quarantineMedia(id, server, media, user string) {
	// Without the server's name there is nothing the admin API can name.
	if a.cfg.Admin == nil || media == "" || server == "" {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		ctx, cancel := context.WithTimeout(a.ctx, quarantineTimeout)
		defer cancel()
		admin := a.cfg.Admin
		a.recordAction(id, "quarantine", admin.QuarantineMedia(ctx, server, media))
		if user == "" {
			return
		}
		if a.cfg.QuarantineUserMedia {
			_, err := admin.QuarantineUserMedia(ctx, user)
			a.recordAction(id, "quarantine_user_media", err)
		}
		if a.cfg.SuspendUser {
			a.recordAction(id, "suspend_user", admin.SuspendUser(ctx, user))
		}
	}()
}

// recordAction logs and records the outcome of an admin action on
// detection id.
func (a *Actions) recordAction(id, action string, err error) {
	outcome := audit.OutcomeOK
	if err != nil {
		outcome = "failed: " + err.Error()
		a.log.Error("synapse admin action failed", zap.String("action", action), zap.String("detection", id), zap.Error(err))
	} else {
		a.log.Info("synapse admin action done", zap.String("action", action), zap.String("detection", id))
	}
	if a.cfg.Audit != nil {
		if aerr := a.cfg.Audit.Append(audit.Record{Kind: audit.KindAction, Action: action, Outcome: outcome, Ref: id}); aerr != nil {
			a.log.Error("audit: cannot record an action", zap.String("action", action), zap.Error(aerr))
		}
	}
}
