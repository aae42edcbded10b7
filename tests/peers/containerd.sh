#!/usr/bin/env bash
# A containerd peer with its CRI plugin for the cri enricher tests, apart from any containerd of
# the host: its own socket, root and state folders. Set for this kind of machine: no systemd
# (cgroupfs paths), no CAP_SYS_RESOURCE (restrict_oom_score_adj), no registry (a pause image
# built from busybox-static is the sandbox image) and no CNI network (host-network pods only).
#
# usage: tests/peers/containerd.sh up      start it and import the images (idempotent); prints
#                                          "address=<socket> image=<ref> digest=<sha256:...>"
#        tests/peers/containerd.sh stop    stop the daemon only (containers keep running)
#        tests/peers/containerd.sh start   start the daemon again after stop
#        tests/peers/containerd.sh down    stop it, its shims and every container it ran
#                                          (PURGE=1: and delete its folders)
# Env: NEEDLE_CTD_DIR (/tmp/needle-test/containerd: config, log, pid),
#      NEEDLE_CTD_ROOT (/var/lib/needle-test/containerd), NEEDLE_CTD_STATE (/run/needle-test/containerd),
#      NEEDLE_CTD_IMAGES (/tmp/needle-test/containerd-images: the image tars, shared)
# Runs that may overlap (tests in parallel) give each its own DIR, ROOT and STATE.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${NEEDLE_CTD_DIR:-/tmp/needle-test/containerd}
root=${NEEDLE_CTD_ROOT:-/var/lib/needle-test/containerd}
state=${NEEDLE_CTD_STATE:-/run/needle-test/containerd}
images=${NEEDLE_CTD_IMAGES:-/tmp/needle-test/containerd-images}
address=$state/containerd.sock
image=docker.io/needle-test/busybox:1
pause=docker.io/needle-test/pause:1

ctr_() { ctr --address "$address" "$@"; }
answers() { [ -S "$address" ] && ctr --address "$address" --connect-timeout 1s version >/dev/null 2>&1; }
# alive PID: exists and is not a zombie (this machine's PID 1 reaps orphans late).
alive() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; }
ours() { alive "$1" && grep -q '^containerd$' "/proc/$1/comm" 2>/dev/null; }

start_daemon() {
  if [ -s "$dir/containerd.pid" ] && ours "$(cat "$dir/containerd.pid")"; then
    return 0
  fi
  mkdir -p "$dir/cni" "$root" "$state"
  cat > "$dir/config.toml" <<CONF
version = 2
root = "$root"
state = "$state"
[grpc]
  address = "$address"
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "$pause"
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "$dir/cni"
CONF
  nohup containerd --config "$dir/config.toml" >>"$dir/containerd.log" 2>&1 &
  echo $! > "$dir/containerd.pid"
  for _ in $(seq 100); do answers && return 0; sleep 0.1; done
  echo "containerd.sh: containerd did not answer on $address" >&2
  tail -20 "$dir/containerd.log" >&2
  exit 1
}

stop_daemon() {
  [ -s "$dir/containerd.pid" ] || return 0
  local pid; pid=$(cat "$dir/containerd.pid")
  if ours "$pid"; then
    kill "$pid"
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -9 "$pid"
  fi
  rm -f "$dir/containerd.pid"
}

case ${1:-} in
  up)
    for tool in containerd ctr runc; do
      command -v "$tool" >/dev/null || { echo "containerd.sh: $tool is not installed" >&2; exit 1; }
    done
    start_daemon
    mkdir -p "$images"
    # Built to a temporary name and renamed: parallel runs never read a half-written tar.
    for pair in "busybox:$image" "pause:$pause"; do
      name=${pair%%:*} ref=${pair#*:}
      if [ ! -s "$images/$name.tar" ]; then
        "$here/oci-image-build.sh" "$ref" "$images/$name.tar.$$" >/dev/null
        mv "$images/$name.tar.$$" "$images/$name.tar"
      fi
      ctr_ -n k8s.io images import "$images/$name.tar" >/dev/null
    done
    digest=$(ctr_ -n k8s.io images ls | awk -v r="$image" '$1==r {print $3}')
    # A digest reference, as a registry pull leaves: CRI then reports image_ref repo@digest.
    ctr_ -n k8s.io images tag --force "$image" "${image%:*}@$digest" >/dev/null
    echo "address=$address image=$image digest=$digest"
    ;;
  stop)
    stop_daemon
    ;;
  start)
    start_daemon
    ;;
  down)
    if answers; then
      for t in $(ctr_ -n k8s.io tasks ls -q); do ctr_ -n k8s.io tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true; done
      for t in $(ctr_ -n k8s.io tasks ls -q); do
        for _ in $(seq 50); do ctr_ -n k8s.io tasks rm "$t" >/dev/null 2>&1 && break; sleep 0.1; done
      done
      for c in $(ctr_ -n k8s.io containers ls -q); do ctr_ -n k8s.io containers rm "$c" >/dev/null 2>&1 || true; done
    fi
    stop_daemon
    # Shims outlive a stopped daemon; those started for this socket are ours.
    for p in $(grep -lsa -- "$address" /proc/[0-9]*/cmdline | cut -d/ -f3); do
      grep -q '^containerd-shim' "/proc/$p/comm" 2>/dev/null && kill -9 "$p" 2>/dev/null || true
    done
    { findmnt -rn -o TARGET | grep -E "^($state|$root)/" || true; } | sort -r | while read -r m; do
      umount -l "$m" 2>/dev/null || true
    done
    if [ "${PURGE:-0}" = 1 ]; then
      rm -rf "$dir" "$root" "$state"
    fi
    ;;
  *)
    echo "usage: containerd.sh up|stop|start|down" >&2
    exit 2
    ;;
esac
