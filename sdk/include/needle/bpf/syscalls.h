/* Kernel side of the Needle SDK: syscall handlers of the shared dispatcher. Include after
 * vmlinux.h, the libbpf headers and needle/bpf/needle.bpf.h.
 *
 * needle runs one dispatcher on the raw sys_exit tracepoint for all sources (bpf/syscalls.bpf.c
 * in needle's tree; on the tp rung, and when some source has enter handlers, on sys_enter too).
 * Its first instructions test a bitmap of the syscalls some source claimed and return; for a
 * claimed one it saves the six argument registers of the thread (per ABI: x86_64 di, si, dx, r10,
 * r8, r9; ia32 bx, cx, dx, si, di, bp, zero-extended; read from pt_regs at sys_exit, where they
 * still hold the arguments, or from the tp rung's sys_enter record) and tail-calls the owning
 * source's handler. Syscalls that replace the registers (execve, rt_sigreturn) need an enter
 * handler to see their arguments. A source:
 *
 *   - writes its handler with NEEDLE_SYS_EXIT_HANDLER(name) (or NEEDLE_SYS_ENTER_HANDLER), which
 *     defines one program per rung: name_tp_btf, name_raw_tp and name_tp;
 *   - lists those programs in its program table under one hook, flagged NEEDLE_PROG_SYSCALL
 *     (| NEEDLE_PROG_SYSCALL_ENTER for an enter handler), never attached by themselves;
 *   - lists in the spec's `syscalls` table each (abi, nr) that hook handles.
 *
 * Tail calls need the caller and callee to be the same program type (and, for tp_btf, attached to
 * the same tracepoint), so every handler exists once per rung and needle loads the rung the
 * dispatcher runs on. Read user memory in the exit handler, not at enter: the pages of a pointer
 * argument may not be resident at entry, and a racing thread may still change them. */
#ifndef NEEDLE_BPF_SYSCALLS_H
#define NEEDLE_BPF_SYSCALLS_H

#define NEEDLE_SYS_NR_MAX 1024        /* syscall numbers per ABI the dispatcher covers */
#define NEEDLE_SYS_ABI_NATIVE 0       /* = NEEDLE_SYSCALL_NATIVE of abi.h */
#define NEEDLE_SYS_ABI_COMPAT 1       /* = NEEDLE_SYSCALL_COMPAT: ia32 on x86_64 */
#define NEEDLE_SYS_ABIS 2

/* The arguments of the thread's current syscall, saved by the dispatcher. */
struct needle_sys_args {
  __u64 args[6];       /* in the syscall's own order; compat values zero-extended from 32 bits */
  __u64 enter_ns;      /* bpf_ktime_get_boot_ns() at sys_enter; 0 where no enter hook ran */
  __u32 nr;            /* the syscall's number in its ABI */
  __u32 abi;           /* NEEDLE_SYS_ABI_* */
  __u32 live;          /* 1 between sys_enter and the dispatcher's sys_exit */
  __u32 reserved;
};

/* One entry per thread that ever made a claimed syscall, freed with the thread. needle creates
 * it once (in the dispatcher's object) and shares it with every source object. */
struct {
  __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct needle_sys_args);
} needle_sys_args_map SEC(".maps");

/* The saved arguments of the current thread's syscall (NULL if none were saved). */
static __always_inline struct needle_sys_args* needle_sys_saved(void) {
  return bpf_task_storage_get(&needle_sys_args_map, bpf_get_current_task_btf(), 0, 0);
}

/* The user pointer in argument `i`. */
#define NEEDLE_SYS_PTR(sys, i) ((const void*)(unsigned long)(sys)->args[(i)])
/* Argument `i` as a signed int (fds, dirfds, flags): the low 32 bits, sign-extended, as the
 * kernel's own int parameters see them in both ABIs. */
#define NEEDLE_SYS_INT(sys, i) ((int)(__s32)(sys)->args[(i)])

/* Defines a sys_exit handler:
 *
 *   NEEDLE_SYS_EXIT_HANDLER(file_open_exit) {   // const struct needle_sys_args* sys, long ret
 *     ...
 *     return 0;
 *   }
 *
 * and its programs file_open_exit_tp_btf, file_open_exit_raw_tp and file_open_exit_tp. `ret` is
 * the syscall's return value. The body runs only when the dispatcher saved this syscall's
 * arguments. */
#define NEEDLE_SYS_EXIT_HANDLER(name)                                                          \
  static __always_inline int name(const struct needle_sys_args* sys, long ret);              \
  NEEDLE_SYS_EXIT_PROGRAMS_(name, )                                                           \
  static __always_inline int name(const struct needle_sys_args* sys, long ret)

/* The three programs (one per rung) that run an exit handler `name`, named name_<rung><suffix>,
 * passing the arguments after `...` to it after sys and ret. */
#define NEEDLE_SYS_EXIT_PROGRAMS_(name, suffix, ...)                                           \
  SEC("?tp_btf/sys_exit")                                                                     \
  int BPF_PROG(name##_tp_btf##suffix, struct pt_regs* regs, long ret) {                       \
    const struct needle_sys_args* sys = needle_sys_saved();                                  \
    return sys ? name(sys, ret, ##__VA_ARGS__) : 0;                                          \
  }                                                                                          \
  SEC("?raw_tp/sys_exit")                                                                     \
  int BPF_PROG(name##_raw_tp##suffix, struct pt_regs* regs, long ret) {                       \
    const struct needle_sys_args* sys = needle_sys_saved();                                  \
    return sys ? name(sys, ret, ##__VA_ARGS__) : 0;                                          \
  }                                                                                          \
  SEC("?tp/raw_syscalls/sys_exit")                                                            \
  int name##_tp##suffix(struct trace_event_raw_sys_exit* ctx) {                              \
    const struct needle_sys_args* sys = needle_sys_saved();                                  \
    return sys ? name(sys, ctx->ret, ##__VA_ARGS__) : 0;                                     \
  }

/* NEEDLE_SYS_EXIT_HANDLER with a second program per rung for kernels with bpf_rdonly_cast
 * (Linux 6.2+):
 *
 *   NEEDLE_SYS_EXIT_HANDLER_TYPED(file_open_exit) {   // sys, ret, and const int typed
 *     struct file* f = needle_current_file((int)ret);
 *     __u32 mode = typed ? NEEDLE_TYPED(file, f)->f_mode : BPF_CORE_READ(f, f_mode);
 *     ...
 *   }
 *
 * defines name_tp_btf_typed, name_raw_tp_typed and name_tp_typed (the body with typed = 1: its
 * rungs are "tp_btf+typed", "raw_tp+typed" and "tp+typed") besides the three plain programs
 * (typed = 0). `typed` is a constant in each program, so the compiler keeps one branch: the plain
 * programs never call bpf_rdonly_cast and load where it is missing. List them with
 * NEEDLE_SYSCALL_HOOK_TYPED (needle/bpf_object.h): needle tries each typed rung before the plain
 * one on the dispatcher's rung and logs the one it runs on. */
#define NEEDLE_SYS_EXIT_HANDLER_TYPED(name)                                                    \
  static __always_inline int name(const struct needle_sys_args* sys, long ret,               \
                                  const int typed);                                          \
  NEEDLE_SYS_EXIT_PROGRAMS_(name, _typed, 1)                                                  \
  NEEDLE_SYS_EXIT_PROGRAMS_(name, , 0)                                                        \
  static __always_inline int name(const struct needle_sys_args* sys, long ret, const int typed)

/* Defines a sys_enter handler: `sys` holds the arguments just saved. Runs before the syscall;
 * read only what the kernel has not yet acted on with that in mind. */
#define NEEDLE_SYS_ENTER_HANDLER(name)                                                         \
  static __always_inline int name(struct needle_sys_args* sys);                              \
  SEC("?tp_btf/sys_enter")                                                                    \
  int BPF_PROG(name##_tp_btf, struct pt_regs* regs, long id) {                                \
    struct needle_sys_args* sys = needle_sys_saved();                                        \
    return sys ? name(sys) : 0;                                                              \
  }                                                                                          \
  SEC("?raw_tp/sys_enter")                                                                    \
  int BPF_PROG(name##_raw_tp, struct pt_regs* regs, long id) {                                \
    struct needle_sys_args* sys = needle_sys_saved();                                        \
    return sys ? name(sys) : 0;                                                              \
  }                                                                                          \
  SEC("?tp/raw_syscalls/sys_enter")                                                           \
  int name##_tp(struct trace_event_raw_sys_enter* ctx) {                                     \
    struct needle_sys_args* sys = needle_sys_saved();                                        \
    return sys ? name(sys) : 0;                                                              \
  }                                                                                          \
  static __always_inline int name(struct needle_sys_args* sys)

#endif /* NEEDLE_BPF_SYSCALLS_H */
