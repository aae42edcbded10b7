// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The shared syscall dispatcher: one program on the raw sys_enter and one on sys_exit for all
 * sources (see needle/bpf/syscalls.h for the source side). Owned and loaded by the core, and only
 * when some source declares syscall handlers.
 *
 * Cost: for a syscall no source claimed, the program is a bounds check, one load from the
 * "any ABI" bitmap and a test before it returns; the ABI is looked at only after that. On the
 * tp_btf and raw_tp rungs only sys_exit is attached (the arguments are read from pt_regs there);
 * the core attaches sys_enter too only when a source has enter handlers. The tp rung's records
 * carry no pt_regs, so it runs both.
 *
 * Rungs, best first: tp_btf (the arguments and pt_regs are read directly), raw_tp (pt_regs read
 * with bpf_probe_read_kernel), tp (raw_syscalls tracepoints through tracefs; the kernel already
 * put the arguments in the record). The handlers of a rung are of the same program type, which
 * tail calls require; tp_btf also requires the same tracepoint, hence one prog array for enter
 * handlers and one for exit handlers.
 *
 * ABIs: native x86_64, and ia32 (int 0x80, sysenter, syscall from 32-bit code, and int 0x80 from
 * a 64-bit process, which the kernel runs through the ia32 table). The kernel marks a compat
 * syscall with TS_COMPAT in thread_info.status (x86; a #define, so not in BTF) from entry until
 * the return to user space, which covers both tracepoints. x32 is not built into this kernel
 * (CONFIG_X86_X32_ABI unset); its numbers (bit 30 set) are past the bitmap and ignored. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "needle/bpf/syscalls.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define NEEDLE_TS_COMPAT 0x0002   /* arch/x86/include/asm/thread_info.h */

/* Which syscalls some source claimed: `any` is the union of both ABIs (the early test), `abi` the
 * exact sets. Written by the core after load and whenever a source is added. */
struct needle_sys_bitmap {
  __u64 any[NEEDLE_SYS_NR_MAX / 64];
  __u64 abi[NEEDLE_SYS_ABIS][NEEDLE_SYS_NR_MAX / 64];
};
struct needle_sys_bitmap needle_sys_bits;

/* Slot abi * NEEDLE_SYS_NR_MAX + nr holds the owning source's handler; the core fills them. */
struct {
  __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
  __uint(max_entries, NEEDLE_SYS_ABIS * NEEDLE_SYS_NR_MAX);
  __type(key, __u32);
  __type(value, __u32);
} needle_sys_enter_progs SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
  __uint(max_entries, NEEDLE_SYS_ABIS * NEEDLE_SYS_NR_MAX);
  __type(key, __u32);
  __type(value, __u32);
} needle_sys_exit_progs SEC(".maps");

static __always_inline int needle_sys_claimed(__u64 nr) {
  return nr < NEEDLE_SYS_NR_MAX && (needle_sys_bits.any[nr / 64] >> (nr % 64)) & 1;
}

static __always_inline __u32 needle_sys_abi(struct task_struct* task) {
  if (bpf_core_field_exists(task->thread_info.status) &&
      (task->thread_info.status & NEEDLE_TS_COMPAT)) {   /* a direct load: task is BTF */
    return NEEDLE_SYS_ABI_COMPAT;
  }
  return NEEDLE_SYS_ABI_NATIVE;
}

/* Saves the six argument registers of the current syscall into `s`, in the ABI's order. `regs` is
 * the syscall's pt_regs (kernel memory; NULL on the tp rung, whose sys_enter record `tp` has the
 * arguments instead). The argument registers still hold the arguments at sys_exit: the kernel
 * writes only ax (the return value) before the exit tracepoint, and a tracer that changed them at
 * entry changed what the syscall itself read. */
/* `regs_btf`: regs is a BTF pointer (the tp_btf rung), whose registers load directly instead
 * of through six bpf_probe_read_kernel calls (a constant: the other rungs never see it). */
static __always_inline void needle_sys_fill(struct needle_sys_args* s, __u32 abi,
                                            struct pt_regs* regs,
                                            const struct trace_event_raw_sys_enter* tp,
                                            const int regs_btf) {
  if (tp) {
    /* The tracepoint record has syscall_get_arguments(), already in the ABI's order (the ctx
     * may only be read at constant offsets, hence no loop). */
    __u64 mask = abi == NEEDLE_SYS_ABI_COMPAT ? 0xffffffffull : ~0ull;
    s->args[0] = tp->args[0] & mask;
    s->args[1] = tp->args[1] & mask;
    s->args[2] = tp->args[2] & mask;
    s->args[3] = tp->args[3] & mask;
    s->args[4] = tp->args[4] & mask;
    s->args[5] = tp->args[5] & mask;
  } else if (regs_btf && abi == NEEDLE_SYS_ABI_COMPAT) {
    s->args[0] = (__u32)regs->bx;
    s->args[1] = (__u32)regs->cx;
    s->args[2] = (__u32)regs->dx;
    s->args[3] = (__u32)regs->si;
    s->args[4] = (__u32)regs->di;
    s->args[5] = (__u32)regs->bp;
  } else if (regs_btf) {
    s->args[0] = regs->di;
    s->args[1] = regs->si;
    s->args[2] = regs->dx;
    s->args[3] = regs->r10;
    s->args[4] = regs->r8;
    s->args[5] = regs->r9;
  } else if (abi == NEEDLE_SYS_ABI_COMPAT) {
    s->args[0] = (__u32)BPF_CORE_READ(regs, bx);
    s->args[1] = (__u32)BPF_CORE_READ(regs, cx);
    s->args[2] = (__u32)BPF_CORE_READ(regs, dx);
    s->args[3] = (__u32)BPF_CORE_READ(regs, si);
    s->args[4] = (__u32)BPF_CORE_READ(regs, di);
    s->args[5] = (__u32)BPF_CORE_READ(regs, bp);
  } else {
    s->args[0] = BPF_CORE_READ(regs, di);
    s->args[1] = BPF_CORE_READ(regs, si);
    s->args[2] = BPF_CORE_READ(regs, dx);
    s->args[3] = BPF_CORE_READ(regs, r10);
    s->args[4] = BPF_CORE_READ(regs, r8);
    s->args[5] = BPF_CORE_READ(regs, r9);
  }
}

/* The current thread's argument slot for claimed syscall `nr` of its ABI (*abi), created on first
 * use; NULL when the ABI's exact bitmap does not claim it. */
static __always_inline struct needle_sys_args* needle_sys_slot(__u64 nr, __u32* abi) {
  struct task_struct* task = bpf_get_current_task_btf();
  *abi = needle_sys_abi(task);
  if (!((needle_sys_bits.abi[*abi & 1][nr / 64] >> (nr % 64)) & 1)) {
    return NULL;
  }
  return bpf_task_storage_get(&needle_sys_args_map, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
}

/* Everything after the early test, at sys_enter (the tp rung, or when some source has enter
 * handlers). */
static __always_inline void needle_sys_enter_save(void* ctx, __u64 nr, struct pt_regs* regs,
                                                  const struct trace_event_raw_sys_enter* tp,
                                                  const int regs_btf) {
  __u32 abi = 0;
  struct needle_sys_args* s = needle_sys_slot(nr, &abi);
  if (!s) {
    return;
  }
  needle_sys_fill(s, abi, regs, tp, regs_btf);
  s->enter_ns = bpf_ktime_get_boot_ns();
  s->nr = (__u32)nr;
  s->abi = abi;
  s->live = 1;
  bpf_tail_call(ctx, &needle_sys_enter_progs, (abi & 1) * NEEDLE_SYS_NR_MAX + (__u32)nr);
}

/* Everything after the early test, at sys_exit on the tp_btf and raw_tp rungs: the arguments
 * are read from pt_regs here, so no sys_enter program has to run for every syscall of the host
 * (one hook instead of two). */
static __always_inline void needle_sys_exit_save_dispatch(void* ctx, __u64 nr,
                                                          struct pt_regs* regs,
                                                          const int regs_btf) {
  __u32 abi = 0;
  struct needle_sys_args* s = needle_sys_slot(nr, &abi);
  if (!s) {
    return;
  }
  needle_sys_fill(s, abi, regs, NULL, regs_btf);
  if (!s->live || s->nr != nr) {
    s->enter_ns = 0;   /* no enter hook saw this syscall */
  }
  s->nr = (__u32)nr;
  s->abi = abi;
  s->live = 0;
  bpf_tail_call(ctx, &needle_sys_exit_progs, (abi & 1) * NEEDLE_SYS_NR_MAX + (__u32)nr);
}

/* Everything after the early test, at sys_exit on the tp rung (whose record has no pt_regs):
 * hands over only a syscall whose arguments were saved at its own sys_enter (not one that was in
 * flight when needle attached). */
static __always_inline void needle_sys_exit_dispatch(void* ctx, __u64 nr) {
  struct needle_sys_args* s =
      bpf_task_storage_get(&needle_sys_args_map, bpf_get_current_task_btf(), 0, 0);
  if (!s || !s->live || s->nr != nr) {
    return;
  }
  s->live = 0;
  __u32 abi = s->abi & 1;
  if (!((needle_sys_bits.abi[abi][nr / 64] >> (nr % 64)) & 1)) {
    return;
  }
  bpf_tail_call(ctx, &needle_sys_exit_progs, abi * NEEDLE_SYS_NR_MAX + (__u32)nr);
}

/* ---- tp_btf ----------------------------------------------------------------------------- */

SEC("?tp_btf/sys_enter")
int BPF_PROG(needle_sys_enter_tp_btf, struct pt_regs* regs, long id) {
  if (!needle_sys_claimed((__u64)id)) {
    return 0;
  }
  needle_sys_enter_save(ctx, (__u64)id, regs, NULL, 1);
  return 0;
}

SEC("?tp_btf/sys_exit")
int BPF_PROG(needle_sys_exit_tp_btf, struct pt_regs* regs, long ret) {
  __u64 nr = (__u64)regs->orig_ax;
  if (!needle_sys_claimed(nr)) {
    return 0;
  }
  needle_sys_exit_save_dispatch(ctx, nr, regs, 1);
  return 0;
}

/* ---- raw_tp ----------------------------------------------------------------------------- */

SEC("?raw_tp/sys_enter")
int BPF_PROG(needle_sys_enter_raw_tp, struct pt_regs* regs, long id) {
  if (!needle_sys_claimed((__u64)id)) {
    return 0;
  }
  needle_sys_enter_save(ctx, (__u64)id, regs, NULL, 0);
  return 0;
}

SEC("?raw_tp/sys_exit")
int BPF_PROG(needle_sys_exit_raw_tp, struct pt_regs* regs, long ret) {
  __u64 nr = (__u64)BPF_CORE_READ(regs, orig_ax);
  if (!needle_sys_claimed(nr)) {
    return 0;
  }
  needle_sys_exit_save_dispatch(ctx, nr, regs, 0);
  return 0;
}

/* ---- tp (tracefs) ----------------------------------------------------------------------- */

SEC("?tp/raw_syscalls/sys_enter")
int needle_sys_enter_tp(struct trace_event_raw_sys_enter* ctx) {
  __u64 nr = (__u64)ctx->id;
  if (!needle_sys_claimed(nr)) {
    return 0;
  }
  needle_sys_enter_save(ctx, nr, NULL, ctx, 0);
  return 0;
}

SEC("?tp/raw_syscalls/sys_exit")
int needle_sys_exit_tp(struct trace_event_raw_sys_exit* ctx) {
  __u64 nr = (__u64)ctx->id;
  if (!needle_sys_claimed(nr)) {
    return 0;
  }
  needle_sys_exit_dispatch(ctx, nr);
  return 0;
}
