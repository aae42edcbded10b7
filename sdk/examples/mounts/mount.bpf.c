// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Kernel side of the example `mounts` source: mount(2) and umount2(2) calls, with their result.
 *
 * The arguments are saved at syscall entry, keyed by thread, and the strings read at exit: by
 * then the kernel has copied them, so the pages are resident (a non-sleepable program cannot
 * fault them in) and the record carries the result too.
 *
 * Rung: classic tracepoints syscalls/sys_{enter,exit}_{mount,umount} through tracefs, to keep
 * the example small. A production source uses needle's shared syscall dispatcher instead
 * (needle/bpf/syscalls.h), which also sees the 32-bit compat ABI these tracepoints miss. The new
 * mount API (fsopen, fsmount, move_mount), which util-linux 2.39 and later use, is not covered. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "mount_record.h"
#include "needle/bpf/needle.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

_Static_assert(sizeof(struct mount_record) == MOUNT_RECORD_SIZE, "mount_record layout");

/* The tracepoints' own layouts (see events/syscalls/sys_enter_mount/format). */
struct mount_sys_enter {
  __u64 common;
  __s32 nr;
  __u32 pad;
  __u64 args[6];
};

struct mount_sys_exit {
  __u64 common;
  __s32 nr;
  __u32 pad;
  __s64 ret;
};

struct mount_call {
  __u64 source;
  __u64 target;
  __u64 fstype;
  __u64 flags;
  __u32 kind;
  __u32 pad;
};

/* Calls between entry and exit, per thread. Bounded: a thread is in one call at a time, and an
 * entry whose exit never comes (the thread was killed) is overwritten by its next call. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u32);
  __type(value, struct mount_call);
} mount_calls SEC(".maps");

static __always_inline int mount_enter(__u32 kind, __u64 source, __u64 target, __u64 fstype,
                                       __u64 flags) {
  if (needle_current_filtered()) {
    return 0;
  }
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  struct mount_call call = {
      .source = source, .target = target, .fstype = fstype, .flags = flags, .kind = kind};
  bpf_map_update_elem(&mount_calls, &tid, &call, BPF_ANY);
  return 0;
}

static __always_inline int mount_exit(__s64 ret) {
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  struct mount_call* call = bpf_map_lookup_elem(&mount_calls, &tid);
  if (!call) {
    return 0;
  }
  struct mount_record* rec = needle_reserve(sizeof(*rec));
  if (rec) {
    needle_fill_header(&rec->hdr, (__u16)call->kind, MOUNT_RECORD_VERSION, sizeof(*rec));
    rec->ret = ret;
    rec->flags = call->flags;
    rec->source[0] = 0;
    rec->target[0] = 0;
    rec->fstype[0] = 0;
    if (call->source) {
      bpf_probe_read_user_str(rec->source, sizeof(rec->source), (const void*)call->source);
    }
    if (call->target) {
      bpf_probe_read_user_str(rec->target, sizeof(rec->target), (const void*)call->target);
    }
    if (call->fstype) {
      bpf_probe_read_user_str(rec->fstype, sizeof(rec->fstype), (const void*)call->fstype);
    }
    needle_submit(rec);
  }
  bpf_map_delete_elem(&mount_calls, &tid);
  return 0;
}

SEC("?tracepoint/syscalls/sys_enter_mount")
int mounts_mount_enter_tp(struct mount_sys_enter* ctx) {
  /* mount(source, target, fstype, flags, data) */
  return mount_enter(MOUNT_KIND_MOUNT, ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("?tracepoint/syscalls/sys_exit_mount")
int mounts_mount_exit_tp(struct mount_sys_exit* ctx) {
  return mount_exit(ctx->ret);
}

SEC("?tracepoint/syscalls/sys_enter_umount")
int mounts_umount_enter_tp(struct mount_sys_enter* ctx) {
  /* umount2(target, flags) */
  return mount_enter(MOUNT_KIND_UMOUNT, 0, ctx->args[0], 0, ctx->args[1]);
}

SEC("?tracepoint/syscalls/sys_exit_umount")
int mounts_umount_exit_tp(struct mount_sys_exit* ctx) {
  return mount_exit(ctx->ret);
}
