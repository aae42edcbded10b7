/* Kernel side of the Needle SDK: include after vmlinux.h and the libbpf headers.
 *
 * Gives every source object the maps it shares with needle (the one ring buffer, the per-CPU
 * drop counters, the filters), the globals needle sets before load, the task-context helper and
 * the batched submit. needle creates the shared maps once and reuses them in every object, so
 * records of all sources keep one order. */
#ifndef NEEDLE_BPF_NEEDLE_BPF_H
#define NEEDLE_BPF_NEEDLE_BPF_H

#include "needle/bpf/record.h"

#ifndef NEEDLE_MAX_SOURCES
#define NEEDLE_MAX_SOURCES 64
#endif

/* A config global: `NEEDLE_CONFIG(__u32, max_args, 32);` declares a `const volatile` that the
 * plugin sets with host->bpf_set_global before load (the verifier then prunes dead branches). */
#define NEEDLE_CONFIG(type, name, value) const volatile type name = value

/* bpf_rdonly_cast (Linux 6.2+) gives a plain kernel pointer (read from memory, or a scalar such
 * as a file from the fd table) its BTF type, so that its fields load directly (a few nanoseconds)
 * instead of through bpf_probe_read_kernel (tens each). Declared weak: an object that mentions it
 * still loads on a kernel without it, where only the programs that call it are refused. Call it
 * only through NEEDLE_TYPED, in programs of a "+typed" rung (NEEDLE_SYS_EXIT_HANDLER_TYPED), so
 * that the plain rung below each of them remains for older kernels. */
extern void* bpf_rdonly_cast(const void* obj, __u32 btf_id) __ksym __weak;

/* `ptr` as a `struct type*` whose fields load directly (read-only; a bad pointer reads as 0). */
#define NEEDLE_TYPED(type, ptr) \
  ((struct type*)bpf_rdonly_cast((const void*)(ptr), bpf_core_type_id_kernel(struct type)))

/* Set by needle before load. */
NEEDLE_CONFIG(__u32, needle_source_index, 0);
NEEDLE_CONFIG(__u32, needle_self_tgid, 0);
NEEDLE_CONFIG(__u64, needle_wakeup_bytes, 65536);   /* force a wakeup past this much unread data */
NEEDLE_CONFIG(__u32, needle_filter_exe_on, 0);
NEEDLE_CONFIG(__u32, needle_filter_cgroup_on, 0);

/* The one ring buffer (needle sizes it and reuses its fd in every object). */
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 4096 * 64);
} needle_ring SEC(".maps");

/* Records lost because the ring was full, per source index and CPU. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, NEEDLE_MAX_SOURCES);
  __type(key, __u32);
  __type(value, __u64);
} needle_drops SEC(".maps");

struct needle_exe_key {
  __u64 dev;           /* kernel encoding of the superblock's s_dev */
  __u64 ino;
};

/* exclude_exe: executables whose processes are not reported. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, struct needle_exe_key);
  __type(value, __u8);
} needle_filter_exe SEC(".maps");

/* exclude_cgroups: cgroup v2 ids whose processes are not reported. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, __u64);
  __type(value, __u8);
} needle_filter_cgroup SEC(".maps");

static __always_inline void needle_count_drop(void) {
  __u32 key = needle_source_index;
  __u64* count = bpf_map_lookup_elem(&needle_drops, &key);
  if (count) {
    *count += 1;
  }
}

/* The exclusions after the own-tgid test, for a task that is not needle. */
static __always_inline int needle_task_excluded(struct task_struct* task) {
  if (needle_filter_cgroup_on) {
    /* The task's own cgroup, not current's: the snapshot iterator runs in needle's context. */
    __u64 cg = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
    if (bpf_map_lookup_elem(&needle_filter_cgroup, &cg)) {
      return 1;
    }
  }
  if (needle_filter_exe_on) {
    struct needle_exe_key key = {};
    struct file* exe = BPF_CORE_READ(task, mm, exe_file);
    if (exe) {
      key.dev = BPF_CORE_READ(exe, f_inode, i_sb, s_dev);
      key.ino = BPF_CORE_READ(exe, f_inode, i_ino);
      if (bpf_map_lookup_elem(&needle_filter_exe, &key)) {
        return 1;
      }
    }
  }
  return 0;
}

/* True when events of `task` must not be reported: needle itself or a configured exclusion.
 * Call before reserving ring space. `task` may be any kernel pointer (read with CO-RE). */
static __always_inline int needle_task_filtered(struct task_struct* task) {
  if (BPF_CORE_READ(task, tgid) == needle_self_tgid) {
    return 1;
  }
  return needle_task_excluded(task);
}

/* The file behind `fd` in the current task's table (what the kernel resolved for a returned or
 * passed fd, not the caller's pointer), as a plain pointer (0 when none). The table is reached
 * with direct loads through the task's BTF pointer, which costs a few nanoseconds where each
 * bpf_probe_read_kernel costs tens; a global function, so the verifier checks those loads once
 * per program rather than along every path to each call (each pointer a direct load yields
 * costs it a search of the kernel's BTF). */
__attribute__((noinline)) __u64 needle_current_fd_file(int fd) {
  if (fd < 0) {
    return 0;
  }
  struct task_struct* task = bpf_get_current_task_btf();
  struct fdtable* fdt = task->files->fdt;
  if (!fdt || (unsigned int)fd >= fdt->max_fds) {
    return 0;
  }
  struct file** fds = fdt->fd;
  struct file* file = NULL;
  bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
  return (__u64)file;
}

/* needle_current_fd_file as a pointer. */
static __always_inline struct file* needle_current_file(int fd) {
  return (struct file*)needle_current_fd_file(fd);
}

/* The file behind `fd` in any task's table (`task` may be any kernel pointer: read with CO-RE,
 * a few bpf_probe_read_kernel calls). For the current task, needle_current_file is cheaper. */
static __always_inline struct file* needle_file_from_fd(struct task_struct* task, int fd) {
  if (fd < 0) {
    return NULL;
  }
  struct fdtable* fdt = BPF_CORE_READ(task, files, fdt);
  if (!fdt || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds)) {
    return NULL;
  }
  struct file** fds = BPF_CORE_READ(fdt, fd);
  struct file* file = NULL;
  bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
  return file;
}

/* needle_task_filtered with its own-tgid test through NEEDLE_TYPED when `typed` (a program of a
 * "+typed" rung); the exclusions, when configured, read with CO-RE. */
static __always_inline int needle_task_filtered_typed(struct task_struct* task, const int typed) {
  if (!typed) {
    return needle_task_filtered(task);
  }
  if (NEEDLE_TYPED(task_struct, task)->tgid == needle_self_tgid) {
    return 1;
  }
  return needle_task_excluded(task);
}

/* needle_task_filtered for the current task, with direct loads. */
static __always_inline int needle_current_filtered(void) {
  struct task_struct* task = bpf_get_current_task_btf();
  if (task->tgid == needle_self_tgid) {
    return 1;
  }
  return needle_task_excluded(task);
}

/* Fills the task context of `task` (usually the current task). */
static __always_inline void needle_fill_task_ctx(struct needle_task_ctx* ctx,
                                                 struct task_struct* task) {
  struct task_struct* leader = BPF_CORE_READ(task, group_leader);
  ctx->tgid = BPF_CORE_READ(task, tgid);
  ctx->pid = BPF_CORE_READ(task, pid);
  ctx->ppid = BPF_CORE_READ(task, real_parent, tgid);
  ctx->uid = BPF_CORE_READ(task, cred, uid.val);
  ctx->gid = BPF_CORE_READ(task, cred, gid.val);
  ctx->euid = BPF_CORE_READ(task, cred, euid.val);
  /* The pid as seen in the task's own namespace: the last level of its struct pid. */
  {
    struct pid* tp = BPF_CORE_READ(task, thread_pid);
    unsigned int level = BPF_CORE_READ(tp, level);
    ctx->vpid = BPF_CORE_READ(tp, numbers[level & 7].nr);
    struct pid* lp = BPF_CORE_READ(leader, thread_pid);
    unsigned int llevel = BPF_CORE_READ(lp, level);
    ctx->vtgid = BPF_CORE_READ(lp, numbers[llevel & 7].nr);
  }
  ctx->cgroup_id = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
  ctx->start_ns = BPF_CORE_READ(leader, start_boottime);
  BPF_CORE_READ_STR_INTO(&ctx->comm, task, comm);
}

/* The task context of `task`, a pointer whose fields load directly (a BTF pointer: current's from
 * bpf_get_current_task_btf, a tp_btf argument, or one typed with NEEDLE_TYPED). Only the
 * pid-namespace numbers of a task below the root namespace still go through helpers. */
static __always_inline void needle_fill_ctx_direct(struct needle_task_ctx* ctx,
                                                   struct task_struct* task) {
  struct task_struct* leader = task->group_leader;
  ctx->tgid = task->tgid;
  ctx->pid = task->pid;
  ctx->ppid = task->real_parent->tgid;
  const struct cred* cred = task->cred;
  ctx->uid = cred->uid.val;
  ctx->gid = cred->gid.val;
  ctx->euid = cred->euid.val;
  /* numbers[level] needs a variable offset, which direct loads cannot take; at level 0 (the
   * root namespace) it is the global number. */
  struct pid* tp = task->thread_pid;
  if (tp->level == 0) {
    ctx->vpid = ctx->pid;
  } else {
    struct pid* tpc = BPF_CORE_READ(task, thread_pid);
    unsigned int level = BPF_CORE_READ(tpc, level);
    ctx->vpid = BPF_CORE_READ(tpc, numbers[level & 7].nr);
  }
  struct pid* lp = leader->thread_pid;
  if (lp->level == 0) {
    ctx->vtgid = ctx->tgid;
  } else {
    struct pid* lpc = BPF_CORE_READ(task, group_leader, thread_pid);
    unsigned int llevel = BPF_CORE_READ(lpc, level);
    ctx->vtgid = BPF_CORE_READ(lpc, numbers[llevel & 7].nr);
  }
  ctx->cgroup_id = task->cgroups->dfl_cgrp->kn->id;
  ctx->start_ns = leader->start_boottime;
  /* The kernel keeps comm NUL-padded (strscpy_pad): two direct loads copy it whole. */
  _Static_assert(sizeof(ctx->comm) == 16, "comm is two words");
  if (bpf_core_field_size(struct task_struct, comm) == 16) {
    const __u64* words = (const __u64*)task->comm;
    __u64 w0 = words[0];
    __u64 w1 = words[1];
    __builtin_memcpy(ctx->comm, &w0, 8);
    __builtin_memcpy(ctx->comm + 8, &w1, 8);
  } else {
    bpf_probe_read_kernel_str(&ctx->comm, sizeof(ctx->comm), task->comm);
  }
}

/* needle_fill_task_ctx for the current task, with direct loads through its BTF pointer: every
 * record's header has one, and the CO-RE reads above cost about 20 bpf_probe_read_kernel calls.
 * A global function: the verifier checks it once per program, where inlined at every call site
 * each direct load's BTF walk was repeated along every path (it doubled the file source's load
 * time). */
__attribute__((noinline)) int needle_fill_current_ctx(struct needle_task_ctx* ctx) {
  if (!ctx) {
    return 0;
  }
  needle_fill_ctx_direct(ctx, bpf_get_current_task_btf());
  return 0;
}

/* needle_fill_task_ctx for any task (a forked child, a tracepoint's argument) with direct loads
 * through NEEDLE_TYPED: call it only from programs of a "+typed" rung. Inlined: a global
 * function cannot take a BTF pointer as an argument before Linux 6.8 (__arg_trusted), and a
 * program has few call sites of it. */
static __always_inline void needle_fill_task_ctx_typed(struct needle_task_ctx* ctx,
                                                       struct task_struct* task) {
  needle_fill_ctx_direct(ctx, NEEDLE_TYPED(task_struct, task));
}

/* Fills the common header of a reserved record for the current task. */
static __always_inline void needle_fill_header(struct needle_record_header* hdr, __u16 kind,
                                               __u16 version, __u32 size) {
  hdr->kind = kind;
  hdr->version = version;
  hdr->size = size;
  hdr->boot_ns = bpf_ktime_get_boot_ns();
  hdr->source = needle_source_index;
  hdr->cpu = bpf_get_smp_processor_id();
  needle_fill_current_ctx(&hdr->task);
}

/* Reserves `size` bytes in the ring; counts a drop (signalled as needle.gap) when full. */
static __always_inline void* needle_reserve(__u64 size) {
  void* rec = bpf_ringbuf_reserve(&needle_ring, size, 0);
  if (!rec) {
    needle_count_drop();
  }
  return rec;
}

/* The wakeup flag for a record of `size` bytes, given how much unread data the ring holds with it
 * (`avail`): wake the reader only when this record carries the unread data across
 * needle_wakeup_bytes. Above the mark the reader is awake already (or its ring_flush_ms timer
 * fires), so waking it again per record would cost an IPI each (a VM exit on a guest). */
static __always_inline __u64 needle_wakeup_flags(__u64 avail, __u64 size) {
  return (avail >= needle_wakeup_bytes && avail - size < needle_wakeup_bytes)
             ? BPF_RB_FORCE_WAKEUP
             : BPF_RB_NO_WAKEUP;
}

/* Submits a record reserved with needle_reserve (it starts with needle_record_header). */
static __always_inline void needle_submit(void* rec) {
  __u64 size = ((struct needle_record_header*)rec)->size;
  __u64 avail = bpf_ringbuf_query(&needle_ring, BPF_RB_AVAIL_DATA);
  bpf_ringbuf_submit(rec, needle_wakeup_flags(avail, size));
}

/* For variable-size records built in a per-CPU scratch buffer: copies `size` bytes and counts a
 * drop when the ring is full. */
static __always_inline int needle_output(void* data, __u64 size) {
  __u64 avail = bpf_ringbuf_query(&needle_ring, BPF_RB_AVAIL_DATA) + size;
  long err = bpf_ringbuf_output(&needle_ring, data, size, needle_wakeup_flags(avail, size));
  if (err) {
    needle_count_drop();
  }
  return (int)err;
}

#endif /* NEEDLE_BPF_NEEDLE_BPF_H */
