// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The floor tracers of tests/bench/overhead.sh (FLOOR=...), loaded by bench_floor: what any
 * sensor built on this kernel's syscall hook must pay, measured in the same run as needle.
 *
 * - floor_hook: an empty program on sys_exit. The cost is the kernel's alone: with any program
 *   on a syscall tracepoint every syscall of every task takes the slow path, and each runs the
 *   tracepoint and its trampoline.
 * - floor_record: the "floor, batched wakeups" on that hook: for each syscall of the
 *   configured set (one per event a sensor reports: execs, forks, opens, connects, DNS sends
 *   and receives), reserve a 64-byte record, fill it and submit it without a wakeup unless it
 *   carries the unread data across the wakeup mark (needle's policy).
 *
 * Both attach through tp_btf and, where that fails to load, raw_tp. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define FLOOR_NR_MAX 512

/* Written by the loader after load, before attach. */
struct floor_config {
  __u64 wanted[FLOOR_NR_MAX / 64];   /* the syscalls that make a record */
  __u64 wakeup_bytes;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct floor_config);
} floor_config_map SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 8 << 20);   /* needle's default ring_kib */
} floor_ring SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} floor_drops SEC(".maps");

struct floor_record {
  __u64 boot_ns;
  __u32 tgid;
  __u32 pid;
  __s64 ret;
  __u32 nr;
  __u32 cpu;
  __u8 pad[32];
};
_Static_assert(sizeof(struct floor_record) == 64, "floor_record: 64 bytes");

static __always_inline int floor_record(__u64 nr, long ret) {
  __u32 zero = 0;
  struct floor_config* cfg = bpf_map_lookup_elem(&floor_config_map, &zero);
  if (!cfg || nr >= FLOOR_NR_MAX || !((cfg->wanted[nr / 64] >> (nr % 64)) & 1)) {
    return 0;
  }
  struct floor_record* r = bpf_ringbuf_reserve(&floor_ring, sizeof(*r), 0);
  if (!r) {
    __u64* drops = bpf_map_lookup_elem(&floor_drops, &zero);
    if (drops) {
      *drops += 1;
    }
    return 0;
  }
  __u64 id = bpf_get_current_pid_tgid();
  r->boot_ns = bpf_ktime_get_boot_ns();
  r->tgid = (__u32)(id >> 32);
  r->pid = (__u32)id;
  r->ret = ret;
  r->nr = (__u32)nr;
  r->cpu = bpf_get_smp_processor_id();
  __u64 avail = bpf_ringbuf_query(&floor_ring, BPF_RB_AVAIL_DATA);
  __u64 mark = cfg->wakeup_bytes;
  __u64 flags = (avail >= mark && avail - sizeof(*r) < mark) ? BPF_RB_FORCE_WAKEUP
                                                              : BPF_RB_NO_WAKEUP;
  bpf_ringbuf_submit(r, flags);
  return 0;
}

SEC("?tp_btf/sys_exit")
int BPF_PROG(floor_hook_tp_btf, struct pt_regs* regs, long ret) {
  return 0;
}

SEC("?raw_tp/sys_exit")
int BPF_PROG(floor_hook_raw_tp, struct pt_regs* regs, long ret) {
  return 0;
}

SEC("?tp_btf/sys_exit")
int BPF_PROG(floor_record_tp_btf, struct pt_regs* regs, long ret) {
  return floor_record((__u64)regs->orig_ax, ret);
}

SEC("?raw_tp/sys_exit")
int BPF_PROG(floor_record_raw_tp, struct pt_regs* regs, long ret) {
  return floor_record((__u64)BPF_CORE_READ(regs, orig_ax), ret);
}
