#include "decode.h"

#include <cstdio>
#include <cstring>
#include <string>

#include "ipc_record.h"

static_assert(sizeof(ipc_record) == IPC_RECORD_SIZE, "ipc_record layout");
static_assert(offsetof(ipc_record, flags) == NEEDLE_RECORD_HEADER_SIZE, "ipc_record layout");
static_assert(offsetof(ipc_record, arg) == 96, "ipc_record layout");
static_assert(offsetof(ipc_record, syscall) == 112, "ipc_record layout");
static_assert(offsetof(ipc_record, name) == 120, "ipc_record layout");

namespace needle::ipc {
namespace {

struct Named {
  uint64_t value;
  const char* name;
};

constexpr Named kPtrace[] = {
    {0, "PTRACE_TRACEME"},
    {1, "PTRACE_PEEKTEXT"},
    {2, "PTRACE_PEEKDATA"},
    {3, "PTRACE_PEEKUSR"},
    {4, "PTRACE_POKETEXT"},
    {5, "PTRACE_POKEDATA"},
    {6, "PTRACE_POKEUSR"},
    {7, "PTRACE_CONT"},
    {8, "PTRACE_KILL"},
    {9, "PTRACE_SINGLESTEP"},
    {12, "PTRACE_GETREGS"},
    {13, "PTRACE_SETREGS"},
    {14, "PTRACE_GETFPREGS"},
    {15, "PTRACE_SETFPREGS"},
    {16, "PTRACE_ATTACH"},
    {17, "PTRACE_DETACH"},
    {18, "PTRACE_GETFPXREGS"},
    {19, "PTRACE_SETFPXREGS"},
    {24, "PTRACE_SYSCALL"},
    {30, "PTRACE_ARCH_PRCTL"},
    {31, "PTRACE_SYSEMU"},
    {32, "PTRACE_SYSEMU_SINGLESTEP"},
    {0x4200, "PTRACE_SETOPTIONS"},
    {0x4201, "PTRACE_GETEVENTMSG"},
    {0x4202, "PTRACE_GETSIGINFO"},
    {0x4203, "PTRACE_SETSIGINFO"},
    {0x4204, "PTRACE_GETREGSET"},
    {0x4205, "PTRACE_SETREGSET"},
    {0x4206, "PTRACE_SEIZE"},
    {0x4207, "PTRACE_INTERRUPT"},
    {0x4208, "PTRACE_LISTEN"},
    {0x4209, "PTRACE_PEEKSIGINFO"},
    {0x420a, "PTRACE_GETSIGMASK"},
    {0x420b, "PTRACE_SETSIGMASK"},
    {0x420c, "PTRACE_SECCOMP_GET_FILTER"},
    {0x420d, "PTRACE_SECCOMP_GET_METADATA"},
    {0x420e, "PTRACE_GET_SYSCALL_INFO"},
    {0x420f, "PTRACE_GET_RSEQ_CONFIGURATION"},
    {0x4210, "PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG"},
    {0x4211, "PTRACE_GET_SYSCALL_USER_DISPATCH_CONFIG"},
};

constexpr const char* kSignals[] = {
    nullptr,     "SIGHUP",  "SIGINT",    "SIGQUIT", "SIGILL",   "SIGTRAP", "SIGABRT", "SIGBUS",
    "SIGFPE",    "SIGKILL", "SIGUSR1",   "SIGSEGV", "SIGUSR2",  "SIGPIPE", "SIGALRM", "SIGTERM",
    "SIGSTKFLT", "SIGCHLD", "SIGCONT",   "SIGSTOP", "SIGTSTP",  "SIGTTIN", "SIGTTOU", "SIGURG",
    "SIGXCPU",   "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO",   "SIGPWR",  "SIGSYS",
};

struct SyscallName {
  uint16_t nr64;
  uint16_t nr32;
  const char* name;
};

constexpr SyscallName kSyscalls[] = {
    {IPC_NR64_PTRACE, IPC_NR32_PTRACE, "ptrace"},
    {IPC_NR64_PROCESS_VM_READV, IPC_NR32_PROCESS_VM_READV, "process_vm_readv"},
    {IPC_NR64_PROCESS_VM_WRITEV, IPC_NR32_PROCESS_VM_WRITEV, "process_vm_writev"},
    {IPC_NR64_MEMFD_CREATE, IPC_NR32_MEMFD_CREATE, "memfd_create"},
    {IPC_NR64_KILL, IPC_NR32_KILL, "kill"},
    {IPC_NR64_TKILL, IPC_NR32_TKILL, "tkill"},
    {IPC_NR64_TGKILL, IPC_NR32_TGKILL, "tgkill"},
    {IPC_NR64_RT_SIGQUEUEINFO, IPC_NR32_RT_SIGQUEUEINFO, "rt_sigqueueinfo"},
    {IPC_NR64_RT_TGSIGQUEUEINFO, IPC_NR32_RT_TGSIGQUEUEINFO, "rt_tgsigqueueinfo"},
    {IPC_NR64_PIDFD_SEND_SIGNAL, IPC_NR32_PIDFD_SEND_SIGNAL, "pidfd_send_signal"},
};

std::string_view in(NameBuf& buf, int n) {
  return std::string_view(
      buf.data(), n > 0 ? std::min<std::size_t>(static_cast<std::size_t>(n), buf.size() - 1) : 0);
}

}  // namespace

bool IpcRecord::has_target() const {
  return (flags & IPC_F_TARGET) != 0;
}

Result<IpcRecord> decode_ipc(std::span<const std::byte> raw) {
  ipc_record rec;
  if (raw.size() < sizeof rec) {
    return make_error("ipc record of " + std::to_string(raw.size()) + " bytes is shorter than " +
                      std::to_string(sizeof rec));
  }
  std::memcpy(&rec, raw.data(), sizeof rec);
  if (rec.hdr.size != sizeof rec) {
    return make_error("ipc record claims " + std::to_string(rec.hdr.size) + " bytes, not " +
                      std::to_string(sizeof rec));
  }
  if (rec.hdr.version != IPC_RECORD_VERSION) {
    return make_error("ipc record layout version " + std::to_string(rec.hdr.version) +
                      " (this plugin reads " + std::to_string(IPC_RECORD_VERSION) + ")");
  }
  if (rec.hdr.kind < IPC_KIND_PTRACE || rec.hdr.kind > IPC_KIND_SIGNAL) {
    return make_error("unknown ipc record kind " + std::to_string(rec.hdr.kind));
  }
  if (rec.name_len >= IPC_NAME_MAX) {
    return make_error("ipc record name length " + std::to_string(rec.name_len) +
                      " is past its field");
  }
  IpcRecord out;
  out.kind = static_cast<Kind>(rec.hdr.kind);
  out.task = rec.hdr.task;
  out.boot_ns = rec.hdr.boot_ns;
  out.flags = rec.flags;
  out.target_pid = rec.target_pid;
  out.arg = rec.arg;
  out.ret = rec.ret;
  out.syscall = rec.syscall;
  out.abi = rec.abi;
  std::string_view name(reinterpret_cast<const char*>(raw.data()) + offsetof(ipc_record, name),
                        rec.name_len);
  constexpr std::string_view kMemfd = "memfd:";
  if (name.substr(0, kMemfd.size()) == kMemfd) {
    name.remove_prefix(kMemfd.size());
  }
  out.name = name;
  return out;
}

std::string_view event_type(Kind kind) {
  switch (kind) {
    case Kind::kPtrace:
      return "ipc.ptrace";
    case Kind::kProcessVm:
      return "ipc.process_vm";
    case Kind::kMemfdCreate:
      return "ipc.memfd_create";
    case Kind::kSignal:
      return "ipc.signal";
  }
  return "";
}

std::string_view kind_name(Kind kind) {
  return event_type(kind).substr(4);
}

std::string_view ptrace_request_name(uint64_t request, NameBuf& buf) {
  for (const auto& p : kPtrace) {
    if (p.value == request) {
      return p.name;
    }
  }
  return in(buf, std::snprintf(buf.data(), buf.size(), "PTRACE_%llu",
                               static_cast<unsigned long long>(request)));
}

std::string_view signal_name(uint64_t sig, NameBuf& buf) {
  if (sig > 0 && sig < std::size(kSignals)) {
    return kSignals[sig];
  }
  if (sig >= 32 && sig <= 64) {  // glibc reserves 32 and 33; the kernel's SIGRTMIN is 32
    return in(
        buf, std::snprintf(buf.data(), buf.size(), "SIGRTMIN+%u", static_cast<unsigned>(sig - 32)));
  }
  return in(buf,
            std::snprintf(buf.data(), buf.size(), "SIG%llu", static_cast<unsigned long long>(sig)));
}

std::string_view route_name(uint8_t abi, uint16_t syscall, NameBuf& buf) {
  const bool compat = abi == 1;
  for (const auto& s : kSyscalls) {
    if ((compat ? s.nr32 : s.nr64) == syscall) {
      return in(buf, std::snprintf(buf.data(), buf.size(), "%s%s", compat ? "ia32:" : "", s.name));
    }
  }
  return in(buf, std::snprintf(buf.data(), buf.size(), "%ssyscall:%u", compat ? "ia32:" : "",
                               unsigned{syscall}));
}

void memfd_flag_names(uint64_t flags, FlagNames& out) {
  static constexpr Named kFlags[] = {{0x1, "MFD_CLOEXEC"},
                                     {0x2, "MFD_ALLOW_SEALING"},
                                     {0x4, "MFD_HUGETLB"},
                                     {0x8, "MFD_NOEXEC_SEAL"},
                                     {0x10, "MFD_EXEC"}};
  out.count = 0;
  uint64_t rest = flags;
  for (const auto& f : kFlags) {
    if ((rest & f.value) != 0) {
      out.names[out.count++] = f.name;
      rest &= ~f.value;
    }
  }
  if (rest != 0) {
    int n = std::snprintf(out.unknown, sizeof out.unknown, "0x%llx",
                          static_cast<unsigned long long>(rest));
    out.names[out.count++] = std::string_view(out.unknown, static_cast<std::size_t>(n));
  }
}

}  // namespace needle::ipc
