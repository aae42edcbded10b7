// Access to a BPF object embedded by needle_add_bpf_object(<name> ...).
#ifndef NEEDLE_BPF_OBJECT_H
#define NEEDLE_BPF_OBJECT_H

#include <cstddef>
#include <cstdint>
#include <span>

#include "needle/abi.h"

/// Declares the embedded object `name` and defines `needle_bpf_<name>_bytes()`, returning its
/// bytes (valid for the life of the library).
#define NEEDLE_BPF_OBJECT(name)                                                       \
  extern "C" const unsigned char needle_bpf_##name[];                                 \
  extern "C" const unsigned char needle_bpf_##name##_end[];                           \
  inline std::span<const unsigned char> needle_bpf_##name##_bytes() {                 \
    return {needle_bpf_##name,                                                        \
            static_cast<std::size_t>(needle_bpf_##name##_end - needle_bpf_##name)}; \
  }

namespace needle {

/// One rung of one hook in a source's program table (needle_bpf_program with its size set).
/// `required`: the hook fails on this rung if the program does not load and attach.
constexpr needle_bpf_program hook_program(const char* name, const char* hook, const char* rung,
                                         uint32_t required = 1, uint32_t flags = 0) {
  return needle_bpf_program{sizeof(needle_bpf_program), flags, name, hook, rung, required, 0};
}

/// A syscall that `hook`'s NEEDLE_PROG_SYSCALL programs handle, in the native (x86_64) or the
/// compat (ia32) ABI, for the spec's `syscalls` table.
constexpr needle_syscall native_syscall(uint32_t nr, const char* hook) {
  return needle_syscall{sizeof(needle_syscall), NEEDLE_SYSCALL_NATIVE, nr, 0, hook};
}
constexpr needle_syscall compat_syscall(uint32_t nr, const char* hook) {
  return needle_syscall{sizeof(needle_syscall), NEEDLE_SYSCALL_COMPAT, nr, 0, hook};
}

/// A source's bpf_spec(): its embedded object (`needle_bpf_<name>_bytes()`) and program table.
template <std::size_t P>
needle_bpf_spec object_spec(std::span<const unsigned char> object,
                            const needle_bpf_program (&programs)[P]) {
  needle_bpf_spec spec{};
  spec.struct_size = sizeof spec;
  spec.program_size = sizeof(needle_bpf_program);
  spec.object = object.data();
  spec.object_size = object.size();
  spec.programs = programs;
  spec.program_count = P;
  return spec;
}

/// The same for a source with syscall handlers: `syscalls` names the syscalls its
/// NEEDLE_PROG_SYSCALL programs handle.
template <std::size_t P, std::size_t S>
needle_bpf_spec object_spec(std::span<const unsigned char> object,
                            const needle_bpf_program (&programs)[P],
                            const needle_syscall (&syscalls)[S]) {
  needle_bpf_spec spec = object_spec(object, programs);
  spec.syscalls = syscalls;
  spec.syscall_count = S;
  spec.syscall_size = sizeof(needle_syscall);
  return spec;
}

}  // namespace needle

/// The three rungs of an exit handler written with NEEDLE_SYS_EXIT_HANDLER(handler) (kernel
/// side: needle/bpf/syscalls.h), as entries of a program table under `hook`.
#define NEEDLE_SYSCALL_HOOK(handler, hook)                                                 \
  ::needle::hook_program(handler "_tp_btf", hook, "tp_btf", 1, NEEDLE_PROG_SYSCALL),        \
      ::needle::hook_program(handler "_raw_tp", hook, "raw_tp", 1, NEEDLE_PROG_SYSCALL),    \
      ::needle::hook_program(handler "_tp", hook, "tp", 1, NEEDLE_PROG_SYSCALL)

/// The six programs of an exit handler written with NEEDLE_SYS_EXIT_HANDLER_TYPED: on each
/// dispatcher rung the typed program (rung "<rung>+typed", Linux 6.2+) first, the plain one as
/// its fallback.
#define NEEDLE_SYSCALL_HOOK_TYPED(handler, hook)                                                 \
  ::needle::hook_program(handler "_tp_btf_typed", hook, "tp_btf+typed", 1, NEEDLE_PROG_SYSCALL),  \
      ::needle::hook_program(handler "_tp_btf", hook, "tp_btf", 1, NEEDLE_PROG_SYSCALL),          \
      ::needle::hook_program(handler "_raw_tp_typed", hook, "raw_tp+typed", 1,                    \
                             NEEDLE_PROG_SYSCALL),                                                \
      ::needle::hook_program(handler "_raw_tp", hook, "raw_tp", 1, NEEDLE_PROG_SYSCALL),          \
      ::needle::hook_program(handler "_tp_typed", hook, "tp+typed", 1, NEEDLE_PROG_SYSCALL),      \
      ::needle::hook_program(handler "_tp", hook, "tp", 1, NEEDLE_PROG_SYSCALL)

#endif  // NEEDLE_BPF_OBJECT_H
