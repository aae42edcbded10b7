// The `network` source: connect, accept and listen with addresses from the kernel's socket
// (see README.md).
#ifndef NEEDLE_PLUGINS_SOURCES_NETWORK_NETWORK_SOURCE_H
#define NEEDLE_PLUGINS_SOURCES_NETWORK_NETWORK_SOURCE_H

#include <cstdint>
#include <span>

#include "decode.h"
#include "needle/abi.h"
#include "needle/event.h"
#include "needle/plugin.h"
#include "needle/record.h"

namespace needle::network {

class NetworkSource : public Source {
 public:
  /// Registers the plugin's counters; no kernel I/O (this runs for `needle check`).
  explicit NetworkSource(Host host);

  /// The embedded object, its program table and its syscalls; valid for the plugin's lifetime.
  needle_bpf_spec bpf_spec() override;
  /// Ring thread. A malformed record is counted, set as the last error and returned as
  /// NEEDLE_ERROR (a decode gap).
  needle_rc decode(std::span<const std::byte> raw, Event& ev) override;

 private:
  // The `process` objects of recurring task contexts, shared (decode thread only).
  ProcessContexts contexts_{api(), host().raw()};
  uint32_t malformed_counter_;
};

/// Maps a decoded record onto `ev`.
void fill_event(const needle_host_api* api, const NetRecord& rec, Event& ev,
                ProcessContexts* contexts = nullptr);

}  // namespace needle::network

#endif  // NEEDLE_PLUGINS_SOURCES_NETWORK_NETWORK_SOURCE_H
