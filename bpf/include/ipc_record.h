/* Ring records of the `ipc` source (bpf/ipc.bpf.c -> plugins/sources/ipc). Shared by the BPF
 * program and the plugin's decoder: fixed widths, explicit padding, checked on both sides. */
#ifndef NEEDLE_IPC_RECORD_H
#define NEEDLE_IPC_RECORD_H

#include "needle/bpf/record.h"

#define IPC_RECORD_VERSION 1

/* Record kinds (append-only, never reused). */
#define IPC_KIND_PTRACE 1
#define IPC_KIND_PROCESS_VM 2
#define IPC_KIND_MEMFD_CREATE 3
#define IPC_KIND_SIGNAL 4

/* ipc_record.flags */
#define IPC_F_TARGET (1u << 0)          /* target_pid is set */
#define IPC_F_TARGET_KERNEL (1u << 1)   /* target_pid comes from a kernel object (initial pid ns) */
#define IPC_F_NAME_TRUNCATED (1u << 2)

#define IPC_NAME_MAX 256

/* One fixed-size record. */
struct ipc_record {
  struct needle_record_header hdr;
  __u32 flags;         /* IPC_F_* */
  __s32 target_pid;    /* as the caller named it (its pid namespace), unless IPC_F_TARGET_KERNEL;
                        * kill/rt_sigqueueinfo: 0, -1 or -pgid for a group */
  __u64 arg;           /* ptrace: request; process_vm: 0 read, 1 write; memfd: MFD_* flags;
                        * signal: the signal number */
  __s64 ret;           /* the syscall's return value (process_vm: bytes moved) */
  __u16 syscall;       /* its number in `abi` */
  __u8 abi;            /* NEEDLE_SYSCALL_NATIVE or NEEDLE_SYSCALL_COMPAT */
  __u8 reserved;
  __u32 name_len;      /* memfd: bytes of name (without the kernel's "memfd:" prefix) */
  char name[IPC_NAME_MAX];
};

#define IPC_RECORD_SIZE 376

/* Syscall numbers, per ABI (x86_64, ia32); the plugin checks them against the system headers. */
#define IPC_NR64_PTRACE 101
#define IPC_NR64_PROCESS_VM_READV 310
#define IPC_NR64_PROCESS_VM_WRITEV 311
#define IPC_NR64_MEMFD_CREATE 319
#define IPC_NR64_KILL 62
#define IPC_NR64_TKILL 200
#define IPC_NR64_TGKILL 234
#define IPC_NR64_RT_SIGQUEUEINFO 129
#define IPC_NR64_RT_TGSIGQUEUEINFO 297
#define IPC_NR64_PIDFD_SEND_SIGNAL 424

#define IPC_NR32_PTRACE 26
#define IPC_NR32_PROCESS_VM_READV 347
#define IPC_NR32_PROCESS_VM_WRITEV 348
#define IPC_NR32_MEMFD_CREATE 356
#define IPC_NR32_KILL 37
#define IPC_NR32_TKILL 238
#define IPC_NR32_TGKILL 270
#define IPC_NR32_RT_SIGQUEUEINFO 178
#define IPC_NR32_RT_TGSIGQUEUEINFO 335
#define IPC_NR32_PIDFD_SEND_SIGNAL 424

#endif /* NEEDLE_IPC_RECORD_H */
