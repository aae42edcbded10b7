// A source whose only program the verifier rejects: needle must exit 4 naming the program and
// printing the verifier's last lines.
#include "needle/bpf_object.h"
#include "needle/plugin.h"

NEEDLE_BPF_OBJECT(badverifier)

namespace {
constexpr needle_bpf_program kPrograms[] = {
    {sizeof(needle_bpf_program), 0, "needle_bad_read", "sys_enter", "raw_tp", 1, 0},
};
class BadProg final : public needle::Source {
 public:
  BadProg(needle::Host host, const needle::Config&) : Source(host) {}
  needle_bpf_spec bpf_spec() override {
    auto bytes = needle_bpf_badverifier_bytes();
    return needle_bpf_spec{sizeof(needle_bpf_spec), sizeof(needle_bpf_program), bytes.data(),
                           bytes.size(), kPrograms, 1};
  }
  needle_rc decode(std::span<const std::byte>, needle::Event&) override { return NEEDLE_SKIP; }
};
}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_SOURCE, BadProg, "badprog", "0.0.1", "rejected by the verifier (tests)",
              "wip", needle::no_keys)
