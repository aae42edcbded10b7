// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Kernel side of the `container` source: the life of the cgroups container runtimes make.
 *
 * Every runtime (runc, crun, and so through containerd-shim, conmon, dockerd, CRI-O) puts each
 * container in a cgroup of its own, named after the container id. The cgroup tracepoints report
 * its creation (mkdir, by the runtime), the moment its last task is gone (notify_populated with
 * val 0, from that exiting task: the container's end) and its removal (rmdir, at cleanup). They
 * need no kprobe and cost nothing between these rare events. Each hook has a program per rung
 * (tp_btf, raw_tp, tp), all optional sections: needle autoloads only the rung it tries.
 *
 * Only the unified (v2) hierarchy is reported when `unified_only` is set (the plugin sets it when
 * cgroup2 is mounted: runtimes create every container's cgroup there too, and its ids are the ones
 * process events carry); otherwise every v1 hierarchy's events come, and user space keeps the
 * first of each container. Root cgroups (level 0) and populated=1 transitions are not reported. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "container_record.h"
#include "needle/bpf/needle.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define CONTAINER_RECORD_MAX (sizeof(struct container_cgroup_record) + CONTAINER_PATH_MAX)

_Static_assert(sizeof(struct container_cgroup_record) == 112, "container_cgroup_record layout");

/* Set by the plugin before load: 1 when cgroup2 is mounted. */
NEEDLE_CONFIG(__u32, unified_only, 1);

/* Emits one record. `path` is a kernel string (tp_btf, raw_tp) or, with `path_in_ctx`, the
 * __data_loc string inside the classic tracepoint's record. */
static __always_inline int container_emit(__u16 kind, __u32 hierarchy, __u32 level, __u64 id,
                                          const char* path) {
  if (level == 0 || (unified_only && hierarchy != 0)) {
    return 0;
  }
  if (needle_current_filtered()) {
    return 0;
  }
  struct container_cgroup_record* rec = needle_reserve(CONTAINER_RECORD_MAX);
  if (!rec) {
    return 0;
  }
  char* dst = (char*)(rec + 1);
  long n = bpf_probe_read_kernel_str(dst, CONTAINER_PATH_MAX, path);
  __u32 len = n > 0 ? (__u32)n - 1 : 0;   /* without the NUL */
  __u32 flags = 0;
  if (n == CONTAINER_PATH_MAX) {
    flags |= CONTAINER_F_PATH_TRUNCATED;   /* filled the buffer: perhaps cut */
  }
  needle_fill_header(&rec->hdr, kind, CONTAINER_RECORD_VERSION,
                     sizeof(*rec) + (len & (CONTAINER_PATH_MAX - 1)));
  rec->cgroup_id = id;
  rec->hierarchy = hierarchy;
  rec->level = level;
  rec->path_len = len & (CONTAINER_PATH_MAX - 1);
  rec->flags = flags;
  needle_submit(rec);
  return 0;
}

static __always_inline int container_from_cgroup(__u16 kind, struct cgroup* cgrp,
                                                 const char* path) {
  __u32 hierarchy = BPF_CORE_READ(cgrp, root, hierarchy_id);
  __u32 level = BPF_CORE_READ(cgrp, level);
  __u64 id = BPF_CORE_READ(cgrp, kn, id);
  return container_emit(kind, hierarchy, level, id, path);
}

static __always_inline const char* container_tp_path(void* ctx, __u32 data_loc) {
  return (const char*)ctx + (data_loc & 0xffff);
}

/* ---- mkdir ---------------------------------------------------------------------------------- */

SEC("?tp_btf/cgroup_mkdir")
int BPF_PROG(container_mkdir_tp_btf, struct cgroup* cgrp, const char* path) {
  return container_from_cgroup(CONTAINER_KIND_MKDIR, cgrp, path);
}

SEC("?raw_tp/cgroup_mkdir")
int BPF_PROG(container_mkdir_raw_tp, struct cgroup* cgrp, const char* path) {
  return container_from_cgroup(CONTAINER_KIND_MKDIR, cgrp, path);
}

SEC("?tp/cgroup/cgroup_mkdir")
int container_mkdir_tp(struct trace_event_raw_cgroup* ctx) {
  return container_emit(CONTAINER_KIND_MKDIR, ctx->root, ctx->level, ctx->id,
                        container_tp_path(ctx, ctx->__data_loc_path));
}

/* ---- rmdir ---------------------------------------------------------------------------------- */

SEC("?tp_btf/cgroup_rmdir")
int BPF_PROG(container_rmdir_tp_btf, struct cgroup* cgrp, const char* path) {
  return container_from_cgroup(CONTAINER_KIND_RMDIR, cgrp, path);
}

SEC("?raw_tp/cgroup_rmdir")
int BPF_PROG(container_rmdir_raw_tp, struct cgroup* cgrp, const char* path) {
  return container_from_cgroup(CONTAINER_KIND_RMDIR, cgrp, path);
}

SEC("?tp/cgroup/cgroup_rmdir")
int container_rmdir_tp(struct trace_event_raw_cgroup* ctx) {
  return container_emit(CONTAINER_KIND_RMDIR, ctx->root, ctx->level, ctx->id,
                        container_tp_path(ctx, ctx->__data_loc_path));
}

/* ---- emptied: populated -> 0 --------------------------------------------------------------- */

SEC("?tp_btf/cgroup_notify_populated")
int BPF_PROG(container_emptied_tp_btf, struct cgroup* cgrp, const char* path, int val) {
  if (val != 0) {
    return 0;
  }
  return container_from_cgroup(CONTAINER_KIND_EMPTIED, cgrp, path);
}

SEC("?raw_tp/cgroup_notify_populated")
int BPF_PROG(container_emptied_raw_tp, struct cgroup* cgrp, const char* path, int val) {
  if (val != 0) {
    return 0;
  }
  return container_from_cgroup(CONTAINER_KIND_EMPTIED, cgrp, path);
}

SEC("?tp/cgroup/cgroup_notify_populated")
int container_emptied_tp(struct trace_event_raw_cgroup_event* ctx) {
  if (ctx->val != 0) {
    return 0;
  }
  return container_emit(CONTAINER_KIND_EMPTIED, ctx->root, ctx->level, ctx->id,
                        container_tp_path(ctx, ctx->__data_loc_path));
}
