// Package examples holds no code: its tests check the deployment examples
// in this directory (the container image, the Compose file, the systemd
// units, the nginx front) against what they claim, and that upgrading
// under mediaguard.socket drops no request. The example Caddyfiles are
// adapted, and cross-checked against these files, in caddymodule's
// examples_test.go, which has the mediaguard module registered.
// README.md lists each example with the test that checks it.
package examples
