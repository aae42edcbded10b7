#!/usr/bin/env bash
# A three-server NATS cluster with JetStream on loopback for the nats sink's tests.
#   clients 127.0.0.1:BASE+0..2, routes BASE+100+0..2, monitoring http://127.0.0.1:BASE+200+0..2
# Everything (configs, JetStream stores, logs, pid files) lives in DIR.
#
#   nats-cluster.sh up DIR BASE     # starts the servers not running; waits for a healthy
#                                   # JetStream with a meta leader on every server
#   nats-cluster.sh kill DIR N      # SIGKILL server N (1..3), as a crash would
#   nats-cluster.sh down DIR        # stops all three; idempotent
set -euo pipefail
cmd=${1:-}
D=${2:-}
[ -n "$cmd" ] && [ -n "$D" ] || { echo "usage: $0 up DIR BASE | kill DIR N | down DIR" >&2; exit 2; }

alive() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; }
ours() { [ -s "$D/n$1.pid" ] && alive "$(cat "$D/n$1.pid")" &&
         grep -q '^nats-server' "/proc/$(cat "$D/n$1.pid")/comm" 2>/dev/null; }

up() {
  local B=${1:?base port} i
  command -v nats-server >/dev/null || { echo "nats-server is not installed" >&2; exit 1; }
  mkdir -p "$D"
  echo "$B" >"$D/base"
  local routes="nats-route://127.0.0.1:$((B + 100)), nats-route://127.0.0.1:$((B + 101)), nats-route://127.0.0.1:$((B + 102))"
  for i in 1 2 3; do
    ours "$i" && continue
    mkdir -p "$D/n$i/js"
    cat >"$D/n$i.conf" <<CONF
server_name: n$i
listen: 127.0.0.1:$((B + i - 1))
http: 127.0.0.1:$((B + 200 + i - 1))
jetstream {
  store_dir: "$D/n$i/js"
  max_memory_store: 64MB
  max_file_store: 512MB
}
cluster {
  name: needle-test
  listen: 127.0.0.1:$((B + 100 + i - 1))
  routes: [ $routes ]
}
CONF
    nohup nats-server -c "$D/n$i.conf" >>"$D/n$i.log" 2>&1 &
    echo $! >"$D/n$i.pid"
  done
  for i in 1 2 3; do
    local ok=0
    for _ in $(seq 300); do
      if curl -sf "http://127.0.0.1:$((B + 200 + i - 1))/healthz?js-enabled-only=true" >/dev/null 2>&1 &&
         curl -sf "http://127.0.0.1:$((B + 200 + i - 1))/jsz" 2>/dev/null | grep -q '"leader"'; then
        ok=1; break
      fi
      sleep 0.1
    done
    [ $ok = 1 ] || { echo "server n$i is not healthy" >&2; tail -20 "$D/n$i.log" >&2; exit 1; }
  done
  echo "nats://127.0.0.1:$B,nats://127.0.0.1:$((B + 1)),nats://127.0.0.1:$((B + 2))"
}

stop_one() {   # N SIGNAL
  local pid i
  ours "$1" || { rm -f "$D/n$1.pid"; return 0; }
  pid=$(cat "$D/n$1.pid")
  kill "-$2" "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
  alive "$pid" && kill -9 "$pid" 2>/dev/null || true
  rm -f "$D/n$1.pid"
}

case $cmd in
  up) up "${3:-}" ;;
  kill) stop_one "${3:?server number}" KILL ;;
  down) for i in 1 2 3; do stop_one "$i" TERM; done ;;
  *) echo "usage: $0 up DIR BASE | kill DIR N | down DIR" >&2; exit 2 ;;
esac
