#include "caps.h"

#include <dirent.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace needle::core {

namespace {

// The kernel's three sets of one thread, as capget/capset see them (version 3: two 32-bit words
// per set).
struct ThreadCaps {
  CapMask effective = 0;
  CapMask permitted = 0;
  CapMask inheritable = 0;
};

bool get_caps(ThreadCaps& out) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) {
    return false;
  }
  auto join = [](uint32_t lo, uint32_t hi) { return CapMask{lo} | (CapMask{hi} << 32); };
  out.effective = join(data[0].effective, data[1].effective);
  out.permitted = join(data[0].permitted, data[1].permitted);
  out.inheritable = join(data[0].inheritable, data[1].inheritable);
  return true;
}

// Async-signal-safe: only syscalls, no allocation.
bool set_caps(const ThreadCaps& caps) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  data[0].effective = static_cast<uint32_t>(caps.effective);
  data[1].effective = static_cast<uint32_t>(caps.effective >> 32);
  data[0].permitted = static_cast<uint32_t>(caps.permitted);
  data[1].permitted = static_cast<uint32_t>(caps.permitted >> 32);
  data[0].inheritable = static_cast<uint32_t>(caps.inheritable);
  data[1].inheritable = static_cast<uint32_t>(caps.inheritable >> 32);
  return syscall(SYS_capset, &hdr, data) == 0;
}

int last_cap() {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int n = 0;
  if (in >> n && n > 0 && n < 64) {
    return n;
  }
  return CAP_LAST_CAP;
}

// What every thread applies: written before the first signal is sent, read by the handlers.
struct Target {
  CapMask keep = 0;
  int last_cap = CAP_LAST_CAP;
};
Target g_target;
std::atomic<int> g_acks{0};
std::atomic<int> g_failures{0};
int g_signal = 0;  // chosen once; its handler stays installed (see pick_signal)

// Async-signal-safe. The bounding set first: dropping from it needs CAP_SETPCAP, which the
// capset below removes. Without CAP_SETPCAP (under the systemd unit, whose bounding set is
// already small) the bounding drops fail and are ignored.
bool apply_in_this_thread() {
  for (int cap = 0; cap <= g_target.last_cap; ++cap) {
    if ((g_target.keep & cap_bit(cap)) == 0) {
      prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
    }
  }
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  ThreadCaps now;
  if (!get_caps(now)) {
    return false;
  }
  ThreadCaps next;
  next.permitted = now.permitted & g_target.keep;
  next.effective = next.permitted;
  next.inheritable = 0;
  return set_caps(next);
}

void on_signal(int) {
  int saved = errno;
  if (!apply_in_this_thread()) {
    g_failures.fetch_add(1);
  }
  g_acks.fetch_add(1);
  errno = saved;
}

// A real-time signal nobody handles. The handler is never removed: a thread that had the signal
// blocked and unblocks it later still applies the drop then, instead of being killed by the
// default action.
std::string pick_signal() {
  if (g_signal != 0) {
    return {};
  }
  for (int sig = SIGRTMAX; sig >= SIGRTMIN; --sig) {
    struct sigaction old {};
    if (sigaction(sig, nullptr, &old) != 0) {
      continue;
    }
    if ((old.sa_flags & SA_SIGINFO) != 0 || old.sa_handler != SIG_DFL) {
      continue;
    }
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (sigaction(sig, &sa, nullptr) == 0) {
      g_signal = sig;
      return {};
    }
  }
  return "no free real-time signal to reach the other threads";
}

std::vector<pid_t> thread_ids() {
  std::vector<pid_t> ids;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) {
    return ids;
  }
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    long id = std::strtol(e->d_name, &end, 10);
    if (end != e->d_name && *end == '\0' && id > 0) {
      ids.push_back(static_cast<pid_t>(id));
    }
  }
  closedir(dir);
  return ids;
}

// CapPrm and CapEff of one thread from /proc (the view an operator checks too).
bool thread_caps_from_proc(pid_t tid, CapMask& prm, CapMask& eff, std::string& comm) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/status");
  if (!in) {
    return false;
  }
  std::string line;
  bool have_prm = false;
  bool have_eff = false;
  while (std::getline(in, line)) {
    if (line.rfind("Name:", 0) == 0) {
      size_t at = line.find_first_not_of(" \t", 5);
      comm = at == std::string::npos ? std::string() : line.substr(at);
    } else if (line.rfind("CapPrm:", 0) == 0) {
      prm = std::strtoull(line.c_str() + 7, nullptr, 16);
      have_prm = true;
    } else if (line.rfind("CapEff:", 0) == 0) {
      eff = std::strtoull(line.c_str() + 7, nullptr, 16);
      have_eff = true;
    }
  }
  return have_prm && have_eff;
}

// True when bpf(2) refuses every command, even on an fd already open, to a caller with neither
// CAP_BPF nor CAP_SYS_ADMIN. Runs in a thread of its own, whose lowered effective set dies with
// it; an invalid fd tells the two kernels apart (EPERM before the fd is looked at, or EBADF).
bool bpf_gated_by_capability() {
  bool gated = false;
  std::thread probe([&gated] {
    ThreadCaps caps;
    if (!get_caps(caps)) {
      return;
    }
    caps.effective &= ~(cap_bit(CAP_BPF) | cap_bit(CAP_SYS_ADMIN));
    if (!set_caps(caps)) {
      return;
    }
    union bpf_attr attr {};
    attr.map_fd = ~0u;
    long rc = syscall(SYS_bpf, BPF_MAP_LOOKUP_ELEM, &attr, sizeof attr);
    gated = rc < 0 && errno == EPERM;
  });
  probe.join();
  return gated;
}

}  // namespace

std::string cap_names(CapMask caps) {
  // Four capabilities a row, numbered from 0 as in linux/capability.h.
  // clang-format off
  static constexpr const char* kNames[] = {
      "cap_chown", "cap_dac_override", "cap_dac_read_search", "cap_fowner",
      "cap_fsetid", "cap_kill", "cap_setgid", "cap_setuid",
      "cap_setpcap", "cap_linux_immutable", "cap_net_bind_service", "cap_net_broadcast",
      "cap_net_admin", "cap_net_raw", "cap_ipc_lock", "cap_ipc_owner",
      "cap_sys_module", "cap_sys_rawio", "cap_sys_chroot", "cap_sys_ptrace",
      "cap_sys_pacct", "cap_sys_admin", "cap_sys_boot", "cap_sys_nice",
      "cap_sys_resource", "cap_sys_time", "cap_sys_tty_config", "cap_mknod",
      "cap_lease", "cap_audit_write", "cap_audit_control", "cap_setfcap",
      "cap_mac_override", "cap_mac_admin", "cap_syslog", "cap_wake_alarm",
      "cap_block_suspend", "cap_audit_read", "cap_perfmon", "cap_bpf",
      "cap_checkpoint_restore"};
  // clang-format on
  std::string out;
  for (int cap = 0; cap < 64; ++cap) {
    if ((caps & cap_bit(cap)) == 0) {
      continue;
    }
    if (!out.empty()) {
      out += ',';
    }
    if (cap < static_cast<int>(std::size(kNames))) {
      out += kNames[cap];
    } else {
      out += "cap_" + std::to_string(cap);
    }
  }
  return out.empty() ? "none" : out;
}

CapMask caps_kept_after_attach() {
  CapMask keep = cap_bit(CAP_DAC_READ_SEARCH) | cap_bit(CAP_SYS_PTRACE);
  if (bpf_gated_by_capability()) {
    keep |= cap_bit(CAP_BPF);
  }
  return keep;
}

CapDrop drop_capabilities(CapMask keep) {
  CapDrop result;
  ThreadCaps before;
  if (!get_caps(before)) {
    result.error = std::string("capget: ") + std::strerror(errno);
    return result;
  }
  g_failures.store(0);
  result.kept = before.permitted & keep;
  result.dropped = before.permitted & ~keep;
  g_target.keep = keep;
  g_target.last_cap = last_cap();
  if (std::string err = pick_signal(); !err.empty()) {
    result.error = err;
    return result;
  }
  const pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
  const pid_t pid = getpid();
  if (!apply_in_this_thread()) {
    result.error = std::string("capset: ") + std::strerror(errno);
    return result;
  }
  // Threads created meanwhile by a thread not yet reached show up in the next pass; threads
  // created by one already reached inherit its reduced sets.
  std::set<pid_t> reached{self};
  for (int pass = 0; pass < 16; ++pass) {
    std::vector<pid_t> todo;
    for (pid_t tid : thread_ids()) {
      if (reached.insert(tid).second) {
        todo.push_back(tid);
      }
    }
    if (todo.empty()) {
      break;
    }
    const int base = g_acks.load();
    int sent = 0;
    for (pid_t tid : todo) {
      if (syscall(SYS_tgkill, pid, tid, g_signal) == 0) {
        ++sent;
      }  // ESRCH: the thread ended meanwhile
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (g_acks.load() - base < sent && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  // The truth is what /proc says for each thread.
  std::string laggards;
  for (pid_t tid : thread_ids()) {
    CapMask prm = 0;
    CapMask eff = 0;
    std::string comm;
    if (!thread_caps_from_proc(tid, prm, eff, comm)) {
      continue;  // ended meanwhile
    }
    ++result.threads;
    if (((prm | eff) & ~keep) != 0) {
      laggards += (laggards.empty() ? "" : ", ") + std::to_string(tid) + " (" + comm + ")";
    }
  }
  if (!laggards.empty()) {
    result.error = "thread(s) " + laggards +
                   " kept capabilities (a thread that blocks real-time signals cannot be reached)";
  } else if (g_failures.load() != 0) {
    result.error = std::to_string(g_failures.load()) + " thread(s) could not capset";
  }
  return result;
}

void drop_capabilities_after_attach() {
  CapDrop d = drop_capabilities(caps_kept_after_attach());
  if (!d.error.empty()) {
    spdlog::warn("capabilities not fully reduced after loading the probes: {} (kept {})", d.error,
                 cap_names(d.kept));
    return;
  }
  if (d.dropped == 0) {
    spdlog::debug("no capability to give up (permitted: {})", cap_names(d.kept));
    return;
  }
  spdlog::info("probes in place: capabilities reduced to {} in {} threads ({} given up)",
               cap_names(d.kept), d.threads, std::popcount(d.dropped));
  spdlog::debug("capabilities given up: {}", cap_names(d.dropped));
}

}  // namespace needle::core
