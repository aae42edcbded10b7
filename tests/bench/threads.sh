#!/usr/bin/env bash
# CPU per event of each of needle's threads (needle-ring: decode; needle-pipeline: enrichers and
# encoding; sink:<id>: the sink's writes) under an open flood, with every source and enricher on
# (read-only opens included) and the file sink, as in configs/needle.toml. The flood is pinned
# to one CPU (WORKLOAD_CPU, default 0); needle is not. Prints each thread's user + system time
# over the flood divided by the events needle wrote, and the kernel drops (the summary's).
#
#   tests/bench/threads.sh [BUILD_DIR] [OPENS]     (root; default build/release 600000)
set -euo pipefail
. "$(dirname "$0")/common.sh"
build=${1:-build/release}
opens=${2:-600000}
bin="$build/bin/needle"
load="$build/bench/bench_load"
[ -x "$bin" ] && [ -x "$load" ] || { echo "threads: build first ($bin, $load)" >&2; exit 2; }
dir=$(mktemp -d /tmp/needle-threads.XXXXXX)
pid=
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi; rm -rf "$dir"' EXIT
mkdir "$dir/work"
all_sources_config "$dir/events.jsonl" >"$dir/needle.toml"

start_needle "$bin" "$dir"
sleep 1

ticks() {   # name ticks, one line per thread (utime + stime)
  for t in /proc/"$pid"/task/*; do
    read -r -a f <<<"$(sed 's/.*) //' "$t/stat")"
    echo "$(cat "$t/comm") $(basename "$t") $((f[11] + f[12]))"
  done
}
ticks >"$dir/before"
before=$(wc -l <"$dir/events.jsonl")
taskset -c "${WORKLOAD_CPU:-0}" "$load" open "$opens" "$dir/work" >/dev/null
sleep 1.5
ticks >"$dir/after"
kill -INT "$pid"
wait "$pid" || true
pid=
events=$(($(wc -l <"$dir/events.jsonl") - before))
hz=$(getconf CLK_TCK)
echo "$opens opens; $events events written during the flood"
join -1 2 -2 2 <(sort -k2 "$dir/before") <(sort -k2 "$dir/after") |
  awk -v ev="$events" -v hz="$hz" '{d = $5 - $3; if (d > 0) printf "%-16s %.2f us/event\n", $2, d / hz * 1e6 / ev}'
grep -oE "kernel drops [0-9]+" "$dir/stderr" | awk '{s += $3} END {print "kernel drops: " s + 0}'
