// A syscall handler whose typed variant this kernel refuses, as Linux 6.1 refuses every
// program that calls bpf_rdonly_cast: needle must fall back to the plain variant on the same
// dispatcher rung, say so, and run it.
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "needle/bpf/needle.bpf.h"
#include "needle/bpf/syscalls.h"

char LICENSE[] SEC("license") = "GPL";

NEEDLE_SYS_EXIT_HANDLER_TYPED(fallback_yield_exit) {
  if (typed) {
    /* A helper no tracing program may call: the verifier refuses the typed programs. */
    char byte = 0;
    bpf_skb_load_bytes(NULL, 0, &byte, 1);
  }
  if (needle_current_filtered()) {
    return 0;
  }
  struct needle_record_header* rec = needle_reserve(sizeof(*rec));
  if (!rec) {
    return 0;
  }
  needle_fill_header(rec, 1, 1, sizeof(*rec));
  needle_submit(rec);
  return 0;
}
