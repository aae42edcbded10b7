/* Ring records of the `file` source (bpf/file.bpf.c -> plugins/sources/file). Shared by the BPF
 * program and the plugin's decoder: fixed widths, explicit padding, checked on both sides. */
#ifndef NEEDLE_FILE_RECORD_H
#define NEEDLE_FILE_RECORD_H

#include "needle/bpf/record.h"

#define FILE_RECORD_VERSION 1

/* Record kinds (append-only, never reused). */
#define FILE_KIND_OPEN 1        /* file.open, or file.create with FILE_F_CREATED */
#define FILE_KIND_UNLINK 2
#define FILE_KIND_RENAME 3
#define FILE_KIND_CHMOD 4
#define FILE_KIND_CHOWN 5
#define FILE_KIND_LINK 6
#define FILE_KIND_SYMLINK 7
#define FILE_KIND_CALIBRATION 8 /* the FMODE_CREATED calibration's result; no event */

/* file_record.flags */
#define FILE_F_CREATED (1u << 0)          /* the open created the file (FMODE_CREATED) */
#define FILE_F_PATH_FROM_USER (1u << 1)   /* path: the caller's string joined to dirfd/cwd */
#define FILE_F_PATH_TRUNCATED (1u << 2)
#define FILE_F_NEW_PATH_FROM_USER (1u << 3)
#define FILE_F_NEW_PATH_TRUNCATED (1u << 4)
#define FILE_F_HAS_INODE (1u << 5)        /* ino/dev/mode are the kernel object's */
#define FILE_F_CREATE_UNKNOWN (1u << 6)   /* open: FMODE_CREATED not calibrated (yet) */
#define FILE_F_CALIBRATION_FAILED (1u << 7) /* calibration record: no single bit found */
#define FILE_F_UID (1u << 8)              /* chown: uid is set (not "unchanged") */
#define FILE_F_GID (1u << 9)              /* chown: gid is set */

/* file_record.route */
#define FILE_ROUTE_SYSCALL 0    /* `syscall` is the number in `abi` */
#define FILE_ROUTE_IO_URING 1   /* `syscall` is the IORING_OP_* opcode */

/* `paths` and `exclude_paths` limits (kernel-side prefix tables). */
#define FILE_PREFIX_MAX 8
#define FILE_PREFIX_LEN 256     /* including the NUL */

/* Each path is at most FILE_PATH_MAX - 1 bytes: a directory resolved in the kernel (at most
 * NEEDLE_PATH_MAX - 1), "/" and the caller's string (at most NEEDLE_PATH_MAX - 1). */
#define FILE_PATH_MAX 8192

/* One record: the header, this fixed part, then `path_len` bytes of path and `new_path_len`
 * bytes of new path (no NULs). */
struct file_record {
  struct needle_record_header hdr;
  __u32 flags;         /* FILE_F_* */
  __u32 op_flags;      /* open: O_* flags; unlink: AT_REMOVEDIR; rename: RENAME_*; link and
                        * chmod/chown: AT_* flags; calibration: the FMODE_CREATED mask */
  __u32 mode;          /* open with FILE_F_HAS_INODE: the inode's i_mode; chmod: the new mode;
                        * open of a created file: the creation mode argument */
  __u32 uid;           /* chown: the new owner (FILE_F_UID) */
  __u32 gid;           /* chown: the new group (FILE_F_GID) */
  __u16 path_len;
  __u16 new_path_len;
  __u16 syscall;       /* see route */
  __u8 abi;            /* NEEDLE_SYSCALL_NATIVE or NEEDLE_SYSCALL_COMPAT (route syscall) */
  __u8 route;          /* FILE_ROUTE_* */
  __u32 reserved;
  __u64 ino;           /* FILE_F_HAS_INODE */
  __u64 dev;           /* the superblock's s_dev, kernel encoding (major << 20 | minor) */
};

#define FILE_RECORD_FIXED_SIZE 136

/* Syscall numbers of the routes the source handles, per ABI (x86_64, ia32). The plugin checks
 * them against the system headers; the kernel side picks argument positions with them. */
#define FILE_NR64_OPEN 2
#define FILE_NR64_CREAT 85
#define FILE_NR64_OPENAT 257
#define FILE_NR64_OPENAT2 437
#define FILE_NR64_OPEN_BY_HANDLE_AT 304
#define FILE_NR64_RENAME 82
#define FILE_NR64_RENAMEAT 264
#define FILE_NR64_RENAMEAT2 316
#define FILE_NR64_UNLINK 87
#define FILE_NR64_UNLINKAT 263
#define FILE_NR64_RMDIR 84
#define FILE_NR64_CHMOD 90
#define FILE_NR64_FCHMOD 91
#define FILE_NR64_FCHMODAT 268
#define FILE_NR64_FCHMODAT2 452
#define FILE_NR64_CHOWN 92
#define FILE_NR64_FCHOWN 93
#define FILE_NR64_LCHOWN 94
#define FILE_NR64_FCHOWNAT 260
#define FILE_NR64_LINK 86
#define FILE_NR64_LINKAT 265
#define FILE_NR64_SYMLINK 88
#define FILE_NR64_SYMLINKAT 266

#define FILE_NR32_OPEN 5
#define FILE_NR32_CREAT 8
#define FILE_NR32_OPENAT 295
#define FILE_NR32_OPENAT2 437
#define FILE_NR32_OPEN_BY_HANDLE_AT 342
#define FILE_NR32_RENAME 38
#define FILE_NR32_RENAMEAT 302
#define FILE_NR32_RENAMEAT2 353
#define FILE_NR32_UNLINK 10
#define FILE_NR32_UNLINKAT 301
#define FILE_NR32_RMDIR 40
#define FILE_NR32_CHMOD 15
#define FILE_NR32_FCHMOD 94
#define FILE_NR32_FCHMODAT 306
#define FILE_NR32_FCHMODAT2 452
#define FILE_NR32_CHOWN16 182   /* 16-bit ids: 0xffff is "unchanged" */
#define FILE_NR32_FCHOWN16 95
#define FILE_NR32_LCHOWN16 16
#define FILE_NR32_CHOWN 212     /* chown32 */
#define FILE_NR32_FCHOWN 207    /* fchown32 */
#define FILE_NR32_LCHOWN 198    /* lchown32 */
#define FILE_NR32_FCHOWNAT 298
#define FILE_NR32_LINK 9
#define FILE_NR32_LINKAT 303
#define FILE_NR32_SYMLINK 83
#define FILE_NR32_SYMLINKAT 304

/* io_uring opcodes (include/uapi/linux/io_uring.h) */
#define FILE_IORING_OP_OPENAT 18
#define FILE_IORING_OP_OPENAT2 28
#define FILE_IORING_OP_RENAMEAT 35
#define FILE_IORING_OP_UNLINKAT 36
#define FILE_IORING_OP_SYMLINKAT 38
#define FILE_IORING_OP_LINKAT 39

#endif /* NEEDLE_FILE_RECORD_H */
