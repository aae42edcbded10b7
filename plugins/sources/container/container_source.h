// The `container` source: container.create and container.exit from the cgroups container runtimes
// make (see README.md).
#ifndef NEEDLE_PLUGINS_SOURCES_CONTAINER_CONTAINER_SOURCE_H
#define NEEDLE_PLUGINS_SOURCES_CONTAINER_CONTAINER_SOURCE_H

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "decode.h"
#include "needle/abi.h"
#include "needle/event.h"
#include "needle/plugin.h"
#include "needle/result.h"

namespace needle::container {

/// Validated configuration.
struct ContainerOptions {
  std::vector<std::string> containerd_namespaces{"default", "k8s.io"};
  size_t max_containers = 4096;
};

class ContainerSource : public Source {
 public:
  /// Registers the plugin's counters; no kernel I/O (this runs for `needle check`).
  ContainerSource(Host host, ContainerOptions options);

  /// The embedded object and its program table; valid for the plugin's lifetime.
  needle_bpf_spec bpf_spec() override;
  /// Reports only the unified hierarchy when cgroup2 is mounted (reads /proc/self/mountinfo).
  Result<void> bpf_configure(Bpf& bpf) override;
  /// Ring thread. A malformed record is a decode gap (NEEDLE_ERROR); a cgroup that is not a
  /// container's own, or a repeat of one already reported, is NEEDLE_SKIP.
  needle_rc decode(std::span<const std::byte> raw, Event& ev) override;

 private:
  ContainerOptions options_;
  ContainerTracker tracker_;
  uint32_t malformed_counter_;
  uint32_t truncated_counter_;
};

/// Maps a record and its container onto a container.create / container.exit event.
void fill_event(const needle_host_api* api, const CgroupRecord& rec, const CgroupContainer& c,
                Action action, Event& ev);

/// Whether /proc/self/mountinfo text lists a cgroup2 mount.
bool mountinfo_has_cgroup2(std::string_view mountinfo);

}  // namespace needle::container

#endif  // NEEDLE_PLUGINS_SOURCES_CONTAINER_CONTAINER_SOURCE_H
