package service

// Moderators' decisions on review detections: a confirmation banks the
// media's hashes and blocks it; a dismissal allowlists its exact digests.
// The Matrix command loop (and anything else) calls ConfirmDetection and
// DismissDetection.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// ErrUnknownDetection is returned for a detection ID that is not a review
// detection in the audit log.
var ErrUnknownDetection = errors.New("no such review detection")

// decisions is the Service's state for moderators' decisions.
type decisions struct {
	audit                *audit.Log
	confirmed, allowlist *matcher.OwnedBank
	confirmedName        string
	allowName            string
}

// decideMu makes each decision one step: concurrent confirmations of one
// detection add its entries once and answer "already" after. It is the
// process's, not a Service's: during a config reload the old and the new
// Service share the owned banks.
var decideMu sync.Mutex

// ownedBanks shares one OwnedBank per file in the process: a config
// reload builds a new Service while the old one still runs, and two
// writers of one file would lose each other's entries.
var ownedBanks struct {
	mu sync.Mutex
	m  map[string]*matcher.OwnedBank
}

func openOwned(path, writer string) (*matcher.OwnedBank, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	ownedBanks.mu.Lock()
	defer ownedBanks.mu.Unlock()
	if b := ownedBanks.m[abs]; b != nil {
		return b, nil
	}
	b, err := matcher.OpenOwnedBank(matcher.OwnedBankConfig{Path: abs, Writer: writer})
	if err != nil {
		return nil, err
	}
	if ownedBanks.m == nil {
		ownedBanks.m = map[string]*matcher.OwnedBank{}
	}
	ownedBanks.m[abs] = b
	return b, nil
}

// openDecisionBanks opens (creating) the confirmed bank and the allowlist
// cfg names among banks.
func (s *Service) openDecisionBanks(cfg Config, banks []matcher.BankConfig) error {
	s.decisions.audit = cfg.Audit
	find := func(name, what string, allow bool) (*matcher.OwnedBank, error) {
		if name == "" {
			return nil, nil
		}
		for _, b := range banks {
			if b.Name != name {
				continue
			}
			if b.Allow != allow {
				return nil, fmt.Errorf("%s %s: the bank is not an allowlist's", what, name)
			}
			ob, err := openOwned(b.Path, what)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", what, name, err)
			}
			return ob, nil
		}
		return nil, fmt.Errorf("%s %s: no such bank is configured", what, name)
	}
	var err error
	if s.decisions.confirmed, err = find(cfg.ConfirmedBank, "confirmed_bank", false); err != nil {
		return err
	}
	s.decisions.confirmedName = cfg.ConfirmedBank
	if s.decisions.allowlist, err = find(cfg.Allowlist, "allow", true); err != nil {
		return err
	}
	s.decisions.allowName = cfg.Allowlist
	return nil
}

// review is what the audit log says of one review detection.
type review struct {
	rec                  audit.Record
	ev                   audit.Evidence
	confirmed, dismissed string // the moderators who did, if any
}

// findReview reads the review detection id and the decisions on it.
func (s *Service) findReview(id string) (review, error) {
	var rv review
	if s.decisions.audit == nil {
		return rv, errors.New("no audit log is configured: detections cannot be looked up")
	}
	found := false
	err := audit.Read(s.decisions.audit.Path(), time.Time{}, func(r audit.Record) error {
		switch {
		case r.ID == id && r.Kind == audit.KindReview:
			rv.rec, found = r, true
		case r.Kind == audit.KindAction && r.Ref == id && r.Outcome == audit.OutcomeOK && r.Action == audit.ActionConfirm:
			rv.confirmed = r.User
		case r.Kind == audit.KindAction && r.Ref == id && r.Outcome == audit.OutcomeOK && r.Action == audit.ActionDismiss:
			rv.dismissed = r.User
		}
		return nil
	})
	if err != nil {
		return rv, fmt.Errorf("reading the audit log: %w", err)
	}
	if !found {
		return rv, fmt.Errorf("%w: %q", ErrUnknownDetection, id)
	}
	if err := json.Unmarshal(rv.rec.Verdict, &rv.ev); err != nil {
		return rv, fmt.Errorf("detection %s: %w", id, err)
	}
	return rv, nil
}

// exactEntries are the media's own exact digests from a review record.
func exactEntries(r audit.Record) []matcher.OwnedEntry {
	var out []matcher.OwnedEntry
	for _, t := range []matcher.HashType{matcher.MD5, matcher.SHA1, matcher.SHA256} {
		if h := r.Digests[string(t)]; h != "" {
			out = append(out, matcher.OwnedEntry{Type: t, Hash: h})
		}
	}
	return out
}

// ConfirmDetection is a moderator's confirmation that review detection id
// is what its bank lists. The media's exact digests and the PDQ hashes of
// the forms that fell in the review band go into the confirmed bank,
// keyed by id, written atomically and reloaded at once (so every later
// upload of it is refused); stored media is blocked in this proxy's
// memory and quarantined through synapse_admin when configured; with a
// media ledger, the bank change starts its retro-scan, which blocks it
// (and anything else now matching) for every instance and quarantines it.
// The decision is audited with the moderator's ID. It is idempotent: a
// second confirmation answers that it was already confirmed and changes
// nothing. The reply is a sentence for the moderator; an unknown id is an
// error wrapping ErrUnknownDetection.
func (s *Service) ConfirmDetection(ctx context.Context, id, moderator string) (string, error) {
	d := &s.decisions
	if d.confirmed == nil {
		return "", errors.New("no confirmed_bank is configured: confirmations have nowhere to go")
	}
	decideMu.Lock()
	defer decideMu.Unlock()
	if err := ctx.Err(); err != nil {
		return "", err
	}
	rv, err := s.findReview(id)
	if err != nil {
		return "", err
	}
	if rv.dismissed != "" {
		return fmt.Sprintf("detection %s was already dismissed by %s; it is allowlisted, not confirmed", id, rv.dismissed), nil
	}
	if rv.confirmed != "" || d.confirmed.Has(id) {
		return fmt.Sprintf("detection %s was already confirmed (by %s)", id, or(rv.confirmed, "an earlier decision")), nil
	}
	entries := exactEntries(rv.rec)
	for _, f := range rv.ev.MatchedPDQ {
		entries = append(entries, matcher.OwnedEntry{Type: matcher.PDQ, Hash: f.PDQ})
	}
	if len(rv.ev.MatchedPDQ) == 0 && rv.rec.Digests["pdq"] != "" {
		entries = append(entries, matcher.OwnedEntry{Type: matcher.PDQ, Hash: rv.rec.Digests["pdq"]})
	}
	if len(entries) == 0 {
		return "", fmt.Errorf("detection %s has no hashes on record to bank", id)
	}
	// With a ledger, the reload's bank change starts the retro-scan.
	if err := s.bankDecision(d.confirmed, d.confirmedName, id, entries); err != nil {
		return "", err
	}
	what := "it was not stored (a refused upload)"
	if server, media, ok := strings.Cut(rv.rec.Media, "/"); ok && server != "" && media != "" {
		s.proxy.Memory().Block(mediaproxy.MediaKey{Server: server, ID: media}, "confirmed by "+moderator+" (detection "+id+")")
		what = "mxc://" + rv.rec.Media + " is blocked"
		if s.book == nil {
			// With a ledger the retro-scan quarantines it.
			s.acts.QuarantineConfirmed(id, server, media)
		}
		if s.acts.CanQuarantine() {
			what += " and quarantined"
		}
	}
	if err := d.audit.Append(audit.Record{Kind: audit.KindAction, Action: audit.ActionConfirm, Outcome: audit.OutcomeOK, Ref: id, User: moderator}); err != nil {
		s.log.Error("AUDIT RECORD NOT WRITTEN: a confirmation", zap.String("detection", id), zap.Error(err))
	}
	s.log.Info("review confirmed by a moderator", zap.String("detection", id), zap.String("moderator", moderator), zap.Int("entries", len(entries)))
	return fmt.Sprintf("confirmed detection %s: %d hashes added to bank %s; %s", id, len(entries), d.confirmedName, what), nil
}

// DismissDetection is a moderator's dismissal of review detection id as a
// false positive: the media's own exact digests go into the allowlist
// (the first `allow` bank), keyed by id and reloaded at once, so that
// this file never fires again whatever matches it; a held download is
// released. Audited with the moderator's ID; idempotent like
// ConfirmDetection.
func (s *Service) DismissDetection(ctx context.Context, id, moderator string) (string, error) {
	d := &s.decisions
	if d.allowlist == nil {
		return "", errors.New("no allowlist is configured (allow NAME PATH): dismissals have nowhere to go")
	}
	decideMu.Lock()
	defer decideMu.Unlock()
	if err := ctx.Err(); err != nil {
		return "", err
	}
	rv, err := s.findReview(id)
	if err != nil {
		return "", err
	}
	if rv.confirmed != "" {
		return fmt.Sprintf("detection %s was already confirmed by %s; it cannot be dismissed", id, rv.confirmed), nil
	}
	if rv.dismissed != "" || d.allowlist.Has(id) {
		return fmt.Sprintf("detection %s was already dismissed (by %s)", id, or(rv.dismissed, "an earlier decision")), nil
	}
	entries := exactEntries(rv.rec)
	if len(entries) == 0 {
		return "", fmt.Errorf("detection %s has no exact digests on record to allowlist", id)
	}
	if err := s.bankDecision(d.allowlist, d.allowName, id, entries); err != nil {
		return "", err
	}
	if server, media, ok := strings.Cut(rv.rec.Media, "/"); ok && server != "" && media != "" && rv.ev.Outcome == string(mediaproxy.Held) {
		s.proxy.Memory().Unblock(mediaproxy.MediaKey{Server: server, ID: media})
	}
	if err := d.audit.Append(audit.Record{Kind: audit.KindAction, Action: audit.ActionDismiss, Outcome: audit.OutcomeOK, Ref: id, User: moderator}); err != nil {
		s.log.Error("AUDIT RECORD NOT WRITTEN: a dismissal", zap.String("detection", id), zap.Error(err))
	}
	s.log.Info("review dismissed by a moderator", zap.String("detection", id), zap.String("moderator", moderator))
	return fmt.Sprintf("dismissed detection %s: the file is on allowlist %s and passes from now on", id, d.allowName), nil
}

// bankDecision writes a moderator's decision into bank b (named name)
// under id, durably, and reloads the banks so it is matched from now on,
// not at the next poll. An entry that could not be written is forgotten,
// so a later commit does not write it either.
func (s *Service) bankDecision(b *matcher.OwnedBank, name, id string, entries []matcher.OwnedEntry) error {
	if err := b.Put(id, entries); err != nil {
		return err
	}
	if _, err := b.Commit(); err != nil {
		b.Remove(id)
		return fmt.Errorf("writing bank %s: %w", name, err)
	}
	if err := s.local.Reload(); err != nil {
		s.log.Error("bank written, but the banks did not all reload", zap.String("bank", name), zap.Error(err))
	}
	return nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
