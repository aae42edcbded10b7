// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Kernel side of the `ipc` source: ptrace, process_vm_readv/writev, memfd_create and signals
 * sent to another process, as exit handlers of the shared syscall dispatcher
 * (needle/bpf/syscalls.h), in both ABIs. Only successful calls are reported. Record layout:
 * bpf/include/ipc_record.h. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "ipc_record.h"
#include "needle/bpf/needle.bpf.h"
#include "needle/bpf/syscalls.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

_Static_assert(sizeof(struct ipc_record) == IPC_RECORD_SIZE, "ipc_record layout");

/* Set by the plugin: report every ptrace request, not only those that attach or change the
 * tracee. */
NEEDLE_CONFIG(__u32, ptrace_all, 0);

#define IPC_PID_FS_MAGIC 0x50494446   /* pidfs (6.9+): the struct pid is the inode's i_private */

/* The caller's tgid / tid as its own pid namespace numbers them (what its arguments mean).
 * `pid` is a BTF pointer (reached from bpf_get_current_task_btf): in the root namespace the
 * number loads directly; numbers[level] below it needs a variable offset, read with CO-RE. */
static __always_inline __s32 ipc_vnr(struct pid* pid) {
  if (pid->level == 0) {
    return pid->numbers[0].nr;
  }
  unsigned int level = BPF_CORE_READ(pid, level);
  return BPF_CORE_READ(pid, numbers[level & 7].nr);
}

static __always_inline struct ipc_record* ipc_begin(__u16 kind, const struct needle_sys_args* sys,
                                                    long ret) {
  struct ipc_record* rec = needle_reserve(sizeof(*rec));
  if (!rec) {
    return NULL;
  }
  needle_fill_header(&rec->hdr, kind, IPC_RECORD_VERSION, sizeof(*rec));
  rec->flags = 0;
  rec->target_pid = 0;
  rec->arg = 0;
  rec->ret = ret;
  rec->syscall = (__u16)sys->nr;
  rec->abi = (__u8)sys->abi;
  rec->reserved = 0;
  rec->name_len = 0;
  rec->name[0] = 0;
  return rec;
}

/* ---- ptrace ----------------------------------------------------------------------------- */

/* Requests that attach, detach, kill or change the tracee (the default set). */
static __always_inline int ipc_ptrace_changes(__u64 request) {
  switch (request) {
    case 0:        /* PTRACE_TRACEME */
    case 4:        /* PTRACE_POKETEXT */
    case 5:        /* PTRACE_POKEDATA */
    case 6:        /* PTRACE_POKEUSR */
    case 8:        /* PTRACE_KILL */
    case 13:       /* PTRACE_SETREGS */
    case 15:       /* PTRACE_SETFPREGS */
    case 16:       /* PTRACE_ATTACH */
    case 17:       /* PTRACE_DETACH */
    case 19:       /* PTRACE_SETFPXREGS */
    case 0x4200:   /* PTRACE_SETOPTIONS */
    case 0x4203:   /* PTRACE_SETSIGINFO */
    case 0x4205:   /* PTRACE_SETREGSET */
    case 0x4206:   /* PTRACE_SEIZE */
    case 0x420b:   /* PTRACE_SECCOMP_GET_FILTER */
    case 0x4210:   /* PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG */
      return 1;
    default:
      return 0;
  }
}

NEEDLE_SYS_EXIT_HANDLER(ipc_ptrace_exit) {
  if (ret < 0) {
    return 0;
  }
  __u64 request = sys->args[0];
  if (sys->abi == NEEDLE_SYS_ABI_COMPAT) {
    request &= 0xffffffff;
  }
  if (!ptrace_all && !ipc_ptrace_changes(request)) {
    return 0;
  }
  if (needle_current_filtered()) {
    return 0;
  }
  struct ipc_record* rec = ipc_begin(IPC_KIND_PTRACE, sys, ret);
  if (!rec) {
    return 0;
  }
  rec->arg = request;
  rec->flags = IPC_F_TARGET;
  if (request == 0) {
    /* PTRACE_TRACEME: the tracer is the parent */
    struct task_struct* task = bpf_get_current_task_btf();
    rec->target_pid = BPF_CORE_READ(task, real_parent, tgid);
    rec->flags |= IPC_F_TARGET_KERNEL;
  } else {
    rec->target_pid = NEEDLE_SYS_INT(sys, 1);
  }
  needle_submit(rec);
  return 0;
}

/* ---- process_vm_readv / process_vm_writev ----------------------------------------------- */

NEEDLE_SYS_EXIT_HANDLER(ipc_process_vm_exit) {
  if (ret < 0 || needle_current_filtered()) {
    return 0;
  }
  struct ipc_record* rec = ipc_begin(IPC_KIND_PROCESS_VM, sys, ret);
  if (!rec) {
    return 0;
  }
  int write = sys->nr == (sys->abi == NEEDLE_SYS_ABI_NATIVE ? IPC_NR64_PROCESS_VM_WRITEV
                                                           : IPC_NR32_PROCESS_VM_WRITEV);
  rec->arg = write ? 1 : 0;
  rec->flags = IPC_F_TARGET;
  rec->target_pid = NEEDLE_SYS_INT(sys, 0);
  needle_submit(rec);
  return 0;
}

/* ---- memfd_create ----------------------------------------------------------------------- */

/* The name comes from the new file's dentry ("memfd:<name>"), not from the caller's buffer. */
NEEDLE_SYS_EXIT_HANDLER(ipc_memfd_exit) {
  if (ret < 0 || needle_current_filtered()) {
    return 0;
  }
  struct file* file = needle_current_file((int)ret);
  if (!file) {
    return 0;
  }
  struct ipc_record* rec = ipc_begin(IPC_KIND_MEMFD_CREATE, sys, ret);
  if (!rec) {
    return 0;
  }
  rec->arg = sys->args[1] & 0xffffffff;
  const unsigned char* name = BPF_CORE_READ(file, f_path.dentry, d_name.name);
  long n = bpf_probe_read_kernel_str(rec->name, sizeof(rec->name), name);
  if (n > 1) {
    rec->name_len = (__u32)(n - 1);
    if (n == sizeof(rec->name)) {
      rec->flags |= IPC_F_NAME_TRUNCATED;
    }
  }
  needle_submit(rec);
  return 0;
}

/* ---- signals ---------------------------------------------------------------------------- */

/* The global tgid of the process behind a pidfd (pidfs inode, or private_data before 6.9). */
static __always_inline __s32 ipc_pidfd_tgid(int fd) {
  struct file* file = needle_current_file(fd);
  if (!file) {
    return 0;
  }
  struct pid* pid = NULL;
  struct inode* inode = BPF_CORE_READ(file, f_inode);
  if (BPF_CORE_READ(inode, i_sb, s_magic) == IPC_PID_FS_MAGIC) {
    pid = BPF_CORE_READ(inode, i_private);
  } else {
    pid = BPF_CORE_READ(file, private_data);
  }
  return pid ? BPF_CORE_READ(pid, numbers[0].nr) : 0;
}

NEEDLE_SYS_EXIT_HANDLER(ipc_signal_exit) {
  if (ret != 0) {
    return 0;
  }
  __u32 nr = sys->nr;
  int native = sys->abi == NEEDLE_SYS_ABI_NATIVE;
  struct task_struct* task = bpf_get_current_task_btf();
  __s32 target = 0;
  __u32 sig = 0;
  __u32 kernel = 0;
  int other = 1;
  if (nr == (native ? IPC_NR64_KILL : IPC_NR32_KILL) ||
      nr == (native ? IPC_NR64_RT_SIGQUEUEINFO : IPC_NR32_RT_SIGQUEUEINFO)) {
    target = NEEDLE_SYS_INT(sys, 0);
    sig = (__u32)sys->args[1];
    /* pid > 0 names a process; 0, -1 and -pgid a group, which is reported as given */
    other = target <= 0 || target != ipc_vnr(task->group_leader->thread_pid);
  } else if (nr == (native ? IPC_NR64_TKILL : IPC_NR32_TKILL)) {
    target = NEEDLE_SYS_INT(sys, 0);
    sig = (__u32)sys->args[1];
    /* a thread id: only the caller's own thread is known to be in its process */
    other = target != ipc_vnr(task->thread_pid);
  } else if (nr == (native ? IPC_NR64_PIDFD_SEND_SIGNAL : IPC_NR32_PIDFD_SEND_SIGNAL)) {
    target = ipc_pidfd_tgid(NEEDLE_SYS_INT(sys, 0));
    sig = (__u32)sys->args[1];
    kernel = IPC_F_TARGET_KERNEL;
    other = target != (__s32)task->tgid;
  } else {
    /* tgkill, rt_tgsigqueueinfo: (tgid, tid, sig) */
    target = NEEDLE_SYS_INT(sys, 0);
    sig = (__u32)sys->args[2];
    other = target != ipc_vnr(task->group_leader->thread_pid);
  }
  if (sig == 0 || !other || needle_current_filtered()) {
    return 0;   /* signal 0 only probes; signals within the process are not IPC */
  }
  struct ipc_record* rec = ipc_begin(IPC_KIND_SIGNAL, sys, ret);
  if (!rec) {
    return 0;
  }
  rec->arg = sig;
  rec->flags = IPC_F_TARGET | kernel;
  rec->target_pid = target;
  needle_submit(rec);
  return 0;
}
