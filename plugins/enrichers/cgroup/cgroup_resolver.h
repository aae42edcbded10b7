// The off-path half of the cgroup enricher: from a cgroup v2 id (or, on a v1-only machine, a
// process) to its cgroup path and the container it names. Does file I/O; called only on the
// enricher's worker thread (and from tests).
#ifndef NEEDLE_ENRICHERS_CGROUP_RESOLVER_H
#define NEEDLE_ENRICHERS_CGROUP_RESOLVER_H

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "needle/cgroup_path.h"

namespace needle::cgroup {

/// What one lookup found. `resolved` is false when neither /proc nor the cgroup tree knew the
/// cgroup (the process and its cgroup are gone): the enricher then lists the container fields
/// as incomplete.
struct CgroupInfo {
  bool resolved = false;
  ContainerRuntime runtime = ContainerRuntime::kNone;
  std::string id;
  std::string pod_uid;
  std::string path;
};

/// The mount point of the cgroup2 hierarchy in a mountinfo text, or "" when there is none.
std::string cgroup2_mount_of(std::string_view mountinfo);

class CgroupResolver {
 public:
  /// `cgroup2_root`: where cgroup2 is mounted ("" when the machine has none: v1-only mode).
  /// `proc_root`: normally "/proc" (tests point it at a fake tree).
  CgroupResolver(std::string cgroup2_root, std::vector<std::string> containerd_namespaces,
                 std::string proc_root = "/proc",
                 std::chrono::milliseconds min_rescan = std::chrono::milliseconds(50));

  bool has_v2() const { return !root_.empty(); }
  /// The v2 id (inode) of the hierarchy's root: processes there are in no container.
  uint64_t root_id() const { return root_id_; }

  /// v2 mode: the cgroup `cgid`, checked against /proc/<pid>/cgroup first (one small read)
  /// and else found by walking the tree. v1-only mode: /proc/<pid>/cgroup's v1 lines.
  CgroupInfo resolve(uint64_t cgid, uint32_t pid);

  /// The v2 path of `cgid` from the tree index, rescanning the tree on a miss (waiting until
  /// `min_rescan` has passed since the last scan). Counts each scan in scans().
  std::optional<std::string> path_of(uint64_t cgid);
  uint64_t scans() const { return scans_; }

 private:
  CgroupInfo from_path(std::string_view path) const;
  CgroupInfo from_proc_text(std::string_view text) const;
  bool read_proc_cgroup(uint32_t pid, std::string& out) const;
  uint64_t inode_of(const std::string& rel) const;
  void rescan();

  std::string root_;
  uint64_t root_id_ = 0;
  std::vector<std::string> ns_storage_;
  std::vector<std::string_view> namespaces_;
  std::string proc_;
  std::chrono::milliseconds min_rescan_;
  std::chrono::steady_clock::time_point last_scan_{};
  bool scanned_ = false;
  uint64_t scans_ = 0;
  std::unordered_map<uint64_t, std::string> index_;  // inode -> path relative to the root
};

}  // namespace needle::cgroup

#endif  // NEEDLE_ENRICHERS_CGROUP_RESOLVER_H
