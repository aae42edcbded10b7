#!/usr/bin/env bash
# Exec storm against the real needle: N execs as fast as the machine allows, then report events
# per second, kernel and queue drops (and that each was signalled as needle.gap), needle's RSS
# idle and at peak (anonymous memory apart from the ring mapping), and the time from `needle run`
# to the readiness line.
#
#   tests/bench/storm.sh [BUILD_DIR] [EXECS] [WORKERS]     (root; default build/release 20000 2)
set -euo pipefail
build=${1:-build/release}
execs=${2:-20000}
workers=${3:-2}
bin="$build/bin/needle"
storm="$build/bench/exec_storm"
[ -x "$bin" ] && [ -x "$storm" ] || { echo "storm: build first ($bin, $storm)" >&2; exit 2; }
dir=$(mktemp -d /tmp/needle-storm.XXXXXX)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
cat >"$dir/needle.toml" <<TOML
[needle]
log_level = "info"
ring_kib = ${RING_KIB:-8192}
[[source]]
plugin = "process"
[[sink]]
plugin = "file"
path = "$dir/events.jsonl"
TOML

rss() {   # RssAnon RssFile RssShmem in KiB
  awk '/^RssAnon|^RssFile|^RssShmem/ {printf "%s ", $2}' "/proc/$1/status"
}

t0=$(date +%s.%N)
"$bin" run -c "$dir/needle.toml" 2>"$dir/stderr" &
pid=$!
until grep -q "needle running:" "$dir/stderr"; do
  kill -0 "$pid" 2>/dev/null || { cat "$dir/stderr"; exit 1; }
  sleep 0.005
done
t_ready=$(date +%s.%N)
sleep 1
read -r idle_anon idle_file idle_shmem <<<"$(rss "$pid")"
before=$(wc -l <"$dir/events.jsonl")

peak_anon=0 peak_file=0 peak_shmem=0
( while kill -0 "$pid" 2>/dev/null; do rss "$pid"; echo; sleep 0.05; done ) >"$dir/rss" &
sampler=$!
"$storm" "$execs" "$workers" /bin/true >"$dir/storm.out"
sleep 1   # let the last records drain (ring_flush_ms)
kill "$sampler" 2>/dev/null || true
while read -r a f s; do
  [ -n "${a:-}" ] || continue
  ((a > peak_anon)) && peak_anon=$a
  ((f > peak_file)) && peak_file=$f
  ((s > peak_shmem)) && peak_shmem=$s
done <"$dir/rss"
kill -TERM "$pid"
wait "$pid" || true
after=$(wc -l <"$dir/events.jsonl")
events=$((after - before))
storm_secs=$(awk '{print $4}' "$dir/storm.out")
kdrops=$({ grep -o 'kernel drops [0-9]*' "$dir/stderr" || true; } | awk '{s+=$3} END {print s+0}')
qdrops=$({ grep -o 'queue drops [0-9]*' "$dir/stderr" || true; } | awk '{s+=$3} END {print s+0}')
gap_kernel=$({ grep '"needle.gap"' "$dir/events.jsonl" || true; } |
             { grep '"stage":"kernel"' || true; } | { grep -o '"count":[0-9]*' || true; } |
             awk -F: '{s+=$2} END {print s+0}')
ring_kib=$(awk -F' *= *' '/ring_kib/ {print $2}' "$dir/needle.toml")

echo "exec storm: $(cat "$dir/storm.out")"
printf 'events written during the storm: %d (%.0f events/s over the storm)\n' "$events" \
  "$(echo "$events / $storm_secs" | bc -l)"
echo "kernel drops: $kdrops (signalled as needle.gap: $gap_kernel); queue drops: $qdrops"
printf 'start to readiness: %.3f s\n' "$(echo "$t_ready - $t0" | bc -l)"
echo "RSS idle: anon $idle_anon KiB, file $idle_file KiB, shmem $idle_shmem KiB"
echo "RSS peak: anon $peak_anon KiB, file $peak_file KiB, shmem $peak_shmem KiB"
echo "ring mapping: $ring_kib KiB (its data pages are mapped twice; counted apart from anon)"
grep -A4 "needle summary" "$dir/stderr"
