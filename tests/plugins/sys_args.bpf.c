// Syscall handlers that use both halves of the dispatcher's contract: an enter handler that
// leaves a word in `reserved` for its exit handler, and an exit handler that reports what it was
// handed (the argument, the enter time, the word).
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "needle/bpf/needle.bpf.h"
#include "needle/bpf/syscalls.h"
#include "sys_args_record.h"

char LICENSE[] SEC("license") = "GPL";

NEEDLE_SYS_ENTER_HANDLER(sysargs_pgid_enter) {
  sys->reserved = SYS_ARGS_ENTER_WORD;
  return 0;
}

NEEDLE_SYS_EXIT_HANDLER(sysargs_pgid_exit) {
  if (needle_current_filtered()) {
    return 0;
  }
  struct sys_args_record* rec = needle_reserve(sizeof(*rec));
  if (!rec) {
    return 0;
  }
  needle_fill_header(&rec->hdr, 1, 1, sizeof(*rec));
  rec->arg0 = sys->args[0];
  rec->enter_ns = sys->enter_ns;
  rec->word = sys->reserved;
  rec->ret = ret;
  needle_submit(rec);
  return 0;
}
