// A program the verifier must reject: it reads past the end of a map value.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "needle/bpf/needle.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} small SEC(".maps");

SEC("?raw_tp/sys_enter")
int needle_bad_read(void* ctx) {
  __u32 key = 0;
  __u64* v = bpf_map_lookup_elem(&small, &key);
  if (!v) {
    return 0;
  }
  volatile __u64 out = v[4];   /* out of bounds: rejected */
  (void)out;
  return 0;
}
