#!/usr/bin/env bash
# Kernel overhead of needle, as the workloads feel it: each workload of bench_load runs alone and
# under needle in alternating pairs (off, on, off, on, ...) so drift hits both sides, and per
# workload the script prints the median on/off ratio with its min-max, the events needle wrote
# for the workload's process against the operations it performed, and the kernel and queue drops
# (summed from the needle.gap events, which is where every drop is reported).
#
#   tests/bench/overhead.sh [BUILD_DIR] [MODE] [PAIRS]                              (root)
#     MODE all   (default) every source on as in configs/needle.toml (read-only opens included,
#                every enricher, the file sink only), on every workload: the table of
#                docs/performance.md
#     MODE each  each source alone (with the file sink, no enricher) on its own workloads
#     MODE <source>   that source alone on its workloads
#   Two ratios per workload, from the same runs: wall (the workload's elapsed time, what it felt)
#   and cpu (its user + system time and its children's: the in-kernel cost, without waiting for
#   a CPU that needle's threads held).
#   FLOOR="hook record" adds, in the same pairs (off, needle, each floor), the floor tracers of
#   bench_floor: `hook` an empty sys_exit program (the kernel's tax on every syscall once any
#   program is on that hook), `record` a 64-byte ring record per exec, fork, open, connect,
#   accept, send, receive or signal syscall with batched wakeups and a consumer that only counts
#   (the issue's batched floor, on this kernel's hook). Their rows say "floor:MODE"; their events
#   column is the records of every process, their kdrops the ring's.
#   Environment: WORKLOADS="exec open" narrows the set; SCALE=2 doubles every operation count;
#   DNS_PORT (default 53, what the dns source watches); RUNG pins every source to one rung
#   (tp_btf, raw_tp, tp); WORKLOAD_CPU (default 0) is the CPU the workload is pinned to.
#   Why pin: on a VM, a workload whose threads wake each other (DNS, TCP) across CPUs pays for
#   waking an idle virtual CPU (here 120 us per DNS round trip with the other CPU idle, 17 us
#   with it busy), so without pinning "needle on" looks faster. needle itself is not pinned
#   unless NEEDLE_CPUS is set (a taskset CPU list, such as 1): a diagnostic that keeps needle's
#   threads off the workload's CPU, so what remains of the ratio is the in-kernel cost and the
#   host's own noise, not CPU time the workload lost to needle's threads.
set -euo pipefail
build=${1:-build/release}
mode=${2:-all}
pairs=${3:-7}
bin="$build/bin/needle"
load="$build/bench/bench_load"
floor_bin="$build/bench/bench_floor"
floors=${FLOOR:-}
[ -x "$bin" ] && [ -x "$load" ] || { echo "overhead: build first ($bin, $load)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "overhead: needs root (needle loads BPF programs)" >&2; exit 2; }
for f in $floors; do
  [ "$f" = hook ] || [ "$f" = record ] || { echo "overhead: FLOOR takes hook and record" >&2; exit 2; }
  [ -x "$floor_bin" ] || { echo "overhead: build first ($floor_bin)" >&2; exit 2; }
done
((pairs >= 1)) || { echo "overhead: PAIRS must be at least 1" >&2; exit 2; }
dns_port=${DNS_PORT:-53}
scale=${SCALE:-1}
workload_cpu=${WORKLOAD_CPU:-0}
needle_cpus=${NEEDLE_CPUS:-}

dir=$(mktemp -d /tmp/needle-overhead.XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
mkdir "$dir/work"

# The container workload makes cgroups in a cgroup2 folder of its own.
cgroot=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
cgdir=
if [ -n "$cgroot" ] && mkdir -p "$cgroot/needle-bench" 2>/dev/null; then
  cgdir="$cgroot/needle-bench"
  trap 'cleanup; rmdir "$cgdir" 2>/dev/null || true' EXIT
fi

# Per workload: operations per run (each run lasts about a second here), the event type counted
# for it, and the field that ties the event to the workload's process.
declare -A ops=([exec]=1500 [fork]=5000 [open]=200000 [file]=20000 [connect]=10000 [dns]=20000
                [null]=2000000 [tcp]=20000 [signal]=200000 [cgroup]=3000)
declare -A counted=([exec]=process.exec [fork]=process.fork [open]=file.open [file]=file.rename
                    [connect]=net.connect [dns]=dns.query [null]=- [tcp]=- [signal]=ipc.signal
                    [cgroup]=container.create)
declare -A by=([exec]=ppid [fork]=ppid)
arg_of() {
  case $1 in
    open | file) echo "$dir/work" ;;
    dns) echo "$dns_port" ;;
    tcp) echo 5301 ;;   # a port no source watches
    cgroup) echo "$cgdir" ;;
  esac
}
declare -A source_workloads=([process]="exec fork" [file]="open file null" [network]="connect null"
                             [dns]="dns tcp" [ipc]="signal null" [container]="cgroup")

write_config() {   # write_config SOURCE|all
  {
    echo '[needle]'
    echo 'log_level = "info"'
    if [ "$1" = all ]; then
      for s in process file ipc dns container network; do
        echo '[[source]]'
        echo "plugin = \"$s\""
        [ -n "${RUNG:-}" ] && echo "rung = \"$RUNG\""
        case $s in
          file) echo 'read_only = true' ;;
          dns) echo "ports = [$dns_port]" ;;
        esac
      done
      for e in lineage cgroup hash cri; do
        echo '[[enricher]]'
        echo "plugin = \"$e\""
      done
    else
      echo '[[source]]'
      echo "plugin = \"$1\""
      [ -n "${RUNG:-}" ] && echo "rung = \"$RUNG\""
      case $1 in
        file) echo 'read_only = true' ;;
        dns) echo "ports = [$dns_port]" ;;
      esac
    fi
    echo '[[sink]]'
    echo 'plugin = "file"'
    echo "path = \"$dir/events.jsonl\""
  } >"$dir/needle.toml"
}

# launch STDERR READY CMD...: starts CMD in the background (on NEEDLE_CPUS when set) with its
# stderr in STDERR, sets `pid`, and returns once STDERR has the line READY (exits with that
# stderr when CMD stops before).
launch() {
  local err=$1 ready=$2
  shift 2
  : >"$err"
  if [ -n "$needle_cpus" ]; then
    taskset -c "$needle_cpus" "$@" 2>"$err" &
  else
    "$@" 2>"$err" &
  fi
  pid=$!
  until grep -q "$ready" "$err"; do
    kill -0 "$pid" 2>/dev/null || { cat "$err" >&2; exit 1; }
    sleep 0.02
  done
}

start_needle() {
  rm -f "$dir/events.jsonl"
  launch "$dir/stderr" "needle running:" "$bin" run -c "$dir/needle.toml"
  sleep 0.5   # the start snapshot's events are out of the way
}

stop_needle() {   # SIGTERM drains the ring and the queues before needle exits
  kill -TERM "$pid"
  wait "$pid" || { echo "overhead: needle exited with an error" >&2; cat "$dir/stderr" >&2; exit 1; }
  pid=
}

count_events() {   # count_events TYPE FIELD PID: events of TYPE whose process FIELD is PID
  [ "$1" = - ] && { echo 0; return; }
  { grep -F "\"type\":\"$1\"" "$dir/events.jsonl" || true; } |
    { grep -cE "\"process\":\\{([^{}]*,)?\"$2\":$3[,}]" || true; }
}

gaps() {   # gaps STAGE: the sum of gap.count over the needle.gap events of that stage
  { grep -F '"type":"needle.gap"' "$dir/events.jsonl" || true; } |
    { grep -F "\"stage\":\"$1\"" || true; } | { grep -o '"count":[0-9]*' || true; } |
    awk -F: '{s += $2} END {print s + 0}'
}

run_one() {   # run_one WORKLOAD: one run; prints its output line
  local w=$1
  local n=$((ops[$w] * scale))
  # shellcheck disable=SC2046
  taskset -c "$workload_cpu" "$load" "$w" "$n" $(arg_of "$w")
}

floor_run() {   # floor_run MODE WORKLOAD: one run under the floor tracer; sets floor_out, floor_rec
  launch "$dir/floor.err" "floor running:" "$floor_bin" "$1" >"$dir/floor.out"
  floor_out=$(run_one "$2")
  kill -TERM "$pid"
  wait "$pid" || { echo "overhead: bench_floor failed" >&2; cat "$dir/floor.err" >&2; exit 1; }
  pid=
  floor_rec=$(awk '{print $3, $5}' "$dir/floor.out")   # records drops
}

ratio() {   # ratio FIELD OFF ON: field FIELD of the ON run's line over the OFF run's
  awk -v f="$1" -v a="$2" '{split(a, o, " "); print $f / o[f]}' <<<"$3"
}

median_range() {   # median_range RATIO...: "median min-max"
  printf '%s\n' "$@" | sort -g |
    awk '{a[NR] = $1} END {printf "%7.3f %7.3f-%-7.3f", a[int((NR + 1) / 2)], a[1], a[NR]}'
}

measure() {   # measure LABEL WORKLOAD
  local label=$1 w=$2
  if [ "$w" = cgroup ] && [ -z "$cgdir" ]; then
    printf '%-12s %-8s skipped: no writable cgroup2 folder\n' "$label" "$w"
    return
  fi
  run_one "$w" >/dev/null   # warm caches and the page cache
  local wall=() cpu=() events=0 performed=0 kdrops=0 qdrops=0
  local -A fwall=() fcpu=() frec=() fdrops=()
  for _ in $(seq 1 "$pairs"); do
    local off on
    off=$(run_one "$w")
    start_needle
    on=$(run_one "$w")
    stop_needle
    wall+=("$(ratio 4 "$off" "$on")")
    cpu+=("$(ratio 5 "$off" "$on")")
    for f in $floors; do
      floor_run "$f" "$w"
      fwall[$f]+=" $(ratio 4 "$off" "$floor_out")"
      fcpu[$f]+=" $(ratio 5 "$off" "$floor_out")"
      frec[$f]=$((${frec[$f]:-0} + ${floor_rec% *}))
      fdrops[$f]=$((${fdrops[$f]:-0} + ${floor_rec#* }))
    done
    performed=$((performed + $(awk '{print $2}' <<<"$on")))
    events=$((events + $(count_events "${counted[$w]}" "${by[$w]:-pid}" "$(awk '{print $6}' <<<"$on")")))
    kdrops=$((kdrops + $(gaps kernel)))
    qdrops=$((qdrops + $(gaps queue) + $(gaps decode)))
  done
  printf '%-12s %-8s %s %s %10d %12s %8d %8d\n' "$label" "$w" "$(median_range "${wall[@]}")" \
    "$(median_range "${cpu[@]}")" "$performed" "$events ${counted[$w]}" "$kdrops" "$qdrops"
  for f in $floors; do
    # shellcheck disable=SC2086
    printf '%-12s %-8s %s %s %10d %12s %8d %8s\n' "floor:$f" "$w" "$(median_range ${fwall[$f]})" \
      "$(median_range ${fcpu[$f]})" "$performed" "${frec[$f]} records" "${fdrops[$f]}" -
  done
}

header() {
  printf '%d alternating pairs, workload on CPU %s, needle on %s, on %s (%d CPUs), kernel %s\n' \
    "$pairs" "$workload_cpu" "${needle_cpus:-any CPU}" "$(hostname)" "$(nproc)" "$(uname -r)"
  printf '%-12s %-8s %7s %15s %7s %15s %10s %12s %8s %8s\n' needle workload wall min-max cpu \
    min-max ops events kdrops qdrops
}

all_workloads="exec fork open connect dns null tcp"
case $mode in
  all)
    write_config all
    header
    for w in ${WORKLOADS:-$all_workloads}; do measure all "$w"; done
    ;;
  each)
    header
    for s in process file network dns ipc container; do
      write_config "$s"
      for w in ${source_workloads[$s]}; do
        [ -z "${WORKLOADS:-}" ] || [[ " $WORKLOADS " == *" $w "* ]] || continue
        measure "$s" "$w"
      done
    done
    ;;
  *)
    [ -n "${source_workloads[$mode]:-}" ] || { echo "overhead: unknown mode or source $mode" >&2; exit 2; }
    write_config "$mode"
    header
    for w in ${WORKLOADS:-${source_workloads[$mode]}}; do measure "$mode" "$w"; done
    ;;
esac
