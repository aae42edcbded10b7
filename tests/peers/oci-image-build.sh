#!/usr/bin/env bash
# Builds a small OCI image archive (oci-layout tar, one uncompressed layer) from the host's static
# busybox, with no registry: `podman load -i` and `ctr images import` both accept it.
#
# usage: tests/peers/oci-image-build.sh IMAGE_REF OUT_TAR [ENTRYPOINT_JSON]
#   IMAGE_REF        e.g. localhost/needle-test/busybox:1
#   ENTRYPOINT_JSON  default ["/bin/sleep","inf"]
# Reproducible: fixed mtimes and owners, so the same inputs give the same digest.
set -euo pipefail
ref=${1:?usage: oci-image-build.sh IMAGE_REF OUT_TAR [ENTRYPOINT_JSON]}
out=${2:?usage: oci-image-build.sh IMAGE_REF OUT_TAR [ENTRYPOINT_JSON]}
entrypoint=${3:-'["/bin/sleep","inf"]'}

static_busybox() {
  [ -x /bin/busybox ] || return 1
  local o; o=$(LC_ALL=C ldd /bin/busybox 2>&1 || true)
  [[ $o == *"not a dynamic"* ]]
}
if ! static_busybox; then
  echo "oci-image-build.sh: needs a static /bin/busybox (apt-get install busybox-static)" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/rootfs
mkdir -p "$root"/{bin,etc,proc,sys,dev,tmp,root}
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
chmod 1777 "$root/tmp"

tarball() {   # tarball DIR OUT FILES...
  local dir=$1 dest=$2; shift 2
  tar --sort=name --mtime='2024-01-01 00:00:00Z' --owner=0 --group=0 --numeric-owner \
      -C "$dir" -cf "$dest" "$@"
}
blob() {      # blob FILE -> moves it into blobs/sha256, prints "<sha> <size>"
  local sha size; sha=$(sha256sum "$1" | cut -d' ' -f1); size=$(stat -c %s "$1")
  mv "$1" "$oci/blobs/sha256/$sha"
  echo "$sha $size"
}

oci=$tmp/oci
mkdir -p "$oci/blobs/sha256"
tarball "$root" "$tmp/layer.tar" .
read -r layer_sha layer_size < <(blob "$tmp/layer.tar")
printf '{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z","config":{"Env":["PATH=/bin"],"Entrypoint":%s,"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$entrypoint" "$layer_sha" > "$tmp/config.json"
read -r config_sha config_size < <(blob "$tmp/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
  "$config_sha" "$config_size" "$layer_sha" "$layer_size" > "$tmp/manifest.json"
read -r manifest_sha manifest_size < <(blob "$tmp/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
  "$manifest_sha" "$manifest_size" "$ref" "${ref##*:}" > "$oci/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' > "$oci/oci-layout"
tarball "$oci" "$out" oci-layout index.json blobs
echo "built $ref -> $out (manifest sha256:$manifest_sha)"
