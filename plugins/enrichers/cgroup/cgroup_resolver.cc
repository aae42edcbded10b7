#include "cgroup_resolver.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>
#include <thread>

namespace needle::cgroup {

namespace fs = std::filesystem;

std::string cgroup2_mount_of(std::string_view mountinfo) {
  // mountinfo: "id parent major:minor root mount-point options [optional...] - fstype source ..."
  while (!mountinfo.empty()) {
    size_t nl = mountinfo.find('\n');
    std::string_view line = mountinfo.substr(0, nl);
    mountinfo = nl == std::string_view::npos ? std::string_view{} : mountinfo.substr(nl + 1);
    size_t sep = line.find(" - ");
    if (sep == std::string_view::npos || !line.substr(sep + 3).starts_with("cgroup2 ")) {
      continue;
    }
    // The fifth field is the mount point (octal escapes are not expected in it).
    std::string_view rest = line;
    for (int i = 0; i < 4; ++i) {
      size_t sp = rest.find(' ');
      if (sp == std::string_view::npos) {
        rest = {};
        break;
      }
      rest.remove_prefix(sp + 1);
    }
    std::string_view mount = rest.substr(0, rest.find(' '));
    if (!mount.empty()) {
      return std::string(mount);
    }
  }
  return {};
}

CgroupResolver::CgroupResolver(std::string cgroup2_root,
                               std::vector<std::string> containerd_namespaces,
                               std::string proc_root, std::chrono::milliseconds min_rescan)
    : root_(std::move(cgroup2_root)),
      ns_storage_(std::move(containerd_namespaces)),
      proc_(std::move(proc_root)),
      min_rescan_(min_rescan) {
  while (!root_.empty() && root_.size() > 1 && root_.back() == '/') {
    root_.pop_back();
  }
  for (const std::string& ns : ns_storage_) {
    namespaces_.emplace_back(ns);
  }
  if (!root_.empty()) {
    struct stat st {};
    root_id_ = ::stat(root_.c_str(), &st) == 0 ? st.st_ino : 0;
  }
}

CgroupInfo CgroupResolver::from_path(std::string_view path) const {
  CgroupInfo info;
  info.resolved = true;
  info.path = std::string(path.empty() ? "/" : path);
  CgroupContainer c = parse_cgroup_path(path, namespaces_);
  info.runtime = c.runtime;
  info.id = std::string(c.id);
  info.pod_uid = std::string(c.pod_uid());
  return info;
}

CgroupInfo CgroupResolver::from_proc_text(std::string_view text) const {
  std::string_view path;
  CgroupContainer c = parse_proc_cgroup(text, &path, namespaces_);
  CgroupInfo info;
  info.resolved = true;
  info.path = std::string(path.empty() ? "/" : path);
  info.runtime = c.runtime;
  info.id = std::string(c.id);
  info.pod_uid = std::string(c.pod_uid());
  return info;
}

bool CgroupResolver::read_proc_cgroup(uint32_t pid, std::string& out) const {
  if (pid == 0) {
    return false;
  }
  std::string file = proc_ + "/" + std::to_string(pid) + "/cgroup";
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  out.clear();
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (1u << 20)) {
      break;  // a cgroup file is a few hundred bytes; do not follow a runaway one
    }
  }
  ::close(fd);
  return !out.empty();
}

uint64_t CgroupResolver::inode_of(const std::string& rel) const {
  std::string full = root_ + (rel == "/" ? std::string() : rel);
  struct stat st {};
  return ::stat(full.c_str(), &st) == 0 ? st.st_ino : 0;
}

void CgroupResolver::rescan() {
  ++scans_;
  scanned_ = true;
  last_scan_ = std::chrono::steady_clock::now();
  index_.clear();
  index_.emplace(root_id_, "/");
  std::error_code ec;
  fs::recursive_directory_iterator it(root_, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code sec;
    if (!it->is_directory(sec) || it->is_symlink(sec)) {
      if (it->is_symlink(sec)) {
        it.disable_recursion_pending();
      }
      continue;
    }
    struct stat st {};
    if (::stat(it->path().c_str(), &st) != 0) {
      continue;
    }
    std::string rel = it->path().string().substr(root_.size());
    index_.emplace(st.st_ino, rel.empty() ? "/" : rel);
  }
}

std::optional<std::string> CgroupResolver::path_of(uint64_t cgid) {
  if (root_.empty()) {
    return std::nullopt;
  }
  auto it = index_.find(cgid);
  if (it != index_.end()) {
    // Ids are not reused while the cgroup lives; check it still does.
    if (inode_of(it->second) == cgid) {
      return it->second;
    }
  }
  // A cgroup made since the last scan needs a new one. Scans are spaced by min_rescan (a
  // process making cgroups fast cannot make us walk the tree continuously): wait for the next
  // allowed one rather than answer "unknown" for a cgroup that exists.
  if (scanned_) {
    auto next = last_scan_ + min_rescan_;
    if (std::chrono::steady_clock::now() < next) {
      std::this_thread::sleep_until(next);
    }
  }
  rescan();
  it = index_.find(cgid);
  if (it != index_.end()) {
    return it->second;
  }
  return std::nullopt;
}

CgroupInfo CgroupResolver::resolve(uint64_t cgid, uint32_t pid) {
  std::string text;
  const bool have_proc = read_proc_cgroup(pid, text);
  if (root_.empty()) {
    // v1-only: the v2 id says nothing; the process's own v1 paths do.
    return have_proc ? from_proc_text(text) : CgroupInfo{};
  }
  if (cgid == root_id_) {
    return from_path("/");
  }
  if (have_proc) {
    std::string_view v2;
    bool found = false;
    for_each_cgroup_line(text, [&](const ProcCgroupLine& l) {
      if (l.hierarchy == "0" && l.controllers.empty()) {
        v2 = l.path;
        found = true;
        return false;
      }
      return true;
    });
    // The process may have moved or its pid been reused since the event: trust /proc only
    // when its v2 path is the event's cgroup.
    if (found && inode_of(std::string(v2)) == cgid) {
      return from_proc_text(text);
    }
  }
  if (auto path = path_of(cgid)) {
    return from_path(*path);
  }
  return CgroupInfo{};
}

}  // namespace needle::cgroup
