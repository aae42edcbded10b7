#!/usr/bin/env bash
# Kernel overhead of one source on its workload: runs the workload alone and under a needle that
# runs only that source, in alternating pairs (off, on, off, on, ...) so drift hits both sides,
# and prints each pair's ns/op and the median of the on/off ratios. METRIC=cpu (default) uses the
# workload's own CPU time (user + system: the kernel-side cost of the BPF programs in its
# syscalls, without the time it waited while needle's threads had the CPU); METRIC=wall uses the
# elapsed time (what the workload felt on this machine, needle's user-space work included).
#
#   tests/bench/source_overhead.sh [BUILD_DIR] [SOURCE] [WORKLOAD] [OPS] [PAIRS]
#     SOURCE: a source plugin name, or "none" (needle with no source: the baseline's noise)
#     WORKLOAD: a syscall_load kind (file, open, null, signal, tcp)
#   e.g. tests/bench/source_overhead.sh build/release file file 20000 7          (root)
set -euo pipefail
build=${1:-build/release}
source=${2:-file}
workload=${3:-file}
ops=${4:-20000}
pairs=${5:-7}
bin="$build/bin/needle"
load="$build/bench/syscall_load"
[ -x "$bin" ] && [ -x "$load" ] || { echo "source_overhead: build first ($bin, $load)" >&2; exit 2; }
dir=$(mktemp -d /tmp/needle-overhead.XXXXXX)
pid=
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi; rm -rf "$dir"' EXIT
mkdir "$dir/work"
{
  echo '[needle]'
  echo 'log_level = "info"'
  if [ "$source" != none ]; then
    echo '[[source]]'
    echo "plugin = \"$source\""
    [ -n "${RUNG:-}" ] && echo "rung = \"$RUNG\""
  fi
  echo '[[sink]]'
  echo 'plugin = "file"'
  echo "path = \"$dir/events.jsonl\""
} >"$dir/needle.toml"

field=5
[ "${METRIC:-cpu}" = wall ] && field=4
one() {   # prints ns/op of one workload run
  "$load" "$workload" "$ops" "$dir/work" | awk -v f="$field" '{print $f}'
}

start_needle() {
  : >"$dir/stderr"
  "$bin" run -c "$dir/needle.toml" 2>"$dir/stderr" &
  pid=$!
  until grep -q "needle running:" "$dir/stderr"; do
    kill -0 "$pid" 2>/dev/null || { cat "$dir/stderr" >&2; exit 1; }
    sleep 0.02
  done
  sleep 0.3
}

stop_needle() {
  kill -TERM "$pid"
  wait "$pid" || true
  pid=
  rm -f "$dir/events.jsonl"
}

one >/dev/null   # warm up caches and the page cache
ratios=()
printf '%-6s %12s %12s %8s\n' pair off_ns/op on_ns/op ratio
for i in $(seq 1 "$pairs"); do
  off=$(one)
  start_needle
  on=$(one)
  stop_needle
  r=$(echo "$on / $off" | bc -l)
  ratios+=("$r")
  printf '%-6s %12.1f %12.1f %8.3f\n' "$i" "$off" "$on" "$r"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
printf 'source %s, workload %s x %d (%s time): median on/off ratio %.3f (%+.1f%%)\n' "$source" \
  "$workload" "$ops" "${METRIC:-cpu}" "$median" "$(echo "($median - 1) * 100" | bc -l)"
