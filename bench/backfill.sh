#!/usr/bin/env bash
# backfill.sh: is `mediaguard backfill` as fast as `mediaguard hash` over the
# same files? Writes a synthetic Synapse media store of N mixed small
# pictures (JPEG, PNG, GIF, WebP; bench/backfillgen), then times
#
#   hash:     bin/caddy mediaguard hash --variants --json over every original
#             file, JOBS processes at once (xargs -P: hash is one process,
#             hashing one file after another), and
#   backfill: bin/caddy mediaguard backfill --jobs JOBS over the tree (dry
#             run, fresh ledger), which also walks, carves embedded files,
#             matches and writes the ledger,
#
# and prints backfill's throughput as a share of hash's. --variants is the
# proxy's default pdq_search, so both hash the same forms.
#
#   N=10000 JOBS=1 bench/backfill.sh      # the figure's run (ROUNDS=3 pairs)
#   KEEP=1 ...                            # keep the store in $DIR
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
JOBS=${JOBS:-1}
DIR=${DIR:-$(mktemp -d /tmp/mg-backfill-bench.XXXXXX)}
CADDY=${CADDY:-bin/caddy}
[ "${KEEP:-}" = 1 ] || trap 'rm -rf "$DIR"' EXIT

[ -x "$CADDY" ] || make build >/dev/null
store=$DIR/store
if [ ! -d "$store" ]; then
	echo "writing a media store of $N originals in $store"
	go run -tags nodynamic ./bench/backfillgen -dir "$store" -n "$N" -list "$DIR/files.txt"
fi
files=$(wc -l <"$DIR/files.txt")
bytes=$(xargs -a "$DIR/files.txt" stat -c %s | awk '{s += $1} END {print s}')
# An empty bank: nothing matches, so the run is all hashing.
: >"$DIR/bank.txt"
cat >"$DIR/config.json" <<JSON
{"apps":{"mediaguard":{"server_name":"bench.example","banks":[{"name":"BENCH","path":"$DIR/bank.txt"}],"temp_dir":"$DIR"}}}
JSON
sync

now() { date +%s.%N; }

# ROUNDS interleaved pairs, so drift on a shared machine hits both alike.
ROUNDS=${ROUNDS:-3}
ratios=()
for round in $(seq "$ROUNDS"); do
	t0=$(now)
	xargs -a "$DIR/files.txt" -n 100 -P "$JOBS" "$CADDY" mediaguard hash --variants --json >"$DIR/hash.out"
	t1=$(now)
	hash_s=$(echo "$t1 - $t0" | bc)
	hashed=$(jq -r .file "$DIR/hash.out" | sort -u | wc -l)

	rm -f "$DIR/ledger.db"
	t0=$(now)
	"$CADDY" mediaguard backfill --config "$DIR/config.json" --ledger "$DIR/ledger.db" \
		--synapse-media-store "$store" --jobs "$JOBS" --progress-every 30s >"$DIR/backfill.out" 2>"$DIR/backfill.err"
	t1=$(now)
	back_s=$(echo "$t1 - $t0" | bc)
	ratio=$(echo "$hash_s / $back_s" | bc -l)
	ratios+=("$ratio")
	printf 'round %d: hash %8.2f s (%d files reported), backfill %8.2f s, ratio %.3f\n' "$round" "$hash_s" "$hashed" "$back_s" "$ratio"
done
grep -E "hashed|files " "$DIR/backfill.out" | sed 's/^/  backfill says:/'
printf 'store: %d originals, %s bytes; jobs %d (hash as %d processes via xargs -P)\n' "$files" "$bytes" "$JOBS" "$JOBS"
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
printf 'ratio (backfill throughput / hash throughput), median of %d rounds: %.3f\n' "$ROUNDS" "$median"
