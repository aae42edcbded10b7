/* The ring record of the example `mounts` source, shared by mount.bpf.c (clang -target bpf,
 * with vmlinux.h) and mounts_source.cc. Fixed widths and explicit sizes only; the C++ side checks
 * the layout with static_assert. Append-only: a new field goes at the end with a version bump. */
#ifndef NEEDLE_EXAMPLE_MOUNT_RECORD_H
#define NEEDLE_EXAMPLE_MOUNT_RECORD_H

#include "needle/bpf/record.h"

#define MOUNT_RECORD_VERSION 1

/* Record kinds (needle_record_header.kind), scoped to this source; never reused. */
#define MOUNT_KIND_MOUNT 1  /* mount(2) */
#define MOUNT_KIND_UMOUNT 2 /* umount2(2) */

#define MOUNT_PATH_LEN 256 /* source and target, NUL-terminated, cut to fit */
#define MOUNT_FSTYPE_LEN 32

struct mount_record {
  struct needle_record_header hdr;
  __s64 ret;                     /* the call's result: 0, or -errno */
  __u64 flags;                   /* MS_* for mount, MNT_* / UMOUNT_* for umount2 */
  char source[MOUNT_PATH_LEN];   /* mount only: the device or source ("" when NULL) */
  char target[MOUNT_PATH_LEN];   /* as the caller wrote it (a user string: may be relative) */
  char fstype[MOUNT_FSTYPE_LEN]; /* mount only */
};

#define MOUNT_RECORD_SIZE (NEEDLE_RECORD_HEADER_SIZE + 16 + 2 * MOUNT_PATH_LEN + MOUNT_FSTYPE_LEN)

#endif /* NEEDLE_EXAMPLE_MOUNT_RECORD_H */
