// Access to a BPF object embedded by needle_add_bpf_object(<name> ...).
#ifndef NEEDLE_BPF_OBJECT_H
#define NEEDLE_BPF_OBJECT_H

#include <cstddef>
#include <span>

/// Declares the embedded object `name` and defines `needle_bpf_<name>_bytes()`, returning its
/// bytes (valid for the life of the library).
#define NEEDLE_BPF_OBJECT(name)                                                       \
  extern "C" const unsigned char needle_bpf_##name[];                                 \
  extern "C" const unsigned char needle_bpf_##name##_end[];                           \
  inline std::span<const unsigned char> needle_bpf_##name##_bytes() {                 \
    return {needle_bpf_##name,                                                        \
            static_cast<std::size_t>(needle_bpf_##name##_end - needle_bpf_##name)}; \
  }

#endif  // NEEDLE_BPF_OBJECT_H
