#!/usr/bin/env bash
# Runs the Go benchmarks behind BENCHMARKS.md and summarises them with
# benchstat. Run on a quiet machine: every ratio in BENCHMARKS.md compares
# benchmarks from the same run.
#
#   bench/gobench.sh [COUNT]        # default COUNT=6
#   MEDIAGUARD_BENCH_10M=1 bench/gobench.sh   # include the 10M-hash PDQ index runs
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-6}"
out=bench/out
mkdir -p "$out"
command -v benchstat >/dev/null || go install golang.org/x/perf/cmd/benchstat@latest
export PATH="$(go env GOPATH)/bin:$PATH"

echo "== $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(go version | cut -d' ' -f3)"
go test ./hashing -run '^$' -bench 'MD5|SHA1|SHA256|Serial3|Digester' -benchmem -count "$count" | tee "$out/digests.txt"
go test ./hashing/pdq -run '^$' -bench . -benchmem -count "$count" | tee "$out/pdq.txt"
go test ./matcher/pdqindex -run '^$' -bench '(Index|Linear|IndexVsLinear)1M$|Build1M' -benchmem -count "$count" | tee "$out/pdqindex.txt"
go test ./matcher -run '^$' -bench 'BankLoad1M' -benchmem -count "$count" | tee "$out/matcher.txt"
if [[ "${MEDIAGUARD_BENCH_10M:-}" == 1 ]]; then
	# Each command builds its own 10M bank (~10 s). The interleaved one is
	# the speed-up figure: index and scan alternate within one run.
	go test ./matcher/pdqindex -run '^$' -bench '(Index|Linear)10M$' -benchtime 300x -count 3 -timeout 30m | tee "$out/matcher10m.txt"
	go test ./matcher/pdqindex -run '^$' -bench 'IndexVsLinear10M$' -benchtime 1600x -count 5 -timeout 30m | tee -a "$out/matcher10m.txt"
	go test ./matcher -run '^$' -bench 'BankLoad10M$' -benchtime 3x -count 1 -timeout 30m | tee -a "$out/matcher10m.txt"
fi
go test ./mediaproxy -run '^$' -bench DownloadUnknown -benchtime 200x -benchmem -count "$count" | tee "$out/mediaproxy.txt"
go test ./lookupapi -run '^$' -bench . -benchmem -count "$count" | tee "$out/lookupapi.txt"
benchstat "$out"/digests.txt "$out"/pdq.txt "$out"/pdqindex.txt "$out"/matcher.txt "$out"/mediaproxy.txt "$out"/lookupapi.txt
