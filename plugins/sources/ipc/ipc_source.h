// The `ipc` source: ptrace, process_vm_readv/writev, memfd_create and signals sent to another
// process (see README.md).
#ifndef NEEDLE_PLUGINS_SOURCES_IPC_IPC_SOURCE_H
#define NEEDLE_PLUGINS_SOURCES_IPC_IPC_SOURCE_H

#include <cstdint>
#include <span>

#include "decode.h"
#include "needle/abi.h"
#include "needle/event.h"
#include "needle/plugin.h"
#include "needle/record.h"
#include "needle/result.h"

namespace needle::ipc {

/// Validated configuration (key ptrace_all).
struct IpcOptions {
  bool ptrace_all = false;
};

class IpcSource : public Source {
 public:
  /// Registers the plugin's counters; no kernel I/O (this runs for `needle check`).
  IpcSource(Host host, IpcOptions options);

  /// The embedded object, its program table and its syscalls; valid for the plugin's lifetime.
  needle_bpf_spec bpf_spec() override;
  /// Sets ptrace_all before load.
  Result<void> bpf_configure(Bpf& bpf) override;
  /// Ring thread. A malformed record is counted, set as the last error and returned as
  /// NEEDLE_ERROR (a decode gap).
  needle_rc decode(std::span<const std::byte> raw, Event& ev) override;

 private:
  // The `process` objects of recurring task contexts, shared (decode thread only).
  ProcessContexts contexts_{api(), host().raw()};
  IpcOptions options_;
  uint32_t malformed_counter_;
};

/// Maps a decoded record onto `ev`.
void fill_event(const needle_host_api* api, const IpcRecord& rec, Event& ev,
                ProcessContexts* contexts = nullptr);

}  // namespace needle::ipc

#endif  // NEEDLE_PLUGINS_SOURCES_IPC_IPC_SOURCE_H
