// Package caddymodule is mediaguard's thin Caddy adapter: it registers the
// `mediaguard` app, the `mediaguard` and `mediaguard_lookup` HTTP handlers,
// the Caddyfile directives and the `caddy mediaguard` command. It maps the
// JSON and Caddyfile config onto service.Config (resolving placeholders and
// secrets), shares state across config reloads (the audit log), and
// registers the Prometheus metrics and emits the Caddy event. Everything
// else is plain Go in the packages it wires (service, actions, mediaproxy,
// matcher, hashing, ...), which do not import Caddy.
package caddymodule
