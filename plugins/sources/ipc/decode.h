// Decoding of the `ipc` source's ring records (bpf/include/ipc_record.h). Pure: bytes in, an
// IpcRecord out; no host, no kernel.
#ifndef NEEDLE_PLUGINS_SOURCES_IPC_DECODE_H
#define NEEDLE_PLUGINS_SOURCES_IPC_DECODE_H

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "needle/bpf/record.h"
#include "needle/result.h"

namespace needle::ipc {

enum class Kind : uint16_t { kPtrace = 1, kProcessVm = 2, kMemfdCreate = 3, kSignal = 4 };

/// One decoded record; `name` points into the bytes given to decode_ipc.
struct IpcRecord {
  Kind kind = Kind::kPtrace;
  needle_task_ctx task{};
  uint64_t boot_ns = 0;
  uint32_t flags = 0;  // IPC_F_*
  int32_t target_pid = 0;
  uint64_t arg = 0;  // see ipc_record.arg
  int64_t ret = 0;
  uint16_t syscall = 0;
  uint8_t abi = 0;
  std::string_view name;  // memfd: without the kernel's "memfd:" prefix

  bool has_target() const;
};

/// Decodes one record (header included). Fails, without reading past `raw`, for a short record, a
/// header size past the buffer or unlike the layout, a name length past its field, another layout
/// version or an unknown kind.
Result<IpcRecord> decode_ipc(std::span<const std::byte> raw);

/// "ipc.ptrace", "ipc.process_vm", "ipc.memfd_create", "ipc.signal".
std::string_view event_type(Kind kind);
/// "ptrace", "process_vm", "memfd_create", "signal" (the ipc.kind field).
std::string_view kind_name(Kind kind);

using NameBuf = std::array<char, 48>;
/// PTRACE_* name of a request ("PTRACE_ATTACH"), or "PTRACE_<n>"; may live in `buf`.
std::string_view ptrace_request_name(uint64_t request, NameBuf& buf);
/// SIG* name of a signal ("SIGTERM", "SIGRTMIN+3"), or "SIG<n>"; may live in `buf`.
std::string_view signal_name(uint64_t sig, NameBuf& buf);
/// The route: the syscall's name, with "ia32:" before a compat one; "syscall:<n>" when unknown.
std::string_view route_name(uint8_t abi, uint16_t syscall, NameBuf& buf);

/// Names of memfd_create flags (MFD_CLOEXEC, ...); unnamed bits as one "0x..." entry.
struct FlagNames {
  std::array<std::string_view, 8> names;
  std::size_t count = 0;
  char unknown[16] = {};
};
void memfd_flag_names(uint64_t flags, FlagNames& out);

}  // namespace needle::ipc

#endif  // NEEDLE_PLUGINS_SOURCES_IPC_DECODE_H
