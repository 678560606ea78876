package caddymodule

import (
	"fmt"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"
)

// gateOptions are the Caddyfile options both API handlers
// (mediaguard_lookup, mediaguard_hma) take for the gate they share
// (internal/apigate): the key, the body bound and the rate limit.
type gateOptions struct {
	key   *string
	size  *int64
	rate  *float64
	burst *int
}

// parse reads the option d is at when it is one of api_key,
// max_body_size, rate_limit PER_SECOND [BURST] and rate_burst BURST; ok is
// false for any other, which the caller reads.
func (g gateOptions) parse(d *caddyfile.Dispenser) (ok bool, err error) {
	switch d.Val() {
	case "api_key":
		if !d.Args(g.key) {
			return true, d.ArgErr()
		}
	case "max_body_size":
		if !d.NextArg() {
			return true, d.ArgErr()
		}
		n, err := humanize.ParseBytes(d.Val())
		if err != nil || n == 0 {
			return true, d.Errf("max_body_size: want a size such as 64KB, not %q", d.Val())
		}
		*g.size = int64(n)
	case "rate_limit":
		args := d.RemainingArgs()
		if len(args) < 1 || len(args) > 2 {
			return true, d.ArgErr()
		}
		if _, err := fmt.Sscan(args[0], g.rate); err != nil || *g.rate <= 0 {
			return true, d.Errf("rate_limit: want requests per second, not %q", args[0])
		}
		if len(args) == 2 {
			return true, parseBurst(d, args[1], g.burst)
		}
	case "rate_burst":
		args := d.RemainingArgs()
		if len(args) != 1 {
			return true, d.ArgErr()
		}
		return true, parseBurst(d, args[0], g.burst)
	default:
		return false, nil
	}
	return true, nil
}

// parseBurst reads a positive burst.
func parseBurst(d *caddyfile.Dispenser, s string, dst *int) error {
	if _, err := fmt.Sscan(s, dst); err != nil || *dst <= 0 {
		return d.Errf("rate_burst: want a positive burst, not %q", s)
	}
	return nil
}

// parseBlock reads a handler's whole Caddyfile block: no arguments, and
// only the gate's options; directive names it in errors.
func (g gateOptions) parseBlock(d *caddyfile.Dispenser, directive string) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		if ok, err := g.parse(d); ok {
			if err != nil {
				return err
			}
			continue
		}
		return d.Errf("%s: unknown option %q", directive, d.Val())
	}
	return nil
}
