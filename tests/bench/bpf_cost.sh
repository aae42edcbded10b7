#!/usr/bin/env bash
# In-kernel cost of each of needle's BPF programs over one workload of bench_load: needle runs
# with every source and enricher on (as configs/needle.toml, read-only opens included) or with
# the sources named in SOURCES only, kernel.bpf_stats_enabled is on for the run, and the script
# prints per program the runs, the nanoseconds per run and the total, then the total per
# operation. The stats' own clock reads count in each run (a three-instruction early exit shows
# 70-100 ns here): the figures overstate cheap runs; `perf record -a -g` samples without that.
#
#   tests/bench/bpf_cost.sh BUILD_DIR OPS WORKLOAD [ARGS...]      (root)
#     e.g. tests/bench/bpf_cost.sh build/release 200000 open /tmp/x    (a directory to open in)
#          tests/bench/bpf_cost.sh build/release 10000 connect
#          tests/bench/bpf_cost.sh build/release 20000 dns 53
#   SOURCES="file" keeps only those sources (no enricher); RUNG pins their rung (e.g. tp_btf, the
#   plain one, or tp_btf+typed). The workload is pinned to WORKLOAD_CPU (default 0).
set -euo pipefail
. "$(dirname "$0")/common.sh"
build=${1:?usage: bpf_cost.sh BUILD_DIR OPS WORKLOAD [ARGS...]}
ops=${2:?usage: bpf_cost.sh BUILD_DIR OPS WORKLOAD [ARGS...]}
workload=${3:?usage: bpf_cost.sh BUILD_DIR OPS WORKLOAD [ARGS...]}
shift 3
bin="$build/bin/needle"
load="$build/bench/bench_load"
[ -x "$bin" ] && [ -x "$load" ] || { echo "bpf_cost: build first ($bin, $load)" >&2; exit 2; }
command -v bpftool >/dev/null || { echo "bpf_cost: bpftool is not installed" >&2; exit 2; }
dir=$(mktemp -d /tmp/needle-bpf-cost.XXXXXX)
pid=
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
      sysctl -q kernel.bpf_stats_enabled="$old_stats"; rm -rf "$dir"' EXIT
if [ -n "${SOURCES:-}" ]; then
  {
    echo '[needle]'
    echo 'log_level = "info"'
    for s in $SOURCES; do
      echo '[[source]]'
      echo "plugin = \"$s\""
      [ "$s" = file ] && echo 'read_only = true'
      [ -n "${RUNG:-}" ] && echo "rung = \"$RUNG\""
    done
    echo '[[sink]]'
    echo 'plugin = "file"'
    echo "path = \"$dir/events.jsonl\""
  } >"$dir/needle.toml"
else
  all_sources_config "$dir/events.jsonl" >"$dir/needle.toml"
fi
sysctl -q kernel.bpf_stats_enabled=1
start_needle "$bin" "$dir"
sleep 0.5
snapshot() {   # id name run_time_ns run_cnt, one line per program
  bpftool prog show -j | python3 -c '
import json, sys
for p in json.load(sys.stdin):
    print(p["id"], p.get("name", "?"), p.get("run_time_ns", 0), p.get("run_cnt", 0))'
}
snapshot >"$dir/before"
taskset -c "${WORKLOAD_CPU:-0}" "$load" "$workload" "$ops" "$@" >/dev/null
snapshot >"$dir/after"
kill -INT "$pid"
wait "$pid" || true
pid=
grep -h "runs on rung" "$dir/stderr" | sed 's/^.*info  //' | sort -u
python3 - "$dir/before" "$dir/after" "$ops" "$workload" <<'EOF'
import sys
before = {l.split()[0]: l.split() for l in open(sys.argv[1])}
ops, workload = int(sys.argv[3]), sys.argv[4]
total = 0
print(f"{'program':32s} {'runs':>10s} {'ns/run':>8s} {'total ms':>9s}")
for line in open(sys.argv[2]):
    f = line.split()
    b = before.get(f[0])
    if b is None:
        continue
    ns, runs = int(f[2]) - int(b[2]), int(f[3]) - int(b[3])
    if runs > 0:
        total += ns
        print(f"{f[1]:32s} {runs:10d} {ns / runs:8.0f} {ns / 1e6:9.1f}")
print(f"all programs: {total / ops:.0f} ns per {workload} operation ({ops} operations)")
EOF
