#!/usr/bin/env bash
# The packages, end to end, on this machine:
#   1. cpack builds needle + needle-dev (DEB) and needle + needle-devel (RPM) from the build tree;
#   2. lintian finds no error or warning that packaging/lintian-overrides does not explain;
#   3. apt-get installs both .debs (nothing else gets installed: the dependencies are right);
#   4. the unit passes `systemd-analyze verify`; `needle check` passes as nobody;
#   5. the installed daemon runs the way the unit runs it (same command line, the unit's
#      capability bounding set, no new privileges, read-only file system but its folders,
#      private /tmp, a notify socket): it is ready, captures an exec, and ends up with only the
#      capabilities it keeps after attaching, in every thread;
#   6. the example under /usr/share/doc/needle-dev/examples/mounts builds against the installed
#      SDK alone and its plugins load into the installed daemon and see a mount and an umount;
#   7. an upgrade keeps the admin's edit of /etc/needle/needle.toml (a conffile);
#   8. purge leaves no file behind; the RPMs' file lists, config files and requirements are right.
# The machine is left as found: everything lives in a temporary folder, the packages are purged
# (also on failure), and /var/log/needle, /var/lib/needle and /etc/needle of a needle run by hand
# are moved aside and put back. Running it twice, or after an interrupted run, works.
#
# usage: package_test.sh <build-dir> <source-dir>     (root; exit 77 = skipped)
#        NEEDLE_PACKAGES=<folder>: test the packages cpack already wrote there
set -euo pipefail

build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
marker_file=/run/needle-package-test.installed   # says "the installed needle is this test's"
require_bpf=${NEEDLE_REQUIRE_BPF:-0}

log() { printf 'package_test: [%3d s] %s\n' "$SECONDS" "$*" >&2; }
fail() {
  log "FAIL: $*"
  exit 1
}
skip() {
  log "SKIP: $*"
  exit 77
}

if [ "$(id -u)" -ne 0 ]; then
  skip "needs root (installs packages and loads BPF)"
fi
for tool in cpack dpkg-deb dpkg-shlibdeps apt-get rpm rpmbuild lintian systemd-analyze setpriv \
            unshare perl cmake clang bpftool file; do
  command -v "$tool" >/dev/null || fail "missing $tool (scripts/setup.sh test installs it)"
done

# One run at a time on a machine: two would install and purge the same packages.
exec 9>/run/lock/needle-package-test.lock
flock -w 600 9 || fail "another package test holds /run/lock/needle-package-test.lock"

work=$(mktemp -d /tmp/needle-pkgtest.XXXXXX)
chmod 0755 "$work"   # the example's plugin folder below it must not be writable by others
daemon_pid=""
saved=()
mounted=""

purge_packages() {
  local installed=()
  local p
  for p in needle-dev needle; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -qv "not-installed"; then
      installed+=("$p")
    fi
  done
  if ((${#installed[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq -o DPkg::Lock::Timeout=120 \
      "${installed[@]}" >"$work/purge.log" 2>&1 || { cat "$work/purge.log" >&2; return 1; }
  fi
  rm -f "$marker_file"
}

cleanup() {
  local rc=$?
  set +e
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -KILL "$daemon_pid"
    wait "$daemon_pid" 2>/dev/null
  fi
  rm -f "/run/needle-pkgtest-$$.notify"
  if [ -n "$mounted" ] && mountpoint -q "$mounted"; then
    umount "$mounted"
  fi
  if [ -f "$marker_file" ]; then
    purge_packages || log "purge failed: remove needle and needle-dev by hand"
  fi
  local d
  for d in "${saved[@]}"; do
    rm -rf "$d"
    mv "$work/saved$d" "$d"
  done
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the machine as found ---------------------------------------------------------------------

if dpkg-query -W -f='${Status}' needle 2>/dev/null | grep -q "ok installed"; then
  if [ -f "$marker_file" ]; then
    log "purging the needle packages an interrupted run left behind"
    purge_packages
  else
    fail "a needle package is installed already; this test installs and purges its own"
  fi
fi
touch "$marker_file"   # from here on, the cleanup purges whatever gets installed
for d in /etc/needle /var/log/needle /var/lib/needle; do
  if [ -e "$d" ]; then
    mkdir -p "$work/saved$(dirname "$d")"
    mv "$d" "$work/saved$d"
    saved+=("$d")
  fi
done

# What the packages and their scripts touch (narrow: other work on the host may change the rest).
state_paths=(/etc/needle /etc/logrotate.d /etc/systemd /usr/bin/needle /usr/lib/needle
             /usr/include/needle /usr/lib/cmake/Needle /usr/share/doc/needle
             /usr/share/doc/needle-dev /usr/share/man/man8 /usr/lib/systemd/system
             /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked
             /var/log/needle /var/lib/needle /usr/share/lintian/overrides)
snapshot() {
  find "${state_paths[@]}" -xdev 2>/dev/null | sort || true
}
snapshot >"$work/files.before"
dpkg-query -W -f='${Package}\n' | sort >"$work/packages.before"

# --- 1. build the packages --------------------------------------------------------------------

log "step 1: cpack"

t0=$(date +%s)
if [ -n "${NEEDLE_PACKAGES:-}" ]; then
  # Packages cpack made already (a developer iterating on this script): test those instead.
  mkdir -p "$work/pkg"
  cp "$NEEDLE_PACKAGES"/needle*.deb "$NEEDLE_PACKAGES"/needle*.rpm "$work/pkg/"
else
  for gen in DEB RPM; do
    if ! cpack --config "$build/CPackConfig.cmake" -G "$gen" -B "$work/pkg" \
         >"$work/cpack-$gen.log" 2>&1; then
      cat "$work/cpack-$gen.log" >&2
      fail "cpack -G $gen failed"
    fi
  done
  log "cpack DEB + RPM took $(($(date +%s) - t0)) s"
fi
deb=$(ls "$work"/pkg/needle_*.deb)
deb_dev=$(ls "$work"/pkg/needle-dev_*.deb)
rpm_main=$(ls "$work"/pkg/needle-[0-9]*.rpm)
rpm_dev=$(ls "$work"/pkg/needle-devel-*.rpm)

# --- 2. what the .debs say and hold -----------------------------------------------------------

log "step 2: package contents, dependencies, lintian"

contents() { dpkg-deb -c "$1" | awk '{print $6}' | sed 's|^\./|/|'; }
contents "$deb" >"$work/deb.files"
contents "$deb_dev" >"$work/deb-dev.files"
for f in /usr/bin/needle /usr/lib/needle/plugins/needle-source-process.so \
         /usr/lib/needle/plugins/needle-sink-file.so /usr/lib/needle/plugins/needle-sink-stdout.so \
         /etc/needle/needle.toml /etc/logrotate.d/needle /usr/lib/systemd/system/needle.service \
         /usr/share/man/man8/needle.8.gz /usr/share/doc/needle/copyright \
         /usr/share/doc/needle/changelog.Debian.gz; do
  grep -qx "$f" "$work/deb.files" || fail "needle .deb lacks $f"
done
for f in /usr/include/needle/abi.h /usr/include/needle/plugin.h /usr/include/needle/bpf/needle.bpf.h \
         /usr/include/needle/bpf/record.h /usr/lib/cmake/Needle/NeedleConfig.cmake \
         /usr/lib/cmake/Needle/NeedleConfigVersion.cmake /usr/lib/cmake/Needle/NeedleTargets.cmake \
         /usr/lib/cmake/Needle/NeedleBpf.cmake /usr/lib/cmake/Needle/NeedlePlugin.cmake \
         /usr/share/doc/needle-dev/plugin-guide.md \
         /usr/share/doc/needle-dev/examples/mounts/CMakeLists.txt; do
  grep -qx "$f" "$work/deb-dev.files" || fail "needle-dev .deb lacks $f"
done
# Plugins in the literal folder needle looks in, nothing in a multiarch one or under /usr/local.
if grep -E '^/usr/(local|lib/[a-z0-9_]+-linux-gnu)/' "$work/deb.files" "$work/deb-dev.files"; then
  fail "files outside the package layout"
fi
dpkg-deb -f "$deb" Depends >"$work/deb.depends"
for dep in libbpf1 libc6 libstdc++6; do
  grep -q "\b$dep\b" "$work/deb.depends" || fail "needle Depends lacks $dep: $(cat "$work/deb.depends")"
done
dev_depends=$(dpkg-deb -f "$deb_dev" Depends)
for dep in clang libbpf-dev bpftool; do
  [[ "$dev_depends" == *"$dep"* ]] || fail "needle-dev Depends lacks $dep: $dev_depends"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles >"$work/conffiles"
grep -qx /etc/needle/needle.toml "$work/conffiles" || fail "/etc/needle/needle.toml is no conffile"

# Lintian: every error or warning left must be overridden (and explained) in packaging/.
if ! lintian --fail-on error,warning --no-tag-display-limit "$deb" "$deb_dev" \
     >"$work/lintian.log" 2>&1; then
  cat "$work/lintian.log" >&2
  fail "lintian reports tags packaging/lintian-overrides does not explain"
fi
log "lintian: no error or warning beyond the overrides in packaging/lintian/"

# --- 3. install -------------------------------------------------------------------------------

log "step 3: apt-get install"

if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
     -o DPkg::Lock::Timeout=120 "$deb" "$deb_dev" >"$work/install.log" 2>&1; then
  cat "$work/install.log" >&2
  fail "apt-get install of the .debs failed"
fi
dpkg-query -W -f='${Package}\n' | sort >"$work/packages.installed"
added=$(comm -13 "$work/packages.before" "$work/packages.installed" | tr '\n' ' ')
[ "$added" = "needle needle-dev " ] ||
  fail "installing the .debs added more than needle and needle-dev: $added"
dpkg-query -W -f='${Conffiles}\n' needle | grep -q "/etc/needle/needle.toml" ||
  fail "dpkg does not track /etc/needle/needle.toml as a conffile"
/usr/bin/needle version | grep -Eq '^needle [0-9]+\.[0-9]+\.[0-9]+ abi [0-9]+\.[0-9]+$' ||
  fail "needle version: $(/usr/bin/needle version)"
for cmd in "" run check plugins version; do
  # shellcheck disable=SC2086
  /usr/bin/needle $cmd --help >/dev/null || fail "needle $cmd --help failed"
done
man -w needle >/dev/null 2>&1 || fail "man needle: no manual page found"

# --- 4. the unit and `needle check` -----------------------------------------------------------

log "step 4: systemd-analyze verify, needle check as nobody"

unit=/usr/lib/systemd/system/needle.service
if ! systemd-analyze verify "$unit" >"$work/verify.log" 2>&1 || [ -s "$work/verify.log" ]; then
  cat "$work/verify.log" >&2
  fail "systemd-analyze verify $unit"
fi
unit_value() { sed -n "s/^$1=//p" "$unit" | tail -n 1; }
exec_start=$(unit_value ExecStart)
# Every CapabilityBoundingSet= line: systemd merges them.
bounding=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit" | tr '\n' ' ')
[[ "$bounding" != *"~"* ]] || fail "the test reads only a positive CapabilityBoundingSet="
[ -n "$bounding" ] || fail "the unit has no CapabilityBoundingSet="
[[ "$bounding" != *CAP_SYS_RESOURCE* ]] || fail "the unit grants CAP_SYS_RESOURCE"
[ "$(unit_value Restart)" = on-failure ] || fail "the unit lacks Restart=on-failure"
[ "$(unit_value Type)" = notify ] || fail "the unit is not Type=notify"
[ "$(unit_value NoNewPrivileges)" = yes ] || fail "the unit lacks NoNewPrivileges=yes"
if [ -z "$(unit_value MemoryMax)" ] || [ -z "$(unit_value CPUQuota)" ]; then
  fail "the unit lacks MemoryMax or CPUQuota"
fi
cmp -s "$unit" "$src/packaging/needle.service" || fail "the installed unit is not packaging/needle.service"
# `needle check` needs no privileges: as nobody, on the packaged configuration.
if ! setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all --bounding-set=-all \
     /usr/bin/needle check >"$work/check.out" 2>&1; then
  cat "$work/check.out" >&2
  fail "needle check of /etc/needle/needle.toml as nobody"
fi
grep -q "configuration is valid" "$work/check.out" || fail "needle check: $(cat "$work/check.out")"

# --- 5. the installed daemon, run the way the unit runs it ------------------------------------

log "step 5: the installed daemon under the unit's settings"

# setpriv spelling of the unit's capability bounding set: "-all,+bpf,+perfmon,..."
setpriv_caps="-all"
for cap in $bounding; do
  setpriv_caps+=",+$(echo "${cap#CAP_}" | tr '[:upper:]' '[:lower:]')"
done
# ProtectSystem=strict + ReadWritePaths + LogsDirectory/StateDirectory, ProtectHome=read-only and
# PrivateTmp, in a mount namespace of its own; then the unit's credentials and its command line.
install -d -m 0750 /var/log/needle /var/lib/needle
cat >"$work/as-unit.sh" <<'EOF'
#!/bin/sh
set -e
mount --make-rprivate /
findmnt -rn -o TARGET | while read -r m; do
  case "$m" in
    /proc|/proc/*|/sys|/sys/*|/dev|/dev/*|/run|/run/*) ;;
    *) mount -o remount,bind,ro "$m" 2>/dev/null || true ;;
  esac
done
for d in /var/log/needle /var/lib/needle; do
  mount --bind "$d" "$d"
  mount -o remount,bind,rw "$d"
done
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /var/tmp
if touch /etc/.needle-pkgtest 2>/dev/null; then
  rm -f /etc/.needle-pkgtest
  echo "as-unit.sh: /etc is still writable: the ProtectSystem=strict emulation failed" >&2
  exit 98
fi
umask 0027
exec setpriv --bounding-set="$NEEDLE_UNIT_CAPS" --inh-caps=-all --ambient-caps=-all \
  --no-new-privs -- "$@"
EOF
chmod 0755 "$work/as-unit.sh"
# The notify socket (outside /tmp, which PrivateTmp hides): READY=1 must come.
notify="/run/needle-pkgtest-$$.notify"
perl -MIO::Socket::UNIX -e '
  my $s = IO::Socket::UNIX->new(Type => SOCK_DGRAM(), Local => $ARGV[0]) or die "socket: $!";
  alarm 120; my $m; $s->recv($m, 4096); print "$m\n";' "$notify" >"$work/notify.out" &
notify_pid=$!
for _ in $(seq 100); do [ -S "$notify" ] && break; sleep 0.05; done
# shellcheck disable=SC2086
NOTIFY_SOCKET="$notify" NEEDLE_UNIT_CAPS="$setpriv_caps" \
  unshare --mount --propagation private -- "$work/as-unit.sh" $exec_start \
  >/dev/null 2>"$work/unit.err" &
daemon_pid=$!

wait_for() {   # wait_for <seconds> <command...>: true once the command succeeds
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}
ready() { grep -q "needle running:" "$work/unit.err"; }
if ! wait_for 60 ready; then
  if ! kill -0 "$daemon_pid" 2>/dev/null; then
    wait "$daemon_pid" && rc=0 || rc=$?
    if [ "$rc" -eq 4 ] && [ "$require_bpf" != 1 ]; then
      cat "$work/unit.err" >&2
      skip "BPF cannot load here (exit 4); NEEDLE_REQUIRE_BPF=1 makes this a failure"
    fi
  fi
  cat "$work/unit.err" >&2
  fail "the installed needle did not become ready under the unit's settings"
fi
wait_for 10 grep -q "READY=1" "$work/notify.out" || fail "no READY=1 on NOTIFY_SOCKET"
wait "$notify_pid" || true
rm -f "$notify"
# An exec of our own, found by its unique argument in the events file of the default config.
tag="needle-pkgtest-$$-$RANDOM"
/bin/true "$tag"
wait_for 15 grep -q "\"$tag\"" /var/log/needle/events.jsonl ||
  fail "the exec of /bin/true $tag never reached /var/log/needle/events.jsonl"
grep "\"$tag\"" /var/log/needle/events.jsonl | grep -q '"type":"process.exec"' ||
  fail "the event with $tag is no process.exec"
# What it keeps after attaching, in every thread: CAP_DAC_READ_SEARCH (2) and CAP_SYS_PTRACE
# (19), plus CAP_BPF (39) on kernels before 6.5 where bpf(2) needs it for map reads.
expect=0000000000080004
kernel=$(uname -r)
if [ "$(printf '%s\n6.5\n' "${kernel%%-*}" | sort -V | head -n 1)" != 6.5 ] &&
   [ "$(cat /proc/sys/kernel/unprivileged_bpf_disabled)" != 0 ]; then
  expect=0000008000080004
fi
threads=0
for task in /proc/"$daemon_pid"/task/*; do
  for set in CapEff CapPrm; do
    got=$(sed -n "s/^$set:\t//p" "$task/status")
    [ "$got" = "$expect" ] || fail "thread ${task##*/}: $set $got, expected $expect"
  done
  [ "$(sed -n 's/^CapAmb:\t//p' "$task/status")" = 0000000000000000 ] || fail "ambient capabilities"
  [ "$(sed -n 's/^NoNewPrivs:\t//p' "$task/status")" = 1 ] || fail "NoNewPrivs is not set"
  threads=$((threads + 1))
done
grep -q "capabilities reduced to cap_dac_read_search,cap_sys_ptrace" "$work/unit.err" ||
  fail "no log line about the reduced capabilities"
rss_kib=$(sed -n 's/^VmRSS:\s*\([0-9]*\) kB/\1/p' /proc/"$daemon_pid"/status)
memory_max=$(unit_value MemoryMax)
log "under the unit's settings: ready, exec captured, CapEff $expect in $threads threads," \
    "RSS $((rss_kib / 1024)) MiB (MemoryMax=$memory_max)"
((rss_kib < 128 * 1024)) || fail "RSS ${rss_kib} KiB exceeds the unit's 128 MiB"
kill -TERM "$daemon_pid"
wait "$daemon_pid" && rc=0 || rc=$?
daemon_pid=""
[ "$rc" -eq 0 ] || { cat "$work/unit.err" >&2; fail "needle exited $rc on SIGTERM"; }
grep -q "needle summary (clean)" "$work/unit.err" || fail "no clean summary on SIGTERM"

# --- 6. the example, built against the installed SDK only, loaded into the installed daemon ---

log "step 6: the example against the installed SDK"

cp -r /usr/share/doc/needle-dev/examples/mounts "$work/example"
if ! env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$work" \
     cmake -S "$work/example" -B "$work/example/build" >"$work/example.log" 2>&1 ||
   ! env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$work" \
     cmake --build "$work/example/build" -j2 >>"$work/example.log" 2>&1; then
  cat "$work/example.log" >&2
  fail "the example does not build against the installed SDK"
fi
grep -qx "Needle_DIR:PATH=/usr/lib/cmake/Needle" "$work/example/build/CMakeCache.txt" ||
  fail "the example found Needle elsewhere: $(grep Needle_DIR "$work/example/build/CMakeCache.txt")"
example_plugins="$work/example/build/lib/needle/plugins"
/usr/bin/needle plugins --plugin-dir "$example_plugins" >"$work/plugins.out" 2>&1 ||
  { cat "$work/plugins.out" >&2; fail "needle plugins refuses the example's plugins"; }
grep -q "^source/mounts " "$work/plugins.out" || fail "needle plugins lacks source/mounts"
grep -q "^sink/counter " "$work/plugins.out" ||
  fail "needle plugins lacks sink/counter: $(cat "$work/plugins.out")"
cat >"$work/mounts.toml" <<EOF
[needle]
plugin_dirs = ["/usr/lib/needle/plugins", "$example_plugins"]

[[source]]
plugin = "mounts"

[[sink]]
plugin = "counter"
label = "mounts seen"

[[sink]]
plugin = "file"
path = "$work/mounts.jsonl"
EOF
/usr/bin/needle run -c "$work/mounts.toml" >"$work/mounts.out" 2>"$work/mounts.err" &
daemon_pid=$!
example_ready() { grep -q "needle running: 1 sources attached" "$work/mounts.err"; }
wait_for 60 example_ready || { cat "$work/mounts.err" >&2; fail "the example source did not attach"; }
mkdir "$work/mnt"
mount -t tmpfs "$tag" "$work/mnt"
mounted="$work/mnt"
umount "$work/mnt"
mounted=""
# A mount(2) the kernel refuses (EINVAL: tmpfs rejects the option), reported with its result.
if mount -t tmpfs -o nr_inodes=not-a-number "$tag-bad" "$work/mnt" 2>/dev/null; then
  mounted="$work/mnt"
  fail "the bad mount succeeded"
fi
has_event() {   # has_event <type> <pattern>...: one line of mounts.jsonl matching all
  local line
  while IFS= read -r line; do
    local ok=1 p
    for p in "$@"; do
      [[ "$line" == *"$p"* ]] || { ok=0; break; }
    done
    ((ok)) && return 0
  done <"$work/mounts.jsonl"
  return 1
}
mount_ok() {
  has_event '"type":"mount.mount"' "\"source\":\"$tag\"" "\"target\":\"$work/mnt\"" \
            '"fstype":"tmpfs"' '"result":0'
}
umount_ok() { has_event '"type":"mount.umount"' "\"target\":\"$work/mnt\"" '"result":0'; }
mount_failed() { has_event '"type":"mount.mount"' "\"source\":\"$tag-bad\"" '"result":-22'; }
wait_for 15 mount_ok || fail "no mount.mount event for $work/mnt: $(cat "$work/mounts.jsonl")"
wait_for 15 umount_ok || fail "no mount.umount event for $work/mnt"
wait_for 15 mount_failed || fail "no mount.mount event with a negative result for the bad mount"
kill -TERM "$daemon_pid"
wait "$daemon_pid" && rc=0 || rc=$?
daemon_pid=""
[ "$rc" -eq 0 ] || { cat "$work/mounts.err" >&2; fail "needle with the example exited $rc"; }
grep -Eq "mounts seen: [0-9]+ events.*mount\.mount [0-9]+.*mount\.umount [0-9]+" \
  "$work/mounts.err" || { cat "$work/mounts.err" >&2; fail "the counter sink printed no totals"; }
log "example: built against /usr/lib/cmake/Needle, mount/umount/failed mount seen, counter printed"

# --- 7. an upgrade keeps the admin's configuration --------------------------------------------

log "step 7: upgrade with an edited conffile"

echo "# edited by the package test $tag" >>/etc/needle/needle.toml
dpkg-deb -R "$deb" "$work/next"
sed -i 's/^Version: \(.*\)-\([0-9]*\)$/Version: \1-\2+pkgtest1/' "$work/next/DEBIAN/control"
dpkg-deb -Zgzip -b "$work/next" "$work/needle-next.deb" >/dev/null
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
     -o DPkg::Lock::Timeout=120 "$work/needle-next.deb" </dev/null >"$work/upgrade.log" 2>&1; then
  cat "$work/upgrade.log" >&2
  fail "upgrading needle failed"
fi
grep -q "Configuration file" "$work/upgrade.log" && fail "the upgrade asked about the conffile"
grep -q "$tag" /etc/needle/needle.toml || fail "the upgrade replaced the edited /etc/needle/needle.toml"
dpkg-query -W -f='${Version}' needle | grep -q "+pkgtest1" || fail "the upgrade did not happen"

# --- 8. purge leaves nothing; the RPMs --------------------------------------------------------

log "step 8: purge, RPMs"

purge_packages
[ -e /etc/needle ] && fail "/etc/needle survived the purge"
[ -e /usr/lib/needle ] && fail "/usr/lib/needle survived the purge"
[ -e /var/log/needle ] && fail "/var/log/needle survived the purge"
if compgen -G "/var/lib/dpkg/info/needle*" >/dev/null; then
  fail "dpkg still has records of needle: $(echo /var/lib/dpkg/info/needle*)"
fi
snapshot >"$work/files.after"
if ! diff -u "$work/files.before" "$work/files.after" >"$work/files.diff"; then
  cat "$work/files.diff" >&2
  fail "install + purge changed the file system"
fi

rpm -qlp "$rpm_main" >"$work/rpm.files" 2>/dev/null
for f in /usr/bin/needle /usr/lib/needle/plugins/needle-source-process.so /etc/needle/needle.toml \
         /usr/lib/systemd/system/needle.service /usr/share/man/man8/needle.8.gz; do
  grep -qx "$f" "$work/rpm.files" || fail "the needle RPM lacks $f"
done
for d in /usr/lib/systemd/system /etc/logrotate.d /usr/share/man/man8 /usr/include /usr/lib; do
  grep -qx "$d" "$work/rpm.files" && fail "the needle RPM owns $d, a folder of other packages"
done
grep -q '^/usr/lib64/' "$work/rpm.files" && fail "the needle RPM uses /usr/lib64, not /usr/lib"
rpm -qcp "$rpm_main" 2>/dev/null | grep -qx /etc/needle/needle.toml ||
  fail "/etc/needle/needle.toml is no %config file in the RPM"
rpm -qRp "$rpm_main" >"$work/rpm.requires" 2>/dev/null
grep -q '^libbpf\.so\.1()(64bit)' "$work/rpm.requires" ||
  fail "the needle RPM does not require libbpf.so.1: $(cat "$work/rpm.requires")"
rpm -qp --scripts "$rpm_main" 2>/dev/null | grep -q "systemctl daemon-reload" ||
  fail "the needle RPM has no scriptlets"
rpm -qlp "$rpm_dev" >"$work/rpm-dev.files" 2>/dev/null
for f in /usr/include/needle/abi.h /usr/include/needle/bpf/needle.bpf.h \
         /usr/lib/cmake/Needle/NeedleConfig.cmake /usr/lib/cmake/Needle/NeedleTargets.cmake; do
  grep -qx "$f" "$work/rpm-dev.files" || fail "the needle-devel RPM lacks $f"
done
rpm -qRp "$rpm_dev" >"$work/rpm-dev.requires" 2>/dev/null
for dep in clang libbpf-devel bpftool; do
  grep -qx "$dep" "$work/rpm-dev.requires" || fail "needle-devel does not require $dep"
done
log "PASS ($(($(date +%s) - t0)) s)"
