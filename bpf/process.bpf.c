// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Kernel side of the `process` source: exec, fork, exit and the start snapshot.
 *
 * Each hook has one program per rung, all optional (SEC("?...")): needle autoloads only the rung
 * it is trying. exec and fork have a "+typed" rung above tp_btf and raw_tp (Linux 6.2+: the
 * task, its files and the path walks read with direct loads through NEEDLE_TYPED instead of
 * some forty bpf_probe_read_kernel calls); exit reads the current task, which it always is,
 * with direct loads on every rung. Record layouts: bpf/include/process_record.h. Variable-size
 * records are built in a per-CPU scratch buffer and copied to the ring with needle_output; the
 * snapshot writes its records to the iterator's seq_file instead. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "needle/bpf/needle.bpf.h"
#include "needle/bpf/path.h"
#include "process_record.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the plugin before load (keys max_args, 0-4096, and max_arg_bytes, 0-PROCESS_ARGS_MAX,
 * validated there). 0 in either turns argument capture off. */
NEEDLE_CONFIG(__u32, max_args, 64);
NEEDLE_CONFIG(__u32, max_arg_bytes, 4096);

/* signal_struct.flags bit, include/linux/sched/signal.h (a #define, so not in BTF) */
#define PROCESS_SIGNAL_GROUP_EXIT 0x00000004

/* Worst case of an exec record as the verifier sees it: fixed part, three paths each at most
 * NEEDLE_PATH_MAX - 1 bytes, the argument block; the last path write may run
 * NEEDLE_PATH_NAME_MAX + 1 bytes past its own bound, which the argument room covers. */
#define PROCESS_BUF_SIZE 28800
_Static_assert(sizeof(struct process_exec_record) + 3 * (NEEDLE_PATH_MAX - 1) + PROCESS_ARGS_MAX <=
                   PROCESS_BUF_SIZE,
               "scratch too small for the largest record");
_Static_assert(PROCESS_ARGS_MAX >= NEEDLE_PATH_BUF_SIZE - (NEEDLE_PATH_MAX - 1),
               "argument room must cover the path slack");
_Static_assert(PROCESS_BUF_SIZE + sizeof(struct needle_path_scratch) <= 32768,
               "per-CPU map values are limited to 32 KiB");
_Static_assert(sizeof(struct process_exec_record) == 128, "process_exec_record layout");
_Static_assert(sizeof(struct process_fork_record) == 112, "process_fork_record layout");
_Static_assert(sizeof(struct process_exit_record) == 96, "process_exit_record layout");

struct process_scratch {
  __u8 buf[PROCESS_BUF_SIZE];
  struct needle_path_scratch path;
};

/* exec and fork run from non-preemptible tracepoints and share one scratch per CPU; the
 * sleepable snapshot can be preempted on its CPU, so it has its own. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct process_scratch);
} process_scratch_map SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct process_scratch);
} process_snapshot_scratch_map SEC(".maps");

/* How the argument block is read. */
#define PROCESS_ARGS_NONE 0      /* not readable on this rung */
#define PROCESS_ARGS_CURRENT 1   /* the task is current: bpf_probe_read_user */
#define PROCESS_ARGS_TASK 2      /* another task, sleepable: bpf_copy_from_user_task */

static __always_inline void process_fill_header_of(struct needle_record_header* hdr, __u16 kind,
                                                   struct task_struct* task, const int typed) {
  hdr->kind = kind;
  hdr->version = PROCESS_RECORD_VERSION;
  hdr->size = 0;
  hdr->boot_ns = bpf_ktime_get_boot_ns();
  hdr->source = needle_source_index;
  hdr->cpu = bpf_get_smp_processor_id();
  if (typed) {
    needle_fill_task_ctx_typed(&hdr->task, task);
  } else {
    needle_fill_task_ctx(&hdr->task, task);
  }
}

static __always_inline __u32 process_exe_flags(struct file* exe, __u32 path_flags,
                                               const int typed) {
  __u32 flags = path_flags ? PROCESS_F_EXE_TRUNCATED : 0;
  __u32 fileless = needle_file_fileless_typed(exe, typed);
  if (fileless & NEEDLE_FILE_MEMFD) {
    flags |= PROCESS_F_EXE_MEMFD;
  }
  if (fileless & NEEDLE_FILE_DELETED) {
    flags |= PROCESS_F_EXE_DELETED;
  }
  return flags;
}

struct process_args_count {
  const char* args;
  __u32 len;
  __u32 left;     /* arguments still allowed */
  __u32 cut;      /* 0, or the length that keeps exactly max_args arguments */
};

static long process_args_count_step(__u32 index, void* arg) {
  struct process_args_count* c = arg;
  if (index >= c->len) {
    return 1;
  }
  if (c->args[index & (PROCESS_ARGS_MAX - 1)] == 0) {
    c->left -= 1;
    if (c->left == 0) {
      c->cut = index + 1;
      return 1;
    }
  }
  return 0;
}

/* Reads the argument block of `task` (mm->arg_start..arg_end) into `dst`, at most max_arg_bytes
 * bytes and max_args arguments. Returns its length; sets PROCESS_F_ARGS_* in *flags. */
static __always_inline __u32 process_read_args(char* dst, struct task_struct* task, int mode,
                                               __u32* flags, const int typed) {
  if (mode == PROCESS_ARGS_NONE || max_args == 0 || max_arg_bytes == 0) {
    return 0;
  }
  struct mm_struct* mm = typed ? NEEDLE_TYPED(task_struct, task)->mm : BPF_CORE_READ(task, mm);
  if (!mm) {
    return 0;   /* a kernel thread */
  }
  unsigned long start = typed ? mm->arg_start : BPF_CORE_READ(mm, arg_start);
  unsigned long end = typed ? mm->arg_end : BPF_CORE_READ(mm, arg_end);
  __u64 avail = end > start ? end - start : 0;
  __u32 len = avail > max_arg_bytes ? max_arg_bytes : (__u32)avail;
  if (len > PROCESS_ARGS_MAX) {
    len = PROCESS_ARGS_MAX;
  }
  if (len < avail) {
    *flags |= PROCESS_F_ARGS_TRUNCATED;
  }
  long err;
  if (mode == PROCESS_ARGS_CURRENT) {
    err = bpf_probe_read_user(dst, len, (const void*)start);
  } else {
    err = bpf_copy_from_user_task(dst, len, (const void*)start, task, 0);
  }
  if (err != 0) {
    *flags &= ~PROCESS_F_ARGS_TRUNCATED;
    return 0;
  }
  *flags |= PROCESS_F_ARGS_PRESENT;
  struct process_args_count c = {.args = dst, .len = len, .left = max_args};
  bpf_loop(len, process_args_count_step, &c, 0);
  if (c.cut != 0 && c.cut < len) {
    *flags |= PROCESS_F_ARGS_TRUNCATED;
    len = c.cut;
  }
  return len;
}

/* The script behind an interpreter, at sched_process_exec (so only with bprm).
 *
 * By now exec_binprm() has already replaced bprm->file by the interpreter and dropped the
 * script's struct file, unless the handler asked to keep it open (binfmt_misc with the O or C
 * flag, or any handler setting have_execfd): then it is bprm->executable, the most
 * kernel-resolved answer, used first. Otherwise an interpreter ran exactly when bprm->interp no
 * longer points at bprm->filename (bprm_change_interp() is called by binfmt_script and
 * binfmt_misc), and the script is known only as the filename string given to execve (relative
 * to the cwd, or /dev/fd/N for execveat): reported with PROCESS_F_SCRIPT_FROM_USER. */
static __always_inline __u32 process_script(char* dst, struct linux_binprm* bprm,
                                            struct needle_path_scratch* scratch, __u32* flags,
                                            const int typed) {
  if (!bprm) {
    return 0;
  }
  struct linux_binprm* b = typed ? NEEDLE_TYPED(linux_binprm, bprm) : bprm;
  struct file* executable = NULL;
  if (bpf_core_field_exists(bprm->executable)) {
    executable = typed ? b->executable : BPF_CORE_READ(bprm, executable);
  }
  if (executable) {
    __u32 path_flags = 0;
    __u32 len = needle_file_path_typed(executable, dst, scratch, &path_flags, typed);
    if (path_flags) {
      *flags |= PROCESS_F_SCRIPT_TRUNCATED;
    }
    return len;
  }
  const char* filename = typed ? b->filename : BPF_CORE_READ(bprm, filename);
  const char* interp = typed ? b->interp : BPF_CORE_READ(bprm, interp);
  if (!filename || interp == filename) {
    return 0;
  }
  long n = bpf_probe_read_kernel_str(dst, NEEDLE_PATH_MAX, filename);
  if (n <= 1) {
    return 0;
  }
  *flags |= PROCESS_F_SCRIPT_FROM_USER;
  return (__u32)(n - 1) & (NEEDLE_PATH_MAX - 1);
}

/* The executable's inode number and device into *ino and *dev (0 when there is none). */
static __always_inline void process_exe_ids(struct file* exe, __u64* ino, __u64* dev,
                                            const int typed) {
  struct inode* inode = NULL;
  if (exe) {
    inode = typed ? NEEDLE_TYPED(file, exe)->f_inode : BPF_CORE_READ(exe, f_inode);
  }
  if (!inode) {
    *ino = 0;
    *dev = 0;
    return;
  }
  *ino = typed ? inode->i_ino : BPF_CORE_READ(inode, i_ino);
  *dev = typed ? inode->i_sb->s_dev : BPF_CORE_READ(inode, i_sb, s_dev);
}

/* Fills everything after the header of an exec/snapshot record in `s` and returns the record's
 * total size. */
static __always_inline __u32 process_fill_exec(struct process_scratch* s, struct task_struct* task,
                                               struct file* exe, struct linux_binprm* bprm,
                                               int args_mode, const int typed) {
  struct process_exec_record* rec = (struct process_exec_record*)s->buf;
  char* data = (char*)s->buf + sizeof(*rec);
  __u32 flags = 0;
  __u32 path_flags = 0;

  process_exe_ids(exe, &rec->exe_ino, &rec->exe_dev, typed);
  __u32 exe_len = needle_file_path_typed(exe, data, &s->path, &path_flags, typed);
  if (exe) {
    flags |= process_exe_flags(exe, path_flags, typed);
  }
  __u32 pos = exe_len;

  __u32 script_len = process_script(data + pos, bprm, &s->path, &flags, typed);
  pos += script_len;

  __u32 cwd_len = 0;
  struct fs_struct* fs = typed ? NEEDLE_TYPED(task_struct, task)->fs : BPF_CORE_READ(task, fs);
  if (fs) {
    path_flags = 0;
    cwd_len = typed ? needle_path_resolve_typed(fs->pwd.mnt, fs->pwd.dentry, data + pos,
                                                &s->path, &path_flags, 1)
                    : needle_path_of(&fs->pwd, data + pos, &s->path, &path_flags);
    if (cwd_len) {
      flags |= PROCESS_F_CWD_PRESENT;
    }
    if (path_flags) {
      flags |= PROCESS_F_CWD_TRUNCATED;
    }
  }
  pos += cwd_len;

  __u32 args_len = process_read_args(data + pos, task, args_mode, &flags, typed);

  rec->flags = flags;
  rec->exe_len = exe_len;
  rec->script_len = script_len;
  rec->cwd_len = cwd_len;
  rec->args_len = args_len;
  rec->reserved = 0;
  __u32 size = sizeof(*rec) + pos + args_len;
  rec->hdr.size = size;
  return size;
}

static __always_inline struct process_scratch* process_scratch_get(void* map) {
  __u32 zero = 0;
  return bpf_map_lookup_elem(map, &zero);
}

/* ---- exec ------------------------------------------------------------------------------- */

/* `bprm` is NULL on the tp rung, which has no access to it: exe then comes from mm->exe_file
 * (the same file: begin_new_exec() set it from bprm->file) and no script is reported. */
static __always_inline int process_exec(struct task_struct* task, struct linux_binprm* bprm,
                                        const int typed) {
  if (needle_current_filtered()) {   /* the task is current */
    return 0;
  }
  struct process_scratch* s = process_scratch_get(&process_scratch_map);
  if (!s) {
    return 0;
  }
  struct process_exec_record* rec = (struct process_exec_record*)s->buf;
  needle_fill_header(&rec->hdr, PROCESS_KIND_EXEC, PROCESS_RECORD_VERSION, 0);
  struct file* exe = NULL;
  if (typed) {
    exe = bprm ? NEEDLE_TYPED(linux_binprm, bprm)->file
               : NEEDLE_TYPED(task_struct, task)->mm->exe_file;
  } else {
    exe = bprm ? BPF_CORE_READ(bprm, file) : BPF_CORE_READ(task, mm, exe_file);
  }
  __u32 size = process_fill_exec(s, task, exe, bprm, PROCESS_ARGS_CURRENT, typed);
  if (size > PROCESS_BUF_SIZE) {
    return 0;
  }
  needle_output(rec, size);
  return 0;
}

SEC("?tp_btf/sched_process_exec")
int BPF_PROG(process_exec_tp_btf_typed, struct task_struct* p, pid_t old_pid,
             struct linux_binprm* bprm) {
  return process_exec(p, bprm, 1);
}

SEC("?tp_btf/sched_process_exec")
int BPF_PROG(process_exec_tp_btf, struct task_struct* p, pid_t old_pid, struct linux_binprm* bprm) {
  return process_exec(p, bprm, 0);
}

SEC("?raw_tp/sched_process_exec")
int BPF_PROG(process_exec_raw_tp_typed, struct task_struct* p, pid_t old_pid,
             struct linux_binprm* bprm) {
  return process_exec(p, bprm, 1);
}

SEC("?raw_tp/sched_process_exec")
int BPF_PROG(process_exec_raw_tp, struct task_struct* p, pid_t old_pid, struct linux_binprm* bprm) {
  return process_exec(p, bprm, 0);
}

SEC("?tp/sched/sched_process_exec")
int process_exec_tp(struct trace_event_raw_sched_process_exec* ctx) {
  return process_exec((struct task_struct*)bpf_get_current_task(), NULL, 0);
}

/* ---- fork ------------------------------------------------------------------------------- */

/* Reports a new thread group; the record's task context is the child's. */
static __always_inline int process_fork(struct task_struct* child, const int typed) {
  struct task_struct* c = typed ? NEEDLE_TYPED(task_struct, child) : child;
  if (typed ? c->pid != c->tgid : BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid)) {
    return 0;   /* a thread */
  }
  if (needle_task_filtered_typed(child, typed)) {
    return 0;
  }
  struct process_scratch* s = process_scratch_get(&process_scratch_map);
  if (!s) {
    return 0;
  }
  struct process_fork_record* rec = (struct process_fork_record*)s->buf;
  char* data = (char*)s->buf + sizeof(*rec);
  process_fill_header_of(&rec->hdr, PROCESS_KIND_FORK, child, typed);
  struct file* exe = NULL;
  if (typed) {
    struct mm_struct* mm = c->mm;
    exe = mm ? mm->exe_file : NULL;
  } else {
    exe = BPF_CORE_READ(child, mm, exe_file);
  }
  __u32 path_flags = 0;
  process_exe_ids(exe, &rec->exe_ino, &rec->exe_dev, typed);
  __u32 exe_len = needle_file_path_typed(exe, data, &s->path, &path_flags, typed);
  rec->exe_len = exe_len;
  rec->flags = exe ? process_exe_flags(exe, path_flags, typed) : 0;
  __u32 size = sizeof(*rec) + exe_len;
  if (size > PROCESS_BUF_SIZE) {
    return 0;
  }
  rec->hdr.size = size;
  needle_output(rec, size);
  return 0;
}

SEC("?tp_btf/sched_process_fork")
int BPF_PROG(process_fork_tp_btf_typed, struct task_struct* parent, struct task_struct* child) {
  return process_fork(child, 1);
}

SEC("?tp_btf/sched_process_fork")
int BPF_PROG(process_fork_tp_btf, struct task_struct* parent, struct task_struct* child) {
  return process_fork(child, 0);
}

SEC("?raw_tp/sched_process_fork")
int BPF_PROG(process_fork_raw_tp_typed, struct task_struct* parent, struct task_struct* child) {
  return process_fork(child, 1);
}

SEC("?raw_tp/sched_process_fork")
int BPF_PROG(process_fork_raw_tp, struct task_struct* parent, struct task_struct* child) {
  return process_fork(child, 0);
}

/* The tp rung gets only the child's pid. A new thread group is the last entry of its real
 * parent's children list (copy_process() appends it there under tasklist_lock before the
 * tracepoint); that parent is current, or current's real parent with CLONE_PARENT. A thread is
 * on no children list, so it is not found and not reported. */
static __always_inline struct task_struct* process_newest_child(__u64 parent, pid_t pid) {
  if (!parent) {
    return NULL;
  }
  __u64 head = parent + bpf_core_field_offset(struct task_struct, children);
  __u64 last = (__u64)BPF_CORE_READ((struct task_struct*)parent, children.prev);
  if (!last || last == head) {
    return NULL;
  }
  struct task_struct* child =
      (struct task_struct*)(last - bpf_core_field_offset(struct task_struct, sibling));
  return BPF_CORE_READ(child, pid) == pid ? child : NULL;
}

SEC("?tp/sched/sched_process_fork")
int process_fork_tp(struct trace_event_raw_sched_process_fork* ctx) {
  pid_t pid = ctx->child_pid;
  __u64 parent = bpf_get_current_task();
  struct task_struct* child = process_newest_child(parent, pid);
  if (!child) {
    child = process_newest_child(
        (__u64)BPF_CORE_READ((struct task_struct*)parent, real_parent), pid);
  }
  if (!child) {
    return 0;
  }
  return process_fork(child, 0);
}

/* ---- exit ------------------------------------------------------------------------------- */

/* Once per thread group: do_exit() decrements signal->live before the tracepoint, so the last
 * thread out sees 0 (whether or not the tracepoint has the group_dead argument). do_exit() runs
 * the tracepoint for current, so every rung reads the task through its BTF pointer (direct
 * loads, Linux 5.11+) rather than the tracepoint's argument. */
static __always_inline int process_exit(void) {
  if (needle_current_filtered()) {
    return 0;
  }
  struct task_struct* task = bpf_get_current_task_btf();
  struct signal_struct* sig = task->signal;
  if (!sig || sig->live.counter != 0) {
    return 0;
  }
  struct process_exit_record* rec = needle_reserve(sizeof(*rec));
  if (!rec) {
    return 0;
  }
  needle_fill_header(&rec->hdr, PROCESS_KIND_EXIT, PROCESS_RECORD_VERSION, sizeof(*rec));
  /* exit_group() and fatal signals record the group's status in group_exit_code; a group whose
   * last thread called plain exit() carries it in that thread's exit_code. */
  if (sig->flags & PROCESS_SIGNAL_GROUP_EXIT) {
    rec->status = (__u32)sig->group_exit_code;
  } else {
    rec->status = (__u32)task->exit_code;
  }
  rec->reserved = 0;
  needle_submit(rec);
  return 0;
}

SEC("?tp_btf/sched_process_exit")
int BPF_PROG(process_exit_tp_btf, struct task_struct* p) {
  return process_exit();
}

SEC("?raw_tp/sched_process_exit")
int BPF_PROG(process_exit_raw_tp, struct task_struct* p) {
  return process_exit();
}

SEC("?tp/sched/sched_process_exit")
int process_exit_tp(struct trace_event_raw_sched_process_exit* ctx) {
  return process_exit();
}

/* ---- snapshot --------------------------------------------------------------------------- */

/* One record per live thread-group leader, written to the iterator's seq_file (needle reads it
 * whole and splits it by hdr.size). Each record is at most 28797 bytes, below the seq buffer. */
static __always_inline int process_snapshot(struct bpf_iter__task* ctx, int args_mode) {
  struct seq_file* seq = ctx->meta->seq;
  struct task_struct* task = ctx->task;
  if (!task) {
    return 0;
  }
  if (BPF_CORE_READ(task, pid) != BPF_CORE_READ(task, tgid)) {
    return 0;
  }
  if (BPF_CORE_READ(task, signal, live.counter) == 0) {
    return 0;   /* already dead, waiting to be reaped */
  }
  if (needle_task_filtered(task)) {
    return 0;
  }
  struct process_scratch* s = process_scratch_get(&process_snapshot_scratch_map);
  if (!s) {
    return 0;
  }
  struct process_exec_record* rec = (struct process_exec_record*)s->buf;
  process_fill_header_of(&rec->hdr, PROCESS_KIND_SNAPSHOT, task, 0);
  struct file* exe = BPF_CORE_READ(task, mm, exe_file);
  __u32 size = process_fill_exec(s, task, exe, NULL, args_mode, 0);
  if (size > PROCESS_BUF_SIZE) {
    return 0;
  }
  bpf_seq_write(seq, rec, size);
  return 0;
}

SEC("?iter.s/task")
int process_snapshot_iter_s(struct bpf_iter__task* ctx) {
  return process_snapshot(ctx, PROCESS_ARGS_TASK);
}

SEC("?iter/task")
int process_snapshot_iter(struct bpf_iter__task* ctx) {
  return process_snapshot(ctx, PROCESS_ARGS_NONE);
}
