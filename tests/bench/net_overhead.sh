#!/usr/bin/env bash
# Kernel overhead of the dns or container source on its workload (tests/bench/net_load.c): runs
# the workload alone and under a needle that runs only that source, in alternating pairs (off,
# on, off, on, ...) so that drift hits both sides, and prints each pair's ns/op and the median
# of the on/off ratios.
#
#   tests/bench/net_overhead.sh [BUILD_DIR] [SOURCE] [WORKLOAD] [OPS] [PAIRS]       (root)
#     SOURCE    dns, container, or none (needle with no source: the baseline's noise)
#     WORKLOAD  dns (UDP query/answer round trips on a watched port), tcp (64 KiB writes of a
#               bulk stream on a port that is not watched), cgroup (mkdir+rmdir of a cgroup2
#               folder)
#   e.g. tests/bench/net_overhead.sh build/release dns dns 20000 7
# Env: PORT (the dns workload's port, added to the source's `ports`; default 15353);
#      LOAD_CPU / NEEDLE_CPU (default 1 / 0): the workload and needle are pinned to different
#      CPUs, so that the ratio shows the cost the kernel side adds to the workload's own CPU
#      rather than needle's user space competing with it (the round trips are latency bound);
#      METRIC=cpu compares the workload's CPU time (user + system) instead of its wall time,
#      which suffers less from other load on a shared machine;
#      FREEZE=1 stops needle (SIGSTOP) while the workload runs and lets it drain afterwards, with
#      a ring big enough for every record (RING_KIB, default 262144 then): the kernel side does
#      exactly the same work, but needle's user space cannot compete with the workload (on a
#      small VM its decoding shares the physical cores), so the ratio is the kernel's alone.
set -euo pipefail
build=${1:-build/release}
source=${2:-dns}
workload=${3:-dns}
ops=${4:-20000}
pairs=${5:-7}
port=${PORT:-15353}
bin="$build/bin/needle"
load="$build/bench/net_load"
[ -x "$bin" ] && [ -x "$load" ] || { echo "net_overhead: build first ($bin, $load)" >&2; exit 2; }
cgroup2=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
dir=$(mktemp -d /tmp/needle-net-overhead.XXXXXX)
pid=
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi; rm -rf "$dir"' EXIT
{
  echo '[needle]'
  echo 'log_level = "info"'
  if [ -n "${RING_KIB:-}" ] || [ "${FREEZE:-0}" = 1 ]; then
    echo "ring_kib = ${RING_KIB:-262144}"
  fi
  if [ "$source" != none ]; then
    echo '[[source]]'
    echo "plugin = \"$source\""
    [ "$source" = dns ] && echo "ports = [53, $port]"
  fi
  echo '[[sink]]'
  echo 'plugin = "file"'
  echo "path = \"$dir/events.jsonl\""
} >"$dir/needle.toml"

pin_load="taskset -c ${LOAD_CPU:-1}"
pin_needle="taskset -c ${NEEDLE_CPU:-0}"

one() {   # prints ns/op of one workload run
  case $workload in
    dns) $pin_load "$load" dns "$port" "$ops" ;;
    tcp) $pin_load "$load" tcp $((port + 1)) "$ops" ;;
    cgroup) $pin_load "$load" cgroup "$cgroup2" "$ops" ;;
    *) echo "unknown workload $workload" >&2; exit 2 ;;
  esac | awk -v m="${METRIC:-wall}" '{print (m == "cpu" ? $5 : $4)}'
}

start_needle() {
  : >"$dir/stderr"
  $pin_needle "$bin" run -c "$dir/needle.toml" 2>"$dir/stderr" &
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

one >/dev/null   # warm up
ratios=()
printf '%-6s %12s %12s %8s\n' pair off_ns/op on_ns/op ratio
for i in $(seq 1 "$pairs"); do
  off=$(one)
  start_needle
  if [ "${FREEZE:-0}" = 1 ]; then
    kill -STOP "$pid"
    on=$(one)
    kill -CONT "$pid"
    sleep 0.5
  else
    on=$(one)
  fi
  stop_needle
  r=$(echo "$on / $off" | bc -l)
  ratios+=("$r")
  printf '%-6s %12.1f %12.1f %8.3f\n' "$i" "$off" "$on" "$r"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
printf 'source %s, workload %s x %d: median on/off ratio %.3f (%+.1f%%)\n' "$source" "$workload" \
  "$ops" "$median" "$(echo "($median - 1) * 100" | bc -l)"
