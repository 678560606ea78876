package caddymodule

import (
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/mediaguard/mediaguard/matcher"
)

// ArachnidBackend is Arachnid Shield, the Canadian Centre for Child
// Protection's hash-matching service, asked after HMA with the PDQ hashes
// of each picture only (never its bytes or exact digests). Its matches are
// recorded in bank ARACHNID_CSAM, ARACHNID_HARMFUL (harmful-abusive
// material) or, for a classification added after this release,
// ARACHNID_OTHER.
type ArachnidBackend struct {
	// Username is the account's user name; a placeholder that resolves
	// empty stops the start.
	Username string `json:"username"`
	// Password is the account's password: use a placeholder such as
	// {env.ARACHNID_PASSWORD}; one that resolves empty stops the start.
	Password string `json:"password"`
	// BaseURL is the service's base URL (default
	// https://shield.projectarachnid.com/); lookups go to BaseURL/v1/pdq/.
	BaseURL string `json:"base_url,omitempty"`
	// Timeout bounds each request (default 2s).
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// BatchWindow is how long a lookup waits for concurrent lookups to
	// share its request (default 2ms); negative sends each on its own.
	BatchWindow caddy.Duration `json:"batch_window,omitempty"`
	// Mode is "enforce" or "report" for its matches (default: the app's
	// mode).
	Mode string `json:"mode,omitempty"`
	// Category is the kind of harm its answers are about, for notices,
	// audit records and lookup answers (e.g. csam).
	Category string `json:"category,omitempty"`
}

// plain resolves the placeholders: the username and password are both
// required, and one configured as a placeholder that resolves empty stops
// the start with an error naming it.
func (b *ArachnidBackend) plain(repl replacer) (*matcher.ArachnidConfig, error) {
	const what = "mediaguard: arachnid"
	user, err := secret(repl, what+" username", b.Username)
	if err != nil {
		return nil, err
	}
	pass, err := secret(repl, what+" password", b.Password)
	if err != nil {
		return nil, err
	}
	if user == "" || pass == "" {
		return nil, fmt.Errorf("%s: username and password are required (password {env.ARACHNID_PASSWORD})", what)
	}
	base := repl.ReplaceAll(b.BaseURL, "")
	if b.BaseURL != "" && base == "" {
		return nil, fmt.Errorf("%s base_url %s resolves to an empty value", what, b.BaseURL)
	}
	return &matcher.ArachnidConfig{
		URL: base, Username: user, Password: pass,
		Timeout: time.Duration(b.Timeout), BatchWindow: time.Duration(b.BatchWindow),
		Policy: matcher.BackendPolicy{Mode: b.Mode, Category: b.Category},
	}, nil
}

// parseArachnid reads the global option's block:
//
//	arachnid {
//		username NAME
//		password {env.ARACHNID_PASSWORD}
//		base_url URL
//		timeout 2s
//		batch_window 2ms|off
//		mode enforce|report
//		category csam|ncii|terror|spam
//	}
func parseArachnid(d *caddyfile.Dispenser) (*ArachnidBackend, error) {
	b := new(ArachnidBackend)
	if d.NextArg() {
		return nil, d.Errf("arachnid: want `arachnid { username U; password {env.ARACHNID_PASSWORD} }`, not an argument %q", d.Val())
	}
	for d.NextBlock(1) {
		if ok, err := parsePolicyOption(d, "arachnid", &b.Mode, &b.Category); ok {
			if err != nil {
				return nil, err
			}
			continue
		}
		var err error
		switch opt := d.Val(); opt {
		case "username", "password", "base_url":
			var v string
			if !d.Args(&v) {
				return nil, d.ArgErr()
			}
			switch opt {
			case "username":
				b.Username = v
			case "password":
				b.Password = v
			default:
				b.BaseURL = v
			}
		case "timeout":
			b.Timeout, err = durationArg(d)
		case "batch_window":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			if d.Val() == "off" {
				b.BatchWindow = -1
				break
			}
			dur, perr := caddy.ParseDuration(d.Val())
			if perr != nil || dur <= 0 || dur > time.Second {
				return nil, d.Errf("batch_window: want a duration up to 1s such as 2ms, or off, not %q", d.Val())
			}
			b.BatchWindow = caddy.Duration(dur)
		default:
			err = d.Errf("arachnid: unknown option %q", opt)
		}
		if err != nil {
			return nil, err
		}
		if d.NextArg() {
			return nil, d.Errf("arachnid: unexpected extra argument %q", d.Val())
		}
	}
	if strings.TrimSpace(b.Username) == "" || strings.TrimSpace(b.Password) == "" {
		return nil, d.Errf("arachnid: username and password are required")
	}
	return b, nil
}
