// `sysargs`: a test source on getpgid (x86_64 121) with an enter and an exit handler
// (sys_args.bpf.c). The exit handler reports what it was handed (the pid argument, the enter time,
// the word its enter handler left); each record becomes a `test.pgid` event.
#include <cstring>

#include "needle/bpf_object.h"
#include "needle/plugin.h"
#include "needle/record.h"
#include "sys_args_record.h"

NEEDLE_BPF_OBJECT(sysargs)

namespace {
constexpr uint32_t kEnter = NEEDLE_PROG_SYSCALL | NEEDLE_PROG_SYSCALL_ENTER;
constexpr needle_bpf_program kPrograms[] = {
    needle::hook_program("sysargs_pgid_enter_tp_btf", "pgid", "tp_btf", 1, kEnter),
    needle::hook_program("sysargs_pgid_enter_raw_tp", "pgid", "raw_tp", 1, kEnter),
    needle::hook_program("sysargs_pgid_enter_tp", "pgid", "tp", 1, kEnter),
    NEEDLE_SYSCALL_HOOK("sysargs_pgid_exit", "pgid"),
};
constexpr needle_syscall kSyscalls[] = {
    needle::native_syscall(121, "pgid"),   // getpgid
};

class SysArgs final : public needle::Source {
 public:
  SysArgs(needle::Host host, const needle::Config&) : Source(host) {}
  needle_bpf_spec bpf_spec() override {
    return needle::object_spec(needle_bpf_sysargs_bytes(), kPrograms, kSyscalls);
  }
  needle_rc decode(std::span<const std::byte> raw, needle::Event& ev) override {
    sys_args_record rec{};
    if (raw.size() < sizeof rec) {
      return NEEDLE_INVALID;
    }
    std::memcpy(&rec, raw.data(), sizeof rec);
    ev.set("type", "test.pgid");
    ev.set("process.pid", rec.hdr.task.tgid);
    ev.set("test.arg0", rec.arg0);
    ev.set("test.enter_ns", rec.enter_ns);
    ev.set("test.word", rec.word);
    ev.set("test.ret", rec.ret);
    return NEEDLE_OK;
  }
};
}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_SOURCE, SysArgs, "sysargs", "0.0.1",
              "getpgid's enter and exit handlers (tests)", "wip", needle::no_keys)
