#include "container_source.h"

#include <fstream>
#include <sstream>

#include "container_record.h"
#include "needle/bpf_object.h"
#include "needle/record.h"

NEEDLE_BPF_OBJECT(container)

namespace needle::container {
namespace {

// Each hook's rungs, best first (program names as in bpf/container.bpf.c). Without `emptied`
// a container's exit is reported when its cgroup is removed.
constexpr needle_bpf_program kPrograms[] = {
    hook_program("container_mkdir_tp_btf", "mkdir", "tp_btf", 1),
    hook_program("container_mkdir_raw_tp", "mkdir", "raw_tp", 1),
    hook_program("container_mkdir_tp", "mkdir", "tp", 1),
    hook_program("container_rmdir_tp_btf", "rmdir", "tp_btf", 1),
    hook_program("container_rmdir_raw_tp", "rmdir", "raw_tp", 1),
    hook_program("container_rmdir_tp", "rmdir", "tp", 1),
    hook_program("container_emptied_tp_btf", "emptied", "tp_btf", 0),
    hook_program("container_emptied_raw_tp", "emptied", "raw_tp", 0),
    hook_program("container_emptied_tp", "emptied", "tp", 0),
};

}  // namespace

bool mountinfo_has_cgroup2(std::string_view mountinfo) {
  // "<id> <parent> <dev> <root> <mount point> <options> [optional...] - <fstype> <source> ..."
  size_t pos = 0;
  while (pos < mountinfo.size()) {
    size_t nl = mountinfo.find('\n', pos);
    std::string_view line = mountinfo.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? mountinfo.size() : nl + 1;
    size_t sep = line.find(" - ");
    if (sep != std::string_view::npos && line.substr(sep + 3).starts_with("cgroup2 ")) {
      return true;
    }
  }
  return false;
}

ContainerSource::ContainerSource(Host host, ContainerOptions options)
    : Source(host),
      options_(std::move(options)),
      tracker_(options_.max_containers, options_.containerd_namespaces),
      malformed_counter_(
          host.counter("malformed_records", "Ring records the container decoder rejected")),
      truncated_counter_(host.counter(
          "truncated_paths", "cgroup paths longer than the kernel side keeps (not parsed)")) {}

needle_bpf_spec ContainerSource::bpf_spec() {
  return object_spec(needle_bpf_container_bytes(), kPrograms);
}

Result<void> ContainerSource::bpf_configure(Bpf& bpf) {
  std::ifstream in("/proc/self/mountinfo");
  std::stringstream text;
  text << in.rdbuf();
  const uint32_t unified_only = mountinfo_has_cgroup2(text.str()) ? 1 : 0;
  host().info(unified_only ? "cgroup2 is mounted: following the unified hierarchy"
                           : "no cgroup2 mount: following every cgroup v1 hierarchy");
  return bpf.set_global("unified_only", unified_only);
}

needle_rc ContainerSource::decode(std::span<const std::byte> raw, Event& ev) {
  auto rec = decode_record(raw);
  if (!rec) {
    host().add(malformed_counter_);
    host().set_error(rec.error().message);
    return NEEDLE_ERROR;
  }
  if (rec->path_truncated) {
    host().add(truncated_counter_);
    return NEEDLE_SKIP;  // a cut path could name the wrong container
  }
  CgroupContainer c;
  Action action = tracker_.on(*rec, c);
  if (action == Action::kNone) {
    return NEEDLE_SKIP;
  }
  fill_event(api(), *rec, c, action, ev);
  return NEEDLE_OK;
}

void fill_event(const needle_host_api* api, const CgroupRecord& rec, const CgroupContainer& c,
                Action action, Event& ev) {
  ev.set("type", action == Action::kCreate ? "container.create" : "container.exit");
  if (rec.task.tgid != 0) {
    fill_process(api, ev, rec.task);
  }
  Event ct = ev.object("container");
  ct.set("id", c.id);
  ct.set("runtime", runtime_name(c.runtime));
  if (!c.pod_uid().empty()) {
    ev.set("pod.uid", c.pod_uid());
  }
  Event cg = ev.object("cgroup");
  cg.set("path", rec.path);
  cg.set("id", rec.cgroup_id);
  cg.set("hierarchy", rec.hierarchy);
}

}  // namespace needle::container
