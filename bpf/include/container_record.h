/* Ring records of the `container` source (bpf/container.bpf.c ->
 * plugins/sources/container/decode.cc).
 *
 * One record per cgroup life event the kernel reports through its cgroup tracepoints:
 *
 *   struct container_cgroup_record | path (path_len bytes, no NUL)
 *
 * `path` is the cgroup's path from the root of its hierarchy ("/libpod_parent/libpod-<id>"); the
 * container id is parsed from it in user space (needle/cgroup_path.h). `hdr.task` is the task
 * that caused the event: the runtime for mkdir and rmdir, the container's last task for
 * CONTAINER_KIND_EMPTIED. Fixed widths and explicit padding only; decode.cc checks the layout
 * with static_assert. Kinds are append-only and never reused; a layout change bumps the
 * version. */
#ifndef NEEDLE_CONTAINER_RECORD_H
#define NEEDLE_CONTAINER_RECORD_H

#include "needle/bpf/record.h"

#define CONTAINER_RECORD_VERSION 1

#define CONTAINER_KIND_MKDIR 1     /* cgroup:cgroup_mkdir */
#define CONTAINER_KIND_RMDIR 2     /* cgroup:cgroup_rmdir */
#define CONTAINER_KIND_EMPTIED 3   /* cgroup:cgroup_notify_populated with val 0: no task left */

/* Bytes of path kept (a power of two); a longer path keeps its start and sets
 * CONTAINER_F_PATH_TRUNCATED. */
#define CONTAINER_PATH_MAX 4096

#define CONTAINER_F_PATH_TRUNCATED (1u << 0)

struct container_cgroup_record {
  struct needle_record_header hdr;
  __u64 cgroup_id;      /* the cgroup's id in its hierarchy (for the unified one: the id
                           processes report as process.cgroup_id) */
  __u32 hierarchy;      /* hierarchy id as in /proc/<pid>/cgroup; 0 is the unified (v2) one */
  __u32 level;          /* depth below the hierarchy's root */
  __u32 path_len;       /* bytes of path after the fixed part */
  __u32 flags;          /* CONTAINER_F_* */
};

#endif /* NEEDLE_CONTAINER_RECORD_H */
