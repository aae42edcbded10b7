#!/usr/bin/env bash
# The floor tracers that overhead.sh compares needle with must be what they say, or the
# comparison means nothing: `record` writes a record for each open of a workload (its count
# covers the opens, with no drop), `hook` attaches and writes none, and a wrong mode is refused.
#
# usage: floor_test.sh <build-dir>      (root; exit 77 = skipped; NEEDLE_REQUIRE_BPF=1 makes a
#                                        floor program that cannot load a failure)
set -euo pipefail
build=$1
floor="$build/bench/bench_floor"
load="$build/bench/bench_load"
require_bpf=${NEEDLE_REQUIRE_BPF:-0}

fail() { echo "floor_test: FAIL: $*" >&2; exit 1; }
skip() {
  if [ "$require_bpf" = 1 ]; then fail "$* (NEEDLE_REQUIRE_BPF=1)"; fi
  echo "floor_test: SKIP: $*" >&2
  exit 77
}

[ "$(id -u)" = 0 ] || skip "needs root (loads BPF programs)"
dir=$(mktemp -d /tmp/needle-floor-test.XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

# A wrong mode: usage, exit 2, nothing loaded.
rc=0
"$floor" bogus 2>"$dir/usage" || rc=$?
if [ "$rc" != 2 ] || ! grep -q "usage: bench_floor hook|record" "$dir/usage"; then
  fail "a wrong mode gave exit $rc: $(cat "$dir/usage")"
fi

# run_under MODE OPS: OPS opens under the floor tracer; sets `records` and `drops`.
run_under() {
  "$floor" "$1" >"$dir/out" 2>"$dir/err" &
  pid=$!
  until grep -q "floor running:" "$dir/err"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" || true
      pid=
      grep -q "does not load" "$dir/err" && skip "BPF cannot load here: $(cat "$dir/err")"
      fail "bench_floor $1 stopped before attaching: $(cat "$dir/err")"
    fi
    sleep 0.02
  done
  "$load" open "$2" "$dir" >/dev/null
  kill -TERM "$pid"
  wait "$pid" || fail "bench_floor $1 exited with an error: $(cat "$dir/err")"
  pid=
  read -r _ _ records _ drops <"$dir/out" || fail "no summary from bench_floor $1"
}

ops=20000
run_under record "$ops"
((records >= ops)) || fail "record: $records records for $ops opens"
[ "$drops" = 0 ] || fail "record: $drops drops for $ops opens"
grep -q "floor running: floor_record_" "$dir/err" || fail "record: $(cat "$dir/err")"

run_under hook "$ops"
if [ "$records" != 0 ] || [ "$drops" != 0 ]; then
  fail "hook: $records records, $drops drops"
fi
grep -q "floor running: floor_hook_" "$dir/err" || fail "hook: $(cat "$dir/err")"
echo "floor_test: record and hook tracers behave ($ops opens)"
