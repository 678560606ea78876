package caddymodule

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/mediaguard/mediaguard/matcher"
)

// parsePolicyOption reads the options every list source shares, `mode
// enforce|report` and `category csam|ncii|terror|spam`, when d is at one;
// ok is false for any other option, which the caller then reads.
func parsePolicyOption(d *caddyfile.Dispenser, what string, mode, category *string) (ok bool, err error) {
	switch d.Val() {
	case "mode":
		if !d.Args(mode) || d.NextArg() {
			return true, d.Errf("%s: want `mode enforce|report`", what)
		}
		if _, err := matcher.ParseMode(*mode, ""); err != nil {
			return true, d.Errf("%s: %v", what, err)
		}
		return true, nil
	case "category":
		if !d.Args(category) || d.NextArg() {
			return true, d.Errf("%s: want `category csam|ncii|terror|spam`", what)
		}
		if !matcher.ValidCategory(*category) {
			return true, d.Errf("%s: category must be one of %v, not %q", what, matcher.Categories, *category)
		}
		return true, nil
	}
	return false, nil
}
