package caddymodule

import (
	"fmt"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
	"github.com/mediaguard/mediaguard/service"
)

// Review configures the moderators' loop: the review band of borderline
// matches, the bank their confirmations go to and the allowlists their
// dismissals go to. It is embedded in App, so its fields are the global
// block's.
type Review struct {
	// ReviewThreshold opens the review band: a PDQ match at a distance
	// above pdq_threshold and at most this (≤ 63), or a hash of quality
	// below min_pdq_quality within pdq_threshold, is not blocked but put
	// to the moderators. 0 (the default) means no band.
	ReviewThreshold int `json:"review_threshold,omitempty"`
	// ReviewAction is what happens to media in the band meanwhile:
	// "allow" (the default) lets it through, "hold" refuses it (403
	// upload, 404 download) until a moderator confirms or dismisses it.
	ReviewAction string `json:"review_action,omitempty"`
	// ConfirmedBank is the bank moderators' confirmations are written to
	// (created when missing, written by mediaguard only); it is also
	// matched like any bank.
	ConfirmedBank *matcher.BankConfig `json:"confirmed_bank,omitempty"`
	// Allow are allowlists: bank files whose exact entries (md5, sha1,
	// sha256 of the file) let the file pass whatever matched it.
	// Dismissals are written to the first, which mediaguard then owns.
	Allow []matcher.BankConfig `json:"allow,omitempty"`
}

// plain maps the review settings onto cfg.
func (r *Review) plain(cfg *service.Config) error {
	if r.ReviewThreshold != 0 {
		th := cfg.Local.PDQThreshold
		if th == 0 {
			th = matcher.DefaultPDQThreshold
		}
		if r.ReviewThreshold <= th || r.ReviewThreshold > matcher.MaxPDQThreshold {
			return fmt.Errorf("mediaguard: review_threshold %d must be above pdq_threshold %d and at most %d", r.ReviewThreshold, th, matcher.MaxPDQThreshold)
		}
	}
	cfg.Local.ReviewThreshold = r.ReviewThreshold
	switch r.ReviewAction {
	case "", mediaproxy.ReviewAllow, mediaproxy.ReviewHold:
		cfg.Proxy.ReviewAction = r.ReviewAction
	default:
		return fmt.Errorf("mediaguard: review_action must be allow or hold, not %q", r.ReviewAction)
	}
	// New slices: cfg.Local.Banks may share the App's backing array.
	banks := append([]matcher.BankConfig(nil), cfg.Local.Banks...)
	if c := r.ConfirmedBank; c != nil {
		banks = append(banks, *c)
		cfg.ConfirmedBank = c.Name
	}
	for i, b := range r.Allow {
		b.Allow = true
		banks = append(banks, b)
		if i == 0 {
			cfg.Allowlist = b.Name
		}
	}
	cfg.Local.Banks = banks
	return nil
}

// parseReviewOption reads review_threshold, review_action,
// confirmed_bank and allow when d is at one; ok is false otherwise.
func (a *App) parseReviewOption(d *caddyfile.Dispenser) (ok bool, err error) {
	r := &a.Review
	switch d.Val() {
	case "review_threshold":
		n, err := intArg(d, 1, matcher.MaxPDQThreshold)
		if err != nil {
			return true, err
		}
		r.ReviewThreshold = n
	case "review_action":
		if !d.Args(&r.ReviewAction) || (r.ReviewAction != mediaproxy.ReviewAllow && r.ReviewAction != mediaproxy.ReviewHold) {
			return true, d.Errf("review_action: want allow or hold")
		}
	case "confirmed_bank", "allow":
		dir := d.Val()
		var b matcher.BankConfig
		if !d.Args(&b.Name, &b.Path) {
			return true, d.Errf("%s: want `%s NAME PATH`", dir, dir)
		}
		if !matcher.ValidBankName(b.Name) {
			return true, d.Errf("%s: name %q must match [A-Z_][A-Z0-9_]*", dir, b.Name)
		}
		if dir == "allow" {
			r.Allow = append(r.Allow, b)
		} else {
			if r.ConfirmedBank != nil {
				return true, d.Errf("confirmed_bank: given twice")
			}
			r.ConfirmedBank = &b
		}
	default:
		return false, nil
	}
	return true, nil
}
