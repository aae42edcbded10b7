#!/usr/bin/env bash
# Starts or stops a Fluentd Forward receiver for the forward sink's tests; loopback or a unix
# socket only. Everything lives in DIR: events.jsonl (one JSON line per entry), receiver.pid,
# receiver.log, port (TCP).
#
#   forward-receiver.sh up DIR      # prints "impl=node|python|stream where=..." once listening
#   forward-receiver.sh down DIR    # idempotent; waits for the receiver to flush and exit
#
# Environment for up:
#   FWD_IMPL          auto (default: node if the npm package can be had, else python), node,
#                     python, or stream (stream_receiver.py, for mode = "stream"; needs FWD_SOCKET)
#   FWD_SOCKET        unix socket path; otherwise FWD_PORT on 127.0.0.1 (default 0: any free port)
#   FWD_SHARED_KEY    require the shared-key handshake
#   FWD_DROP_FIRST, FWD_NOACK_FIRST   fault injection (python only, see forward_receiver.py)
#   FWD_TLS_CERT, FWD_TLS_KEY         serve TLS over TCP
#   NEEDLE_PEERS_CACHE  where npm installs @fluent-org/logger (default: DIR/..); installed once
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:-}
D=${2:-}
[ -n "$cmd" ] && [ -n "$D" ] || { echo "usage: $0 up|down DIR" >&2; exit 2; }

alive() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; }

down() {
  [ -s "$D/receiver.pid" ] || return 0
  local pid i
  pid=$(cat "$D/receiver.pid")
  if alive "$pid" && grep -qE '^(node|python3?)' "/proc/$pid/comm" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$D/receiver.pid"
}

node_package() {   # prints the folder holding node_modules/@fluent-org/logger, or fails
  local cache=${NEEDLE_PEERS_CACHE:-$D/..}/fluent-logger
  if [ -d "$cache/node_modules/@fluent-org/logger" ]; then echo "$cache"; return 0; fi
  command -v node >/dev/null && command -v npm >/dev/null || return 1
  mkdir -p "$cache"
  # One installer at a time when several tests start together.
  (
    flock 9
    [ -d "$cache/node_modules/@fluent-org/logger" ] ||
      timeout 120 npm install --prefix "$cache" --no-audit --no-fund --loglevel=error \
        @fluent-org/logger@1.0.10 >"$cache/npm.log" 2>&1
  ) 9>"$cache/.lock" || return 1
  [ -d "$cache/node_modules/@fluent-org/logger" ] && echo "$cache"
}

up() {
  mkdir -p "$D"
  down
  local impl=${FWD_IMPL:-auto} pkg=""
  if [ -n "${FWD_DROP_FIRST:-}${FWD_NOACK_FIRST:-}" ] && [ "$impl" = auto ]; then impl=python; fi
  if [ "$impl" = auto ] || [ "$impl" = node ]; then
    if pkg=$(node_package); then impl=node
    elif [ "$impl" = node ]; then echo "node or npm or @fluent-org/logger unavailable" >&2; exit 1
    else impl=python; fi
  fi
  rm -f "$D/port"
  [ -n "${FWD_SOCKET:-}" ] && rm -f "$FWD_SOCKET"
  export FWD_OUT="$D/events.jsonl" FWD_PORT_FILE="$D/port" FWD_PORT=${FWD_PORT:-0}
  case $impl in
    node) NODE_PATH="$pkg/node_modules" nohup node "$here/forward_receiver.js" >"$D/receiver.log" 2>&1 & ;;
    python) nohup /usr/bin/python3 "$here/forward_receiver.py" >"$D/receiver.log" 2>&1 & ;;
    stream) nohup /usr/bin/python3 "$here/stream_receiver.py" "unix:$FWD_SOCKET" "$FWD_OUT" \
              >"$D/receiver.log" 2>&1 & ;;
    *) echo "unknown FWD_IMPL=$impl" >&2; exit 2 ;;
  esac
  echo $! >"$D/receiver.pid"
  for _ in $(seq 300); do
    grep -q listening "$D/receiver.log" 2>/dev/null && break
    alive "$(cat "$D/receiver.pid")" || break
    sleep 0.05
  done
  grep -q listening "$D/receiver.log" || { echo "receiver did not start:" >&2; cat "$D/receiver.log" >&2; exit 1; }
  echo "impl=$impl where=${FWD_SOCKET:-127.0.0.1:$(cat "$D/port")}"
}

case $cmd in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down DIR" >&2; exit 2 ;;
esac
