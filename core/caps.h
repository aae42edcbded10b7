// Giving up capabilities once the probes are in place. needle needs CAP_BPF, CAP_PERFMON,
// CAP_NET_ADMIN (cgroup socket programs) and, to mount tracefs for the `tp` rung, CAP_SYS_ADMIN
// only while it loads and attaches its BPF programs; afterwards it keeps only what reading other
// processes' /proc entries needs, so a flaw in a parser or a sink cannot load programs, attach
// to cgroups or mount file systems.
//
// Capabilities belong to threads, not processes: capset(2) changes the calling thread only. The
// drop therefore runs in every thread of the process (the way glibc broadcasts setuid): each
// thread gets a real-time signal whose handler applies the reduced sets, and the caller checks
// /proc/self/task/*/status afterwards. Threads created later inherit the reduced sets.
#ifndef NEEDLE_CORE_CAPS_H
#define NEEDLE_CORE_CAPS_H

#include <cstddef>
#include <cstdint>
#include <string>

namespace needle::core {

/// A set of capabilities: bit n is capability n (CAP_SYS_PTRACE is bit 19).
using CapMask = uint64_t;

constexpr CapMask cap_bit(int cap) {
  return CapMask{1} << cap;
}

/// What needle keeps after attaching: CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE (/proc/<pid>/exe,
/// cwd, fd and environ of processes of other users), plus CAP_BPF on kernels that refuse every
/// bpf(2) command, map reads on an fd already open included, to a caller without it (before
/// Linux 6.5 with kernel.unprivileged_bpf_disabled set): needle reads its drop counters with
/// bpf(2) for as long as it runs. Decided by a probe in a short-lived thread.
CapMask caps_kept_after_attach();

struct CapDrop {
  CapMask kept = 0;     // the permitted (and effective) set every thread ends with
  CapMask dropped = 0;  // what the process had permitted before and gave up
  size_t threads = 0;   // threads of the process when the drop was checked
  std::string error;    // empty on success; otherwise what went wrong, threads named
};

/// Reduces the permitted, effective and inheritable sets of every thread of this process to
/// `keep` (intersected with what each thread had), clears the ambient sets, and also removes
/// everything else from the bounding sets where CAP_SETPCAP allows it (as root outside the
/// systemd unit). Call from any one thread; other threads may run meanwhile. A thread that
/// blocks real-time signals cannot be reached: it is named in `error`. Not reversible.
CapDrop drop_capabilities(CapMask keep);

/// needle's one call site (core/runtime.cc, once every source is attached and the snapshot
/// emitted, before the readiness line): drop_capabilities(caps_kept_after_attach()) and one log
/// line saying what was kept, or a warning when the drop failed (needle runs on regardless).
void drop_capabilities_after_attach();

/// "cap_dac_read_search,cap_sys_ptrace" (names from the kernel headers; "cap_<n>" when unknown).
std::string cap_names(CapMask caps);

}  // namespace needle::core

#endif  // NEEDLE_CORE_CAPS_H
