// Package caddymodule is mediaguard's thin Caddy adapter: it registers the
// `mediaguard` app and command, and (as they land) the `mediaguard` and
// `mediaguard_lookup` HTTP handlers. Everything that can be plain Go lives in
// hashing/ and matcher/, which do not import Caddy.
package caddymodule
