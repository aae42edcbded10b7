#!/usr/bin/env bash
# A podman peer for the container tests: rootful podman (cgroupfs manager, runc or crun) with a
# locally built busybox image, no network and ulimits this machine can grant. Nothing global is
# changed: podman reads the fixture's own containers.conf through CONTAINERS_CONF.
#
# usage: tests/peers/podman.sh up                 build and load the image (idempotent)
#        tests/peers/podman.sh run NAME [ENTRYPOINT [ARG...]]
#                                                 start a container (label needle-test=1; the
#                                                 image runs `sleep inf` by default); prints its
#                                                 64-hex id
#        tests/peers/podman.sh rm ID|NAME         remove it at once (busybox sleep ignores TERM)
#        tests/peers/podman.sh down               remove every container labelled needle-test=1
# Env: NEEDLE_PODMAN_DIR (default /tmp/needle-test/podman).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${NEEDLE_PODMAN_DIR:-/tmp/needle-test/podman}
image=localhost/needle-test/busybox:1
export CONTAINERS_CONF=$dir/containers.conf

write_conf() {
  mkdir -p "$dir"
  # Containers may not raise a hard limit here (no CAP_SYS_RESOURCE): ask for what we have.
  local nofile nproc
  nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] && nofile=1048576
  nproc=$(ulimit -Hu); { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
  local tmp
  tmp=$(mktemp "$dir/containers.conf.XXXXXX")
  cat > "$tmp" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
netns = "none"
CONF
  chmod 0644 "$tmp"
  mv "$tmp" "$CONTAINERS_CONF"   # atomic: parallel tests may write it at once
}

case ${1:-} in
  up)
    command -v podman >/dev/null || { echo "podman.sh: podman is not installed" >&2; exit 1; }
    write_conf
    if ! podman image exists "$image"; then
      tar=$(mktemp "$dir/busybox-image.XXXXXX")
      "$here/oci-image-build.sh" "$image" "$tar" >/dev/null
      podman load -q -i "$tar" >/dev/null
      rm -f "$tar"
    fi
    ;;
  run)
    name=${2:?usage: podman.sh run NAME [ENTRYPOINT [ARG...]]}
    shift 2
    [ -s "$CONTAINERS_CONF" ] || write_conf
    if [ $# -gt 0 ]; then
      entrypoint=$1
      shift
      podman run -d --label needle-test=1 --name "$name" --entrypoint "$entrypoint" "$image" "$@"
    else
      podman run -d --label needle-test=1 --name "$name" "$image"
    fi
    ;;
  rm)
    podman rm -f -t 0 "${2:?usage: podman.sh rm ID}" >/dev/null
    ;;
  down)
    ids=$(podman ps -aq --filter label=needle-test=1 2>/dev/null || true)
    [ -z "$ids" ] || podman rm -f -t 0 $ids >/dev/null
    ;;
  *)
    echo "usage: podman.sh up | run NAME [ENTRYPOINT [ARG...]] | rm ID | down" >&2
    exit 2
    ;;
esac
