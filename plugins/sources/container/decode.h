// Decoding of the `container` source's ring records (bpf/include/container_record.h), and the
// state machine that turns cgroup life events into container.create / container.exit. Pure: no
// host, no kernel; the tracker allocates only when it meets a new container.
#ifndef NEEDLE_PLUGINS_SOURCES_CONTAINER_DECODE_H
#define NEEDLE_PLUGINS_SOURCES_CONTAINER_DECODE_H

#include <cstddef>
#include <cstdint>
#include <list>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "needle/bpf/record.h"
#include "needle/cgroup_path.h"
#include "needle/result.h"

namespace needle::container {

enum class Kind : uint16_t { kMkdir = 1, kRmdir = 2, kEmptied = 3 };

/// One decoded record. `path` views the bytes given to decode_record.
struct CgroupRecord {
  Kind kind = Kind::kMkdir;
  needle_task_ctx task{};
  uint64_t boot_ns = 0;
  uint64_t cgroup_id = 0;
  uint32_t hierarchy = 0;  // 0: the unified (v2) hierarchy
  uint32_t level = 0;
  std::string_view path;
  bool path_truncated = false;
};

/// Checks kind, version, sizes and bounds; fails with a message naming what is wrong.
Result<CgroupRecord> decode_record(std::span<const std::byte> raw);

/// True when `c.id` lies in the last component of `path`: the container's own cgroup, not a
/// cgroup nested inside it (a container's systemd makes those) nor its parent.
bool is_own_cgroup(std::string_view path, const CgroupContainer& c);

enum class Action : uint8_t { kNone, kCreate, kExit };

/// Turns the cgroup events of all hierarchies into one create and one exit per container
/// incarnation:
///  - create at the first mkdir of the container's own cgroup (a v1 machine makes one per
///    hierarchy; the rest are ignored);
///  - exit at the first "emptied" (its last task is gone), or at the first rmdir when no emptied
///    was seen (a container that never ran, or needle started after it did);
///  - a mkdir after the container's cgroups were removed is a new incarnation (`ctr` lets a
///    name be reused).
/// Remembers at most `capacity` cgroup paths (least recently seen forgotten first). Ring thread
/// only.
class ContainerTracker {
 public:
  explicit ContainerTracker(size_t capacity = 4096,
                            std::vector<std::string> containerd_namespaces = {"default", "k8s.io"});
  /// `out` gets the parsed container (its id views rec.path) whenever it is one.
  Action on(const CgroupRecord& rec, CgroupContainer& out);
  size_t size() const { return states_.size(); }

 private:
  struct State {
    bool exited = false;
    bool removed = false;
    std::list<std::string>::iterator lru;
  };
  State& touch(std::string_view path, bool& created);

  size_t capacity_;
  std::vector<std::string> ns_storage_;
  std::vector<std::string_view> namespaces_;
  std::list<std::string> lru_;                          // most recent first
  std::unordered_map<std::string_view, State> states_;  // keys view lru_ strings
};

}  // namespace needle::container

#endif  // NEEDLE_PLUGINS_SOURCES_CONTAINER_DECODE_H
