#include "ipc_source.h"

#include <iterator>

#include "ipc_record.h"
#include "needle/bpf_object.h"
#include "needle/record.h"

NEEDLE_BPF_OBJECT(ipc)

namespace needle::ipc {
namespace {

// Every hook is an exit handler of the shared dispatcher (program names as in bpf/ipc.bpf.c).
constexpr needle_bpf_program kPrograms[] = {
    NEEDLE_SYSCALL_HOOK("ipc_ptrace_exit", "ptrace"),
    NEEDLE_SYSCALL_HOOK("ipc_process_vm_exit", "process_vm"),
    NEEDLE_SYSCALL_HOOK("ipc_memfd_exit", "memfd_create"),
    NEEDLE_SYSCALL_HOOK("ipc_signal_exit", "signal"),
};

constexpr needle_syscall kSyscalls[] = {
    native_syscall(IPC_NR64_PTRACE, "ptrace"),
    native_syscall(IPC_NR64_PROCESS_VM_READV, "process_vm"),
    native_syscall(IPC_NR64_PROCESS_VM_WRITEV, "process_vm"),
    native_syscall(IPC_NR64_MEMFD_CREATE, "memfd_create"),
    native_syscall(IPC_NR64_KILL, "signal"),
    native_syscall(IPC_NR64_TKILL, "signal"),
    native_syscall(IPC_NR64_TGKILL, "signal"),
    native_syscall(IPC_NR64_RT_SIGQUEUEINFO, "signal"),
    native_syscall(IPC_NR64_RT_TGSIGQUEUEINFO, "signal"),
    native_syscall(IPC_NR64_PIDFD_SEND_SIGNAL, "signal"),
    compat_syscall(IPC_NR32_PTRACE, "ptrace"),
    compat_syscall(IPC_NR32_PROCESS_VM_READV, "process_vm"),
    compat_syscall(IPC_NR32_PROCESS_VM_WRITEV, "process_vm"),
    compat_syscall(IPC_NR32_MEMFD_CREATE, "memfd_create"),
    compat_syscall(IPC_NR32_KILL, "signal"),
    compat_syscall(IPC_NR32_TKILL, "signal"),
    compat_syscall(IPC_NR32_TGKILL, "signal"),
    compat_syscall(IPC_NR32_RT_SIGQUEUEINFO, "signal"),
    compat_syscall(IPC_NR32_RT_TGSIGQUEUEINFO, "signal"),
    compat_syscall(IPC_NR32_PIDFD_SEND_SIGNAL, "signal"),
};

}  // namespace

IpcSource::IpcSource(Host host, IpcOptions options)
    : Source(host),
      options_(options),
      malformed_counter_(
          host.counter("malformed_records", "Ring records the ipc decoder rejected")) {}

needle_bpf_spec IpcSource::bpf_spec() {
  return object_spec(needle_bpf_ipc_bytes(), kPrograms, kSyscalls);
}

Result<void> IpcSource::bpf_configure(Bpf& bpf) {
  return bpf.set_global("ptrace_all", static_cast<uint32_t>(options_.ptrace_all));
}

needle_rc IpcSource::decode(std::span<const std::byte> raw, Event& ev) {
  auto rec = decode_ipc(raw);
  if (!rec) {
    host().add(malformed_counter_);
    host().set_error(rec.error().message);
    return NEEDLE_ERROR;
  }
  fill_event(api(), *rec, ev, &contexts_);
  return NEEDLE_OK;
}

void fill_event(const needle_host_api* api, const IpcRecord& rec, Event& ev,
                ProcessContexts* contexts) {
  ev.set("type", event_type(rec.kind));
  fill_process(api, ev, rec.task, contexts);
  Event i = ev.object("ipc");
  i.set("kind", kind_name(rec.kind));
  if (rec.has_target()) {
    i.set("target_pid", rec.target_pid);
  }
  NameBuf buf;
  switch (rec.kind) {
    case Kind::kPtrace:
      i.set("request", rec.arg);
      i.set("request_name", ptrace_request_name(rec.arg, buf));
      break;
    case Kind::kProcessVm:
      i.set("op", rec.arg == 1 ? "write" : "read");
      i.set("bytes", rec.ret);
      break;
    case Kind::kMemfdCreate: {
      i.set("name", rec.name);
      if ((rec.flags & IPC_F_NAME_TRUNCATED) != 0) {
        ev.mark_truncated("ipc.name");
      }
      FlagNames names;
      memfd_flag_names(rec.arg, names);
      Event arr = i.array("flags");
      for (std::size_t k = 0; k < names.count; ++k) {
        arr.push(names.names[k]);
      }
      break;
    }
    case Kind::kSignal:
      i.set("signal", rec.arg);
      i.set("signal_name", signal_name(rec.arg, buf));
      break;
  }
  i.set("route", route_name(rec.abi, rec.syscall, buf));
}

}  // namespace needle::ipc
