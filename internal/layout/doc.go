// Package layout holds no code: its test checks the shape of the tree
// that the README's architecture section describes (one stage per
// package, Caddy only in the adapter).
package layout
