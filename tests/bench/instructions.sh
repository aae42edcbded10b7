#!/usr/bin/env bash
# Instructions per event of a pipeline_bench stage (decode, lineage, cgroup, JSON), counted by
# callgrind, which do not drift as timings do on a virtual machine: the benchmark's
# instructions less its warm-up and its workload's construction, divided by the events encoded.
#
#   tests/bench/instructions.sh STREAM [MIN_TIME] [BUILD_DIR]
#     STREAM: file.open, file.flood, net.connect, mix, ... (pipeline_bench --benchmark_list_tests)
#     MIN_TIME: seconds per benchmark run (default 5; longer runs amortise the per-process caches'
#     warm-up, as on a host where needle has run for a while)
set -euo pipefail
stream=${1:?usage: instructions.sh STREAM [MIN_TIME] [BUILD_DIR]}
min_time=${2:-5}
build=${3:-build/release}
bench="$build/bench/pipeline_bench"
[ -x "$bench" ] || { echo "instructions: build first ($bench)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "instructions: valgrind is not installed" >&2; exit 2; }
dir=$(mktemp -d /tmp/needle-instructions.XXXXXX)
trap 'rm -rf "$dir"' EXIT
filter="stages/${stream//./\\.}/\\+json\$"
valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*BM_Pipeline*' \
  --callgrind-out-file="$dir/out" "$bench" --benchmark_filter="$filter" \
  --benchmark_min_time="$min_time" >/dev/null 2>&1
callgrind_annotate --threshold=100 --inclusive=yes "$dir/out" >"$dir/incl" 2>/dev/null
callgrind_annotate --inclusive=yes --tree=calling "$dir/out" >"$dir/calling" 2>/dev/null
# A function's inclusive count (0 when it does not appear).
count() {
  local v
  v=$(grep -F "$1" "$dir/incl" | grep -v '=>' | head -1 | awk '{gsub(",", "", $1); print $1}') ||
    true
  echo "${v:-0}"
}
total=$(grep "PROGRAM TOTALS" "$dir/incl" | awk '{gsub(",", "", $1); print $1}')
warm=$(count 'Pipeline::warm() [')
workload=$(count 'build_workload() [')
# The calls of encode_json from the benchmark (the most; a shared subtree's first encoding
# calls it too, a few times).
events=$(grep -E '>   .*core::encode_json\(' "$dir/calling" | sed -E 's/.*\(([0-9,]+)x\).*/\1/' |
  tr -d , | sort -n | tail -1)
[ -n "$events" ] && [ "$events" -gt 0 ] || { echo "instructions: no events counted" >&2; exit 1; }
echo "$stream: $(((total - ${warm:-0} - ${workload:-0}) / events)) instructions per event over $events events"
