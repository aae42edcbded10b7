// The bpf spec of a test source whose hooks are syscall handlers of the shared dispatcher.
#ifndef NEEDLE_TESTS_SYSCALL_SPEC_H
#define NEEDLE_TESTS_SYSCALL_SPEC_H

#include <cstddef>
#include <span>

#include "needle/abi.h"

namespace needle::test {

template <size_t P, size_t S>
needle_bpf_spec syscall_spec(std::span<const unsigned char> bytes,
                             const needle_bpf_program (&programs)[P],
                             const needle_syscall (&syscalls)[S]) {
  needle_bpf_spec spec{sizeof(needle_bpf_spec), sizeof(needle_bpf_program), bytes.data(),
                       bytes.size(), programs, P};
  spec.syscalls = syscalls;
  spec.syscall_count = S;
  spec.syscall_size = sizeof(needle_syscall);
  return spec;
}

}  // namespace needle::test

#endif
