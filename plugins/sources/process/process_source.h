// The `process` source: exec, fork, exit and the start snapshot (see README.md).
#ifndef NEEDLE_PLUGINS_SOURCES_PROCESS_PROCESS_SOURCE_H
#define NEEDLE_PLUGINS_SOURCES_PROCESS_PROCESS_SOURCE_H

#include <cstdint>
#include <span>
#include <string>

#include "decode.h"
#include "needle/abi.h"
#include "needle/event.h"
#include "needle/plugin.h"
#include "needle/result.h"

namespace needle::process {

/// Validated configuration (keys max_args, max_arg_bytes).
struct ProcessOptions {
  static constexpr int64_t kMaxArgsLimit = 4096;
  static constexpr int64_t kMaxArgBytesLimit = 16384;  // PROCESS_ARGS_MAX
  uint32_t max_args = 64;
  uint32_t max_arg_bytes = 4096;
};

class ProcessSource : public Source {
 public:
  /// Registers the plugin's counters; no kernel I/O (this runs for `needle check`).
  ProcessSource(Host host, ProcessOptions options);

  /// The embedded object and its program table; valid for the plugin's lifetime.
  needle_bpf_spec bpf_spec() override;
  /// Sets the max_args and max_arg_bytes globals before load.
  Result<void> bpf_configure(Bpf& bpf) override;
  /// Ring thread (and the snapshot's reader). A malformed record is counted, set as the last
  /// error and returned as NEEDLE_ERROR (a decode gap).
  needle_rc decode(std::span<const std::byte> raw, Event& ev) override;

  const ProcessOptions& options() const { return options_; }

 private:
  ProcessOptions options_;
  uint32_t malformed_counter_;
  std::string script_buf_;  // ring thread only; reused so decode does not allocate per event
};

/// Maps a decoded record onto `ev`: type, the task context (needle::fill_process) and the
/// process.* fields that apply to its kind; marks truncated fields. `script_buf` backs a joined
/// script path.
void fill_event(const needle_host_api* api, const ProcessRecord& rec, Event& ev,
                std::string& script_buf);

}  // namespace needle::process

#endif  // NEEDLE_PLUGINS_SOURCES_PROCESS_PROCESS_SOURCE_H
