package backfill

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mediaguard/mediaguard/ledger"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/notify"
)

// Quarantiner quarantines one media item; *homeserver.Admin is one
// (Synapse's POST /_synapse/admin/v1/media/quarantine/{server}/{id}).
type Quarantiner interface {
	QuarantineMedia(ctx context.Context, server, mediaID string) error
}

// Notifier queues a notice; *notify.Matrix and *notify.Webhook are.
type Notifier interface {
	Notify(d notify.Detection) bool
}

// AdminActor is the Actor of `mediaguard backfill --act`: it quarantines
// each match through Synapse's admin API and posts one notice per match
// to the configured management room or webhook.
type AdminActor struct {
	// Admin quarantines; nil quarantines nothing (no synapse_admin).
	Admin Quarantiner
	// Notifiers are told of each match; none is allowed.
	Notifiers []Notifier
}

// Detection names in notices: what was blocked and through what.
const (
	noticeDirection = "stored media"
	noticeEndpoint  = "backfill of the media store"
)

// RetroBlock quarantines r's media and notifies. Media recorded by
// content only (a remote file whose media ID is unknown) cannot be named
// to the admin API: it is reported, and the error says so.
func (a *AdminActor) RetroBlock(ctx context.Context, r ledger.Record, v matcher.Verdict) error {
	var errs []error
	action := "found in the media store by a backfill; not quarantined (no synapse_admin configured)"
	mxc := r.Key.String()
	switch {
	case strings.HasPrefix(r.Key.ID, fsIDPrefix):
		mxc = ""
		action = "found in the media store by a backfill; not quarantined: its media ID is unknown (rerun with --synapse-db)"
		errs = append(errs, fmt.Errorf("cannot quarantine remote media of %s stored as %s: media ID unknown", r.Key.Server, strings.TrimPrefix(r.Key.ID, fsIDPrefix)))
	case a.Admin != nil:
		if err := a.Admin.QuarantineMedia(ctx, r.Key.Server, r.Key.ID); err != nil {
			action = "found in the media store by a backfill; quarantine FAILED: " + err.Error()
			errs = append(errs, err)
		} else {
			action = "found in the media store by a backfill; quarantined"
		}
	}
	d := notify.Detection{
		ID: detectionID(r), Time: time.Now(), Direction: noticeDirection, Endpoint: noticeEndpoint,
		User: r.Uploader, MXC: mxc, HashType: string(v.HashType), MatchedHash: v.MatchedHash, Bank: v.Bank,
		Source: v.Source, Distance: v.Distance, Form: v.Form, Variant: v.Variant, Confidence: v.Confidence, Action: action,
	}
	for _, n := range a.Notifiers {
		if !n.Notify(d) {
			errs = append(errs, errors.New("notice not queued (queue full or notifier closed)"))
		}
	}
	return errors.Join(errs...)
}

// detectionID is stable for one media and its bytes: the Matrix
// transaction ID derives from it, so acting twice on the same match (a
// rerun with --rehash) does not post twice while the bot's session lasts.
func detectionID(r ledger.Record) string {
	h := sha256.New()
	h.Write([]byte(r.Key.String()))
	h.Write(r.Query.SHA256[:])
	return "backfill-" + hex.EncodeToString(h.Sum(nil)[:8])
}
