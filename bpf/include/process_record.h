/* Ring records of the `process` source (bpf/process.bpf.c -> plugins/sources/process/decode.cc).
 *
 * Every record starts with the SDK's common header; `hdr.kind` is one of PROCESS_KIND_*,
 * `hdr.version` is PROCESS_RECORD_VERSION and `hdr.size` is the total size in bytes, variable
 * part included. Fixed widths and explicit padding only; decode.cc checks the layout with
 * static_assert. Kinds are append-only and never reused; a layout change bumps the version.
 *
 * Variable-size records (exec, fork, snapshot) are a fixed part followed by byte strings in the
 * order their lengths appear in the fixed part, with no terminators and no padding between them:
 *
 *   exec, snapshot:  struct process_exec_record | exe | script | cwd | args
 *   fork:            struct process_fork_record | exe
 *   exit:            struct process_exit_record (fixed size)
 *
 * `args` is the argument block as the process has it: each argument followed by a NUL. The last
 * argument may lack its NUL when PROCESS_F_ARGS_TRUNCATED cut it short. */
#ifndef NEEDLE_PROCESS_RECORD_H
#define NEEDLE_PROCESS_RECORD_H

#include "needle/bpf/record.h"

#define PROCESS_RECORD_VERSION 1

#define PROCESS_KIND_EXEC 1
#define PROCESS_KIND_FORK 2
#define PROCESS_KIND_EXIT 3
#define PROCESS_KIND_SNAPSHOT 4

/* Bounds of the variable parts. A path is at most PROCESS_PATH_MAX - 1 bytes (the kernel's
 * PATH_MAX counts the NUL); the argument block at most PROCESS_ARGS_MAX bytes (the upper bound
 * of the max_arg_bytes key). A snapshot record must fit the task iterator's 32 KiB seq buffer:
 * 128 + 3 * 4095 + 16384 = 28797 bytes at most. */
#define PROCESS_PATH_MAX 4096
#define PROCESS_ARGS_MAX 16384

/* process_exec_record.flags and process_fork_record.flags */
#define PROCESS_F_EXE_TRUNCATED (1u << 0)     /* exe is the tail of a longer/deeper path */
#define PROCESS_F_SCRIPT_TRUNCATED (1u << 1)
#define PROCESS_F_CWD_TRUNCATED (1u << 2)
#define PROCESS_F_ARGS_TRUNCATED (1u << 3)    /* max_args or max_arg_bytes cut the arguments */
#define PROCESS_F_ARGS_PRESENT (1u << 4)      /* args were captured (may still be empty) */
#define PROCESS_F_EXE_MEMFD (1u << 5)         /* exe is a memfd (fileless) */
#define PROCESS_F_EXE_DELETED (1u << 6)       /* exe has no link left (fileless) */
#define PROCESS_F_SCRIPT_FROM_USER (1u << 7)  /* script is the exec's filename string, not a file */
#define PROCESS_F_CWD_PRESENT (1u << 8)       /* cwd was resolved (a kernel thread has none) */

/* process.exec and process.snapshot: the task context in hdr is the task that exec'd (exec) or
 * the iterated thread-group leader (snapshot). */
struct process_exec_record {
  struct needle_record_header hdr;
  __u64 exe_ino;        /* inode number of the executable, 0 when the task has none */
  __u64 exe_dev;        /* kernel encoding of its superblock's s_dev (major << 20 | minor) */
  __u32 flags;          /* PROCESS_F_* */
  __u32 exe_len;        /* bytes of exe after the fixed part */
  __u32 script_len;     /* then script (0: no interpreter involved or not known on this rung) */
  __u32 cwd_len;        /* then cwd */
  __u32 args_len;       /* then the argument block */
  __u32 reserved;       /* 0 */
};

/* process.fork: the task context in hdr describes the CHILD (its tgid, pid, ppid, start time);
 * only new thread groups are reported. */
struct process_fork_record {
  struct needle_record_header hdr;
  __u64 exe_ino;
  __u64 exe_dev;
  __u32 flags;          /* PROCESS_F_EXE_* */
  __u32 exe_len;        /* bytes of exe after the fixed part */
};

/* process.exit: once per thread group, from its last exiting thread. */
struct process_exit_record {
  struct needle_record_header hdr;
  __u32 status;         /* wait(2) status: exit code << 8, or signal | 0x80 when core dumped */
  __u32 reserved;       /* 0 */
};

#endif /* NEEDLE_PROCESS_RECORD_H */
