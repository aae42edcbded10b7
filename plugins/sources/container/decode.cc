#include "decode.h"

#include <cstring>

#include "container_record.h"
#include "needle/record.h"

static_assert(sizeof(container_cgroup_record) == 112, "container_cgroup_record layout");
static_assert(offsetof(container_cgroup_record, cgroup_id) == 88, "container_cgroup_record layout");
static_assert(offsetof(container_cgroup_record, path_len) == 104, "container_cgroup_record layout");

namespace needle::container {

Result<CgroupRecord> decode_record(std::span<const std::byte> raw) {
  if (raw.size() < sizeof(container_cgroup_record)) {
    return make_error("container record of " + std::to_string(raw.size()) +
                      " bytes is shorter than " + std::to_string(sizeof(container_cgroup_record)));
  }
  container_cgroup_record rec;
  std::memcpy(&rec, raw.data(), sizeof rec);
  if (rec.hdr.kind < CONTAINER_KIND_MKDIR || rec.hdr.kind > CONTAINER_KIND_EMPTIED) {
    return make_error("container record of unknown kind " + std::to_string(rec.hdr.kind));
  }
  if (rec.hdr.version != CONTAINER_RECORD_VERSION) {
    return make_error("container record version " + std::to_string(rec.hdr.version) +
                      ", expected " + std::to_string(CONTAINER_RECORD_VERSION));
  }
  size_t need = sizeof rec + size_t{rec.path_len};
  if (rec.path_len >= CONTAINER_PATH_MAX || rec.hdr.size < need || rec.hdr.size > raw.size()) {
    return make_error("container record size " + std::to_string(rec.hdr.size) +
                      " does not hold its path of " + std::to_string(rec.path_len) + " bytes (" +
                      std::to_string(raw.size()) + " in the ring)");
  }
  CgroupRecord out;
  out.kind = static_cast<Kind>(rec.hdr.kind);
  out.task = rec.hdr.task;
  out.boot_ns = rec.hdr.boot_ns;
  out.cgroup_id = rec.cgroup_id;
  out.hierarchy = rec.hierarchy;
  out.level = rec.level;
  out.path = std::string_view(reinterpret_cast<const char*>(raw.data()) + sizeof rec, rec.path_len);
  out.path_truncated = (rec.flags & CONTAINER_F_PATH_TRUNCATED) != 0;
  return out;
}

bool is_own_cgroup(std::string_view path, const CgroupContainer& c) {
  if (!c.is_container() || c.id.empty()) {
    return false;
  }
  size_t slash = path.rfind('/');
  const char* leaf = path.data() + (slash == std::string_view::npos ? 0 : slash + 1);
  return c.id.data() >= leaf && c.id.data() + c.id.size() <= path.data() + path.size();
}

ContainerTracker::ContainerTracker(size_t capacity, std::vector<std::string> containerd_namespaces)
    : capacity_(capacity == 0 ? 1 : capacity), ns_storage_(std::move(containerd_namespaces)) {
  for (const std::string& ns : ns_storage_) {
    namespaces_.emplace_back(ns);
  }
}

ContainerTracker::State& ContainerTracker::touch(std::string_view path, bool& created) {
  auto it = states_.find(path);
  if (it != states_.end()) {
    created = false;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return it->second;
  }
  created = true;
  if (states_.size() >= capacity_) {
    states_.erase(std::string_view(lru_.back()));
    lru_.pop_back();
  }
  lru_.emplace_front(path);
  State& s = states_[std::string_view(lru_.front())];
  s.lru = lru_.begin();
  return s;
}

Action ContainerTracker::on(const CgroupRecord& rec, CgroupContainer& out) {
  out = parse_cgroup_path(rec.path, namespaces_);
  if (!is_own_cgroup(rec.path, out)) {
    return Action::kNone;
  }
  bool created = false;
  State& s = touch(rec.path, created);
  switch (rec.kind) {
    case Kind::kMkdir:
      if (!created && !s.removed) {
        return Action::kNone;  // the same container in another hierarchy
      }
      s.exited = false;
      s.removed = false;
      return Action::kCreate;
    case Kind::kEmptied:
      if (!created && s.exited) {
        return Action::kNone;
      }
      s.exited = true;
      return Action::kExit;
    case Kind::kRmdir: {
      bool report = created || !s.exited;
      s.exited = true;
      s.removed = true;
      return report ? Action::kExit : Action::kNone;
    }
  }
  return Action::kNone;
}

}  // namespace needle::container
