#!/usr/bin/env bash
# Storm against the real needle with every source and enricher on (read-only opens included):
# OPENS opens of one file and EXECS execs, at once and as fast as the machine allows. Reports the
# events written per second, kernel and queue drops and that each one was signalled by a
# needle.gap event (the summary's counters against the gap events' counts), needle's RSS idle and
# at peak (anonymous memory apart from the ring mapping), and the time from `needle run` to the
# readiness line.
#
#   tests/bench/storm.sh [BUILD_DIR] [OPENS] [EXECS] [WORKERS]
#     (root; default build/release 1000000 50000 2; RING_KIB sets the ring's size; OPENS or
#     EXECS 0 leaves that half out)
set -euo pipefail
. "$(dirname "$0")/common.sh"
build=${1:-build/release}
opens=${2:-1000000}
execs=${3:-50000}
workers=${4:-2}
bin="$build/bin/needle"
storm="$build/bench/exec_storm"
load="$build/bench/bench_load"
[ -x "$bin" ] && [ -x "$storm" ] && [ -x "$load" ] ||
  { echo "storm: build first ($bin, $storm, $load)" >&2; exit 2; }
dir=$(mktemp -d /tmp/needle-storm.XXXXXX)
pid=
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi; rm -rf "$dir"' EXIT
mkdir "$dir/work"
all_sources_config "$dir/events.jsonl" >"$dir/needle.toml"

rss() {   # RssAnon RssFile RssShmem in KiB
  awk '/^RssAnon|^RssFile|^RssShmem/ {printf "%s ", $2}' "/proc/$1/status"
}

t0=$(date +%s.%N)
start_needle "$bin" "$dir"
t_ready=$(date +%s.%N)
sleep 1
read -r idle_anon idle_file idle_shmem <<<"$(rss "$pid")"
before=$(wc -l <"$dir/events.jsonl")

peak_anon=0 peak_file=0 peak_shmem=0
( while kill -0 "$pid" 2>/dev/null; do rss "$pid"; echo; sleep 0.05; done ) >"$dir/rss" &
sampler=$!
t_storm=$(date +%s.%N)
opener=
if ((opens > 0)); then
  "$load" open "$opens" "$dir/work" >"$dir/opens.out" &
  opener=$!
else
  echo "open 0 0 0 0 0 0" >"$dir/opens.out"   # an exec storm only
fi
if ((execs > 0)); then
  "$storm" "$execs" "$workers" /bin/true >"$dir/storm.out"
fi
if [ -n "$opener" ]; then
  wait "$opener"
fi
storm_secs=$(echo "$(date +%s.%N) - $t_storm" | bc -l)
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
sum_summary() {   # sum_summary WHAT: the summary's counters named WHAT, summed
  { grep -o "$1 [0-9]*" "$dir/stderr" || true; } | awk '{s += $NF} END {print s + 0}'
}
sum_gaps() {   # sum_gaps STAGE: gap.count summed over the needle.gap events of that stage
  { grep -F '"type":"needle.gap"' "$dir/events.jsonl" || true; } |
    { grep -F "\"stage\":\"$1\"" || true; } | { grep -o '"count":[0-9]*' || true; } |
    awk -F: '{s += $2} END {print s + 0}'
}
kdrops=$(sum_summary 'kernel drops')
qdrops=$(sum_summary 'queue drops')
ring_kib=$(awk -F' *= *' '/ring_kib/ {print $2}' "$dir/needle.toml")
opened=$({ grep -F '"type":"file.open"' "$dir/events.jsonl" || true; } |
         { grep -cF "\"exe\":\"$(readlink -f "$load")\"" || true; })
execd=$({ grep -F '"type":"process.exec"' "$dir/events.jsonl" || true; } |
        { grep -cF '"exe":"/usr/bin/true"' || true; })

echo "storm: $opens opens ($(awk '{print $4}' "$dir/opens.out") ns each) and $execs execs" \
  "($workers workers) in $(printf '%.2f' "$storm_secs") s"
printf 'events written during the storm: %d (%.0f events/s)\n' "$events" \
  "$(echo "$events / $storm_secs" | bc -l)"
echo "file.open events of the opener: $opened of $opens; process.exec of /usr/bin/true: $execd of $execs"
echo "kernel drops: $kdrops (in needle.gap events: $(sum_gaps kernel));" \
  "queue drops: $qdrops (in needle.gap events: $(sum_gaps queue))"
accounted=$((opened + $(sum_gaps kernel) + $(sum_gaps queue)))
if ((accounted >= opens)); then
  echo "no silent loss: the opener's events written plus every gap counted ($accounted) cover its $opens opens"
else
  echo "SILENT LOSS: the opener's events written plus every gap counted ($accounted) < its $opens opens"
fi
printf 'start to readiness: %.3f s\n' "$(echo "$t_ready - $t0" | bc -l)"
echo "RSS idle: anon $idle_anon KiB, file $idle_file KiB, shmem $idle_shmem KiB"
echo "RSS peak: anon $peak_anon KiB, file $peak_file KiB, shmem $peak_shmem KiB"
echo "ring mapping: $ring_kib KiB (its data pages are mapped twice; counted apart from anon)"
sed -n '/needle summary/,$p' "$dir/stderr"
