/* The common record header every ring record starts with. Shared by BPF programs (clang -target
 * bpf, with vmlinux.h) and user space (C or C++). Fixed widths and explicit padding only; the C++
 * side checks the layout with static_assert (sdk/include/needle/record.h). */
#ifndef NEEDLE_BPF_RECORD_H
#define NEEDLE_BPF_RECORD_H

#ifdef __BPF__
/* vmlinux.h provides __u8 .. __u64. */
#else
#include <linux/types.h>
#endif

#define NEEDLE_COMM_LEN 16

/* The process context of the task that caused a record, filled by needle_fill_task(). */
struct needle_task_ctx {
  __u32 tgid;          /* initial PID namespace */
  __u32 pid;           /* thread id, initial PID namespace */
  __u32 ppid;          /* real parent's tgid */
  __u32 uid;
  __u32 gid;
  __u32 euid;
  __u32 vtgid;         /* tgid in the task's own PID namespace */
  __u32 vpid;
  __u64 cgroup_id;     /* cgroup v2 id */
  __u64 start_ns;      /* group leader's start, boot clock (task->group_leader->start_boottime) */
  char comm[NEEDLE_COMM_LEN];
};

struct needle_record_header {
  __u16 kind;          /* scoped to its source; append-only, never reused */
  __u16 version;       /* payload layout version */
  __u32 size;          /* header + payload bytes */
  __u64 boot_ns;       /* bpf_ktime_get_boot_ns() */
  __u32 source;        /* index the core assigned at load (needle_source_index) */
  __u32 cpu;
  struct needle_task_ctx task;
};

#define NEEDLE_RECORD_HEADER_SIZE 88

#endif /* NEEDLE_BPF_RECORD_H */
