#!/usr/bin/env bash
# install-dendrite.sh: install the Dendrite homeserver binaries used by the
# end-to-end tests in internal/e2e (see internal/e2e/dendrite.go).
#
#   scripts/install-dendrite.sh            # into $(go env GOPATH)/bin
#   DENDRITE_BIN=/opt/dendrite/bin scripts/install-dendrite.sh
#
# Installs dendrite, generate-keys, generate-config and create-account from
# github.com/matrix-org/dendrite at $DENDRITE_VERSION (default v0.13.8) with
# `go install`. Dendrite's SQLite driver (mattn/go-sqlite3) needs cgo, so a C
# compiler (gcc) must be installed. Idempotent: a stamp file in $DENDRITE_BIN
# records the installed version; when it matches and every binary is present
# the script exits immediately. FORCE=1 reinstalls.
set -euo pipefail

if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
	sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"
	exit 0
fi

VERSION="${DENDRITE_VERSION:-v0.13.8}"
MODULE="github.com/matrix-org/dendrite"
CMDS=(dendrite generate-keys generate-config create-account)

command -v go >/dev/null 2>&1 || { echo "install-dendrite: go not found in PATH" >&2; exit 1; }
BIN="${DENDRITE_BIN:-$(go env GOPATH)/bin}"
STAMP="$BIN/.dendrite-version"

have_all() {
	local c
	for c in "${CMDS[@]}"; do [[ -x "$BIN/$c" ]] || return 1; done
	[[ -f "$STAMP" && "$(cat "$STAMP")" == "$VERSION" ]]
}

if [[ "${FORCE:-0}" != 1 ]] && have_all; then
	echo "install-dendrite: Dendrite $VERSION already installed in $BIN"
	exit 0
fi

if ! command -v "${CC:-gcc}" >/dev/null 2>&1 && ! command -v cc >/dev/null 2>&1; then
	echo "install-dendrite: no C compiler found; Dendrite needs cgo for SQLite (apt-get install gcc)" >&2
	exit 1
fi

mkdir -p "$BIN"
pkgs=()
for c in "${CMDS[@]}"; do pkgs+=("$MODULE/cmd/$c@$VERSION"); done

echo "install-dendrite: installing Dendrite $VERSION into $BIN (takes a few minutes)"
start=$(date +%s)
# Run outside any module so the caller's go.mod/go.work play no part, and
# pin the settings the build needs:
#   CGO_ENABLED=1   go-sqlite3 is a cgo package; without cgo Dendrite builds
#                   but fails at startup ("requires cgo to work").
#   GOFLAGS         drop inherited flags such as -mod=vendor that break
#                   `go install pkg@version`.
#   GOWORK=off      ignore any go.work in a parent directory.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
env GOBIN="$BIN" CGO_ENABLED=1 GOWORK=off GOFLAGS="-buildvcs=false" \
	go install "${pkgs[@]}"

echo "$VERSION" >"$STAMP"
echo "install-dendrite: done in $(( $(date +%s) - start ))s: $(cd "$BIN" && echo "${CMDS[@]}")"
