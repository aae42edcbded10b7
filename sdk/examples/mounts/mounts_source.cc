// source/mounts: mount(2) and umount2(2) calls as `mount.mount` and `mount.umount` events.
// The user-space half of an out-of-tree source: it hands needle its embedded BPF object and
// program table, and turns each ring record into an event. See README.md.
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>

#include "mount_record.h"
#include "needle/bpf_object.h"
#include "needle/plugin.h"
#include "needle/record.h"

// The object needle_add_bpf_object(mount ...) embedded: needle_bpf_mount_bytes().
NEEDLE_BPF_OBJECT(mount)

static_assert(sizeof(mount_record) == MOUNT_RECORD_SIZE, "mount_record layout");
static_assert(offsetof(mount_record, ret) == NEEDLE_RECORD_HEADER_SIZE, "mount_record layout");

namespace {

// Two hooks with one rung each; the entry and exit programs of a hook form that rung together.
constexpr needle_bpf_program kPrograms[] = {
    needle::hook_program("mounts_mount_enter_tp", "mount", "tp"),
    needle::hook_program("mounts_mount_exit_tp", "mount", "tp"),
    needle::hook_program("mounts_umount_enter_tp", "umount", "tp"),
    needle::hook_program("mounts_umount_exit_tp", "umount", "tp"),
};

constexpr needle_config_key kKeys[] = {
    needle::key_bool("failed", "true",
                     "Also report calls that failed (mount.result is then -errno)"),
};

class MountsSource final : public needle::Source {
 public:
  // Runs for `needle check` too: validate and register counters only, no kernel I/O.
  MountsSource(needle::Host host, const needle::Config& cfg)
      : Source(host),
        failed_(cfg.get_bool("failed")),
        malformed_(host.counter("malformed_records", "Ring records this source rejected")) {}

  needle_bpf_spec bpf_spec() override {
    const auto bytes = needle_bpf_mount_bytes();
    return needle_bpf_spec{
        sizeof(needle_bpf_spec), sizeof(needle_bpf_program), bytes.data(), bytes.size(), kPrograms,
        std::size(kPrograms)};
  }

  // Ring thread. `raw` is valid only during the call; everything is copied into the event.
  needle_rc decode(std::span<const std::byte> raw, needle::Event& ev) override {
    mount_record rec;
    if (!needle::read_record(raw, rec) || rec.hdr.version != MOUNT_RECORD_VERSION ||
        (rec.hdr.kind != MOUNT_KIND_MOUNT && rec.hdr.kind != MOUNT_KIND_UMOUNT)) {
      host().add(malformed_);
      host().set_error("malformed mount record");
      return NEEDLE_ERROR;  // counted by needle as a decode gap
    }
    if (rec.ret != 0 && !failed_) {
      return NEEDLE_SKIP;
    }
    const bool mount = rec.hdr.kind == MOUNT_KIND_MOUNT;
    ev.set("type", mount ? "mount.mount" : "mount.umount");
    needle::fill_process(api(), ev, rec.hdr.task);
    needle::Event m = ev.object("mount");
    m.set("target", needle::fixed_str(rec.target, sizeof rec.target));
    if (mount) {
      m.set("source", needle::fixed_str(rec.source, sizeof rec.source));
      m.set("fstype", needle::fixed_str(rec.fstype, sizeof rec.fstype));
    }
    m.set("flags", rec.flags);
    m.set("result", rec.ret);
    return NEEDLE_OK;
  }

 private:
  bool failed_;
  uint32_t malformed_;
};

}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_SOURCE, MountsSource, "mounts", "0.1.0",
              "Example: mount(2) and umount2(2) calls with their result", "alpha", kKeys)
