// Package deploycheck reads the deployment files under examples/ (a
// Dockerfile, systemd unit files, a Compose file) into plain values, so
// the tests that check those examples can compare them with each other and
// with the Caddyfiles they ship. It reads only what those files use; it is
// for tests only, and nothing in the shipped module imports it.
package deploycheck
