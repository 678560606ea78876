// Command caddy is mediaguard's Caddy build: the standard modules plus ours.
// It is exactly what `xcaddy build --with github.com/mediaguard/mediaguard=.`
// generates; plain `go build ./xcaddy` is the reliable way to build it here.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/mediaguard/mediaguard/caddymodule"
)

func main() {
	caddycmd.Main()
}
