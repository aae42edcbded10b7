#!/usr/bin/env bash
# Installs what needle needs on Debian 12 (as root), builds it, then either runs it with the
# default config or runs the whole test suite. The README's two set-up commands call this.
#
#   scripts/setup.sh run    build (release) and run needle with configs/needle.toml
#   scripts/setup.sh test   build release and asan, unit tests under ASan+UBSan, then every test
#
# NEEDLE_REQUIRE_BPF=1 (set by .ci/run) turns every "cannot load BPF here" skip into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

RUN_PKGS=(build-essential cmake pkg-config clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev
          libboost-dev libtomlplusplus-dev libspdlog-dev libfmt-dev libmsgpack-cxx-dev)
TEST_PKGS=(googletest libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev)
RUN_PKGS+=(libssl-dev libnats-dev)   # sinks forward (TLS, SHA-512) and nats (JetStream)
# forward/nats tests: real peers. npm is not listed: Debian's npm conflicts with other nodejs
# builds; without npm the forward tests use the project's python3-msgpack receiver.
TEST_PKGS+=(nats-server python3-msgpack nodejs openssl curl)
TEST_PKGS+=(liburing-dev gcc-multilib)   # file source tests: io_uring and ia32 route helpers
# dns/container sources: libFuzzer runtime for tests/fuzz; podman, runc and a static busybox for
# the container tests (tests/peers/podman.sh builds the image from it).
TEST_PKGS+=(libclang-rt-dev podman runc busybox-static)
# packaging test: cpack's DEB (dpkg-shlibdeps, file) and RPM (rpmbuild) generators, lintian,
# systemd-analyze for the unit, man for the man page.
TEST_PKGS+=(dpkg-dev file rpm lintian systemd man-db)
# enrichers: hash (SHA-256 with libcrypto), cri (gRPC client, protoc + grpc_cpp_plugin at build
# time); the cri tests start a real containerd (runc, and busybox-static for the images).
RUN_PKGS+=(libssl-dev libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc)
TEST_PKGS+=(containerd runc busybox-static)
# sinks syslog and http: TLS (libssl), Boost.Beast (libboost-dev), gzip (zlib1g-dev); their
# tests start a real rsyslogd (with its OpenSSL driver), python3's stdlib HTTP receiver and
# make certificates with the openssl command.
RUN_PKGS+=(libssl-dev libboost-dev zlib1g-dev)
TEST_PKGS+=(rsyslog rsyslog-openssl python3 openssl)

install_missing() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

# Quiet unless it fails: then the whole log is shown.
quiet() {
  local log
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "setup: failed: $*" >&2
    exit 1
  fi
  rm -f "$log"
}

jobs=$(nproc 2>/dev/null || echo 2)
case "${1:-}" in
  run)
    install_missing "${RUN_PKGS[@]}"
    cmake --preset release -DNEEDLE_BUILD_TESTS=OFF -DNEEDLE_BUILD_BENCH=OFF >&2
    cmake --build --preset release -j "$jobs" >&2
    exec build/release/bin/needle run -c configs/needle.toml
    ;;
  test)
    install_missing "${RUN_PKGS[@]}" "${TEST_PKGS[@]}"
    quiet cmake --preset asan -DNEEDLE_TESTS_REQUIRED=ON
    quiet cmake --build --preset asan -j "$jobs" --target unit_tests
    echo "== unit tests under ASan+UBSan =="
    ctest --preset asan --no-label-summary -j "$jobs"
    quiet cmake --preset release -DNEEDLE_BUILD_TESTS=ON -DNEEDLE_TESTS_REQUIRED=ON
    quiet cmake --build --preset release -j "$jobs"
    echo "== the whole suite (release) =="
    ctest --preset release --no-label-summary
    ;;
  *)
    echo "usage: scripts/setup.sh run|test" >&2
    exit 2
    ;;
esac
