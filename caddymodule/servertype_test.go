package caddymodule

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	// The standard directives (reverse_proxy, encode, ...) the example
	// configurations use alongside ours.
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func serverType() caddyfile.ServerType { return httpcaddyfile.ServerType{} }
