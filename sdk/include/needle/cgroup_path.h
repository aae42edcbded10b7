// The one parser from a cgroup path to the container (and Kubernetes pod) it belongs to, shared
// by the cgroup enricher and the container source. Header-only, pure, allocation-free: the
// result's `id` is a view into the path the caller passed, and lives as long as that string.
//
// Recognised layouts (v1 hierarchy paths and the v2 `0::` path alike; the innermost container
// wins when containers nest, as with docker-in-docker or kind):
//
//   runtime     cgroupfs driver                                systemd driver
//   docker      /docker/<64hex>                                /system.slice/docker-<64hex>.scope
//   containerd  /<namespace>/<id> (ctr, CRI without a parent)
//   /system.slice/cri-containerd-<id>.scope CRI         /kubepods[/<qos>]/pod<uid>/<64hex>
//   /kubepods.slice/kubepods-<qos>.slice/
//                                                                kubepods-<qos>-pod<uid_>.slice/
//                                                                cri-containerd-<id>.scope
//   CRI-O       /kubepods[/<qos>]/pod<uid>/crio-<64hex>        .../crio-<64hex>.scope
//   podman      /libpod_parent/libpod-<64hex>                  /machine.slice/libpod-<64hex>.scope
//
// A plain hex id below a kubepods pod folder is reported as containerd: the CRI runtimes that put
// bare ids there are containerd and (before Kubernetes 1.24) dockershim. The `/<namespace>/<id>`
// form of containerd is recognised only at the top of the hierarchy, and only for a namespace the
// caller lists as a containerd namespace (default: `default`, `k8s.io`) or a 64-hex id, so that
// an unrelated two-level cgroup (`/user.slice/user-0.slice`) is not taken for a container.
// conmon's own cgroups (`libpod-conmon-<id>`, `crio-conmon-<id>`, `/libpod_parent/conmon`) are
// not containers.
#ifndef NEEDLE_CGROUP_PATH_H
#define NEEDLE_CGROUP_PATH_H

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>

namespace needle {

enum class ContainerRuntime : uint8_t { kNone = 0, kDocker, kContainerd, kCrio, kPodman };

/// The event's `container.runtime` value: "docker", "containerd", "cri-o", "podman" ("" for none).
constexpr std::string_view runtime_name(ContainerRuntime r) {
  switch (r) {
    case ContainerRuntime::kDocker:
      return "docker";
    case ContainerRuntime::kContainerd:
      return "containerd";
    case ContainerRuntime::kCrio:
      return "cri-o";
    case ContainerRuntime::kPodman:
      return "podman";
    case ContainerRuntime::kNone:
      break;
  }
  return "";
}

/// What a cgroup path says. `id` views the parsed path; the pod uid is copied (the systemd
/// driver spells its dashes as underscores) into the result itself.
struct CgroupContainer {
  static constexpr size_t kMaxPodUid = 40;

  ContainerRuntime runtime = ContainerRuntime::kNone;
  std::string_view id;
  char pod_uid_buf[kMaxPodUid] = {};
  uint8_t pod_uid_len = 0;

  bool is_container() const { return runtime != ContainerRuntime::kNone; }
  std::string_view pod_uid() const { return std::string_view(pod_uid_buf, pod_uid_len); }
};

/// containerd namespaces accepted in the `/<namespace>/<id>` layout.
inline constexpr std::string_view kDefaultContainerdNamespaces[] = {"default", "k8s.io"};

namespace cgroup_detail {

constexpr bool is_hex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return !s.empty();
}

constexpr bool is_hex64(std::string_view s) {
  return s.size() == 64 && is_hex(s);
}

/// containerd's identifier rule: [A-Za-z0-9]+([._-][A-Za-z0-9]+)*, at most 76 characters.
constexpr bool is_containerd_id(std::string_view s) {
  if (s.empty() || s.size() > 76) {
    return false;
  }
  bool prev_sep = true;
  for (char c : s) {
    bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    bool sep = c == '.' || c == '_' || c == '-';
    if (!alnum && !sep) {
      return false;
    }
    if (sep && prev_sep) {
      return false;
    }
    prev_sep = sep;
  }
  return !prev_sep;
}

constexpr bool is_unit(std::string_view s) {
  return s.ends_with(".slice") || s.ends_with(".scope") || s.ends_with(".service") ||
         s.ends_with(".mount") || s.ends_with(".socket");
}

constexpr std::string_view strip_scope(std::string_view s) {
  if (s.ends_with(".scope")) {
    s.remove_suffix(6);
  }
  return s;
}

/// `<prefix><64hex>` with an optional `.scope` suffix.
constexpr bool prefixed_id(std::string_view comp, std::string_view prefix, std::string_view& id) {
  comp = strip_scope(comp);
  if (!comp.starts_with(prefix)) {
    return false;
  }
  comp.remove_prefix(prefix.size());
  if (!is_hex64(comp)) {
    return false;
  }
  id = comp;
  return true;
}

/// Copies a pod uid ([0-9a-fA-F-], 32 to 36 characters once '_' became '-').
inline bool set_pod_uid(std::string_view uid, CgroupContainer& out) {
  if (uid.size() < 32 || uid.size() > 36) {
    return false;
  }
  char buf[CgroupContainer::kMaxPodUid];
  for (size_t i = 0; i < uid.size(); ++i) {
    char c = uid[i] == '_' ? '-' : uid[i];
    bool ok =
        (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '-';
    if (!ok) {
      return false;
    }
    buf[i] = c;
  }
  for (size_t i = 0; i < uid.size(); ++i) {
    out.pod_uid_buf[i] = buf[i];
  }
  out.pod_uid_len = static_cast<uint8_t>(uid.size());
  return true;
}

/// A pod folder: `pod<uid>` (cgroupfs) or `kubepods[-<qos>]-pod<uid_>.slice` (systemd).
inline bool pod_component(std::string_view comp, CgroupContainer& out) {
  if (comp.starts_with("pod")) {
    return set_pod_uid(comp.substr(3), out);
  }
  if (comp.starts_with("kubepods") && comp.ends_with(".slice")) {
    comp.remove_suffix(6);
    size_t at = comp.rfind("-pod");
    if (at != std::string_view::npos) {
      return set_pod_uid(comp.substr(at + 4), out);
    }
  }
  return false;
}

}  // namespace cgroup_detail

/// Parses one cgroup path (as in /proc/<pid>/cgroup, relative to its hierarchy's root).
/// `containerd_namespaces` lists the namespaces accepted in the `/<namespace>/<id>` layout.
inline CgroupContainer parse_cgroup_path(
    std::string_view path,
    std::span<const std::string_view> containerd_namespaces = kDefaultContainerdNamespaces) {
  using namespace cgroup_detail;
  CgroupContainer out;
  bool in_kubepods = false;
  bool after_pod = false;
  std::string_view prev;
  size_t index = 0;
  while (!path.empty()) {
    size_t slash = path.find('/');
    std::string_view comp = path.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
    if (comp.empty()) {
      continue;
    }
    std::string_view id;
    if (comp == "kubepods" || comp.starts_with("kubepods.") || comp.starts_with("kubepods-")) {
      in_kubepods = true;
    }
    if (in_kubepods && pod_component(comp, out)) {
      after_pod = true;
    } else if (prefixed_id(comp, "docker-", id)) {
      out.runtime = ContainerRuntime::kDocker;
      out.id = id;
    } else if (prefixed_id(comp, "cri-containerd-", id)) {
      out.runtime = ContainerRuntime::kContainerd;
      out.id = id;
    } else if (prefixed_id(comp, "crio-", id)) {
      out.runtime = ContainerRuntime::kCrio;
      out.id = id;
    } else if (prefixed_id(comp, "libpod-", id)) {
      out.runtime = ContainerRuntime::kPodman;
      out.id = id;
    } else if (prev == "docker" && is_hex64(comp)) {
      out.runtime = ContainerRuntime::kDocker;
      out.id = comp;
    } else if (after_pod && is_hex64(comp)) {
      out.runtime = ContainerRuntime::kContainerd;
      out.id = comp;
    } else if (index == 1 && !is_unit(prev) && is_containerd_id(prev) && is_containerd_id(comp) &&
               !is_unit(comp)) {
      bool known = false;
      for (std::string_view ns : containerd_namespaces) {
        known = known || ns == prev;
      }
      if (known || (is_hex64(comp) && prev != "docker" && prev != "libpod_parent")) {
        out.runtime = ContainerRuntime::kContainerd;
        out.id = comp;
      }
    }
    prev = comp;
    ++index;
  }
  return out;
}

/// One line of /proc/<pid>/cgroup: `<hierarchy-id>:<controllers>:<path>`.
struct ProcCgroupLine {
  std::string_view hierarchy;
  std::string_view controllers;
  std::string_view path;
};

/// Calls `f(const ProcCgroupLine&)` for every well-formed line of a /proc/<pid>/cgroup text;
/// stops early when `f` returns false.
template <typename F>
void for_each_cgroup_line(std::string_view text, F&& f) {
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    size_t a = line.find(':');
    if (a == std::string_view::npos) {
      continue;
    }
    size_t b = line.find(':', a + 1);
    if (b == std::string_view::npos) {
      continue;
    }
    ProcCgroupLine l{line.substr(0, a), line.substr(a + 1, b - a - 1), line.substr(b + 1)};
    if (!f(l)) {
      return;
    }
  }
}

/// The container of a process from its whole /proc/<pid>/cgroup text: the v2 (`0::`) path
/// first, then each v1 hierarchy's path (a v1-only machine has no `0::` line, and on a hybrid
/// machine a runtime may have placed the process in v1 hierarchies only). `path_out`, when not
/// null, receives the path the answer came from (the v2 path when no line names a container).
inline CgroupContainer parse_proc_cgroup(
    std::string_view text, std::string_view* path_out = nullptr,
    std::span<const std::string_view> containerd_namespaces = kDefaultContainerdNamespaces) {
  CgroupContainer found;
  std::string_view v2;
  bool have_v2 = false;
  for_each_cgroup_line(text, [&](const ProcCgroupLine& l) {
    if (l.hierarchy == "0" && l.controllers.empty()) {
      v2 = l.path;
      have_v2 = true;
      return false;
    }
    return true;
  });
  if (have_v2) {
    found = parse_cgroup_path(v2, containerd_namespaces);
    if (path_out != nullptr) {
      *path_out = v2;
    }
    if (found.is_container()) {
      return found;
    }
  }
  for_each_cgroup_line(text, [&](const ProcCgroupLine& l) {
    if (l.hierarchy == "0") {
      return true;
    }
    CgroupContainer c = parse_cgroup_path(l.path, containerd_namespaces);
    if (c.is_container()) {
      found = c;
      if (path_out != nullptr) {
        *path_out = l.path;
      }
      return false;
    }
    if (!have_v2 && path_out != nullptr && path_out->empty()) {
      *path_out = l.path;
    }
    return true;
  });
  return found;
}

}  // namespace needle

#endif  // NEEDLE_CGROUP_PATH_H
