// A source with one syscall hook (sched_yield) whose typed rung never loads (see
// typed_fallback.bpf.c): proves the fall back to the plain rung. Each record becomes a
// `test.yield` event.
#include <cstring>

#include "needle/bpf_object.h"
#include "needle/plugin.h"
#include "needle/record.h"

NEEDLE_BPF_OBJECT(typedfallback)

namespace {
constexpr needle_bpf_program kPrograms[] = {
    NEEDLE_SYSCALL_HOOK_TYPED("fallback_yield_exit", "yield"),
};
constexpr needle_syscall kSyscalls[] = {
    needle::native_syscall(24, "yield"),   // sched_yield
};

class TypedFallback final : public needle::Source {
 public:
  TypedFallback(needle::Host host, const needle::Config&) : Source(host) {}
  needle_bpf_spec bpf_spec() override {
    return needle::object_spec(needle_bpf_typedfallback_bytes(), kPrograms, kSyscalls);
  }
  needle_rc decode(std::span<const std::byte> raw, needle::Event& ev) override {
    needle_record_header hdr{};
    if (raw.size() < sizeof hdr) {
      return NEEDLE_INVALID;
    }
    std::memcpy(&hdr, raw.data(), sizeof hdr);
    ev.set("type", "test.yield");
    ev.set("process.pid", hdr.task.tgid);
    return NEEDLE_OK;
  }
};
}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_SOURCE, TypedFallback, "typedfallback", "0.0.1",
              "a typed rung that never loads (tests)", "wip", needle::no_keys)
