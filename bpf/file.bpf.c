// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Kernel side of the `file` source: opens, creations, unlink, rename, chmod, chown, link and
 * symlink, on every route: the syscalls of both ABIs through the shared dispatcher
 * (needle/bpf/syscalls.h) and io_uring, which bypasses syscalls (its own tracepoints).
 *
 * Paths come from the kernel's objects where one exists: an open's path is the struct file behind
 * the returned fd (looked up in the task's fd table at sys_exit), so a thread that rewrites the
 * caller's buffer cannot change it; fchmod/fchown use their fd's file. Where only the caller's
 * string exists (unlink, rename, chmod by name, link, symlink) it is read at sys_exit, joined to
 * the directory of dirfd or the cwd resolved in the kernel, and marked FILE_F_*_FROM_USER.
 *
 * Filters run before ring space is reserved: needle's own process and the core's exclusions,
 * read-only opens (unless read_only), then the `paths` / `exclude_paths` prefixes on the built
 * path. Record layout: bpf/include/file_record.h. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "file_record.h"
#include "needle/bpf/needle.bpf.h"
#include "needle/bpf/path.h"
#include "needle/bpf/syscalls.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* uapi values (#defines, not in BTF) */
#define FILE_O_ACCMODE 00000003
#define FILE_O_RDONLY 00000000
#define FILE_O_WRONLY 00000001
#define FILE_O_CREAT 00000100
#define FILE_O_EXCL 00000200
#define FILE_O_TRUNC 00001000
#define FILE_AT_FDCWD -100
#define FILE_AT_REMOVEDIR 0x200

/* Set by the plugin before load. */
NEEDLE_CONFIG(__u32, read_only, 0);
NEEDLE_CONFIG(__u32, include_count, 0);
NEEDLE_CONFIG(__u32, exclude_count, 0);
/* Prefixes without a trailing slash, NUL-terminated; lengths in *_len. One global each, because
 * bpf_strncmp wants a read-only string at a constant offset. */
const volatile __u32 include_len[FILE_PREFIX_MAX] = {};
const volatile __u32 exclude_len[FILE_PREFIX_MAX] = {};
#define FILE_PREFIX_VAR(kind, i) const volatile char kind##_##i[FILE_PREFIX_LEN] = {}
FILE_PREFIX_VAR(include, 0);
FILE_PREFIX_VAR(include, 1);
FILE_PREFIX_VAR(include, 2);
FILE_PREFIX_VAR(include, 3);
FILE_PREFIX_VAR(include, 4);
FILE_PREFIX_VAR(include, 5);
FILE_PREFIX_VAR(include, 6);
FILE_PREFIX_VAR(include, 7);
FILE_PREFIX_VAR(exclude, 0);
FILE_PREFIX_VAR(exclude, 1);
FILE_PREFIX_VAR(exclude, 2);
FILE_PREFIX_VAR(exclude, 3);
FILE_PREFIX_VAR(exclude, 4);
FILE_PREFIX_VAR(exclude, 5);
FILE_PREFIX_VAR(exclude, 6);
FILE_PREFIX_VAR(exclude, 7);

/* FMODE_CREATED is a #define that moved between kernel versions: the plugin calibrates it at start
 * by creating ".needle-fmode-calibration" with O_CREAT|O_EXCL (the open surely created it) and
 * opening it again with O_CREAT (surely not); the bit set only in the first is the flag. */
__u32 calib_created = 0;
__u32 calib_existing = 0;
static const char kCalibName[] = ".needle-fmode-";
#define FILE_CALIB_NAME_LEN 14

/* Worst case of a record as the verifier sees it: the fixed part, a path of at most
 * FILE_PATH_MAX - 1 bytes, the new path after it (a region of FILE_PATH_MAX bytes whose builder
 * may write one more path component of slack). */
#define FILE_BUF_SIZE (FILE_RECORD_FIXED_SIZE + 2 * FILE_PATH_MAX + 512)
_Static_assert(sizeof(struct file_record) == FILE_RECORD_FIXED_SIZE, "file_record layout");
_Static_assert(NEEDLE_PATH_MAX + NEEDLE_PATH_NAME_MAX + 1 <= FILE_PATH_MAX, "path region");

/* io_uring path operations (rename, unlink, link, symlink) in flight: the record built at submit,
 * when the kernel's copy of the names still exists, emitted at completion when it succeeded. */
struct file_pending {
  __u32 size;
  __u32 reserved;
  __u8 buf[FILE_BUF_SIZE];
};

/* The record is built in `p` (so a pending io_uring record is stored with one copy). */
struct file_scratch {
  struct file_pending p;
  struct needle_path_scratch path;
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct file_scratch);
} file_scratch_map SEC(".maps");

/* Allocated per request only (no preallocation). */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, 4096);
  __type(key, __u64);
  __type(value, struct file_pending);
} file_uring_pending SEC(".maps");

static __always_inline struct file_scratch* file_scratch(void) {
  __u32 zero = 0;
  return bpf_map_lookup_elem(&file_scratch_map, &zero);
}

/* ---- paths ------------------------------------------------------------------------------ */

/* Where a path comes from. */
struct file_src {
  struct file* file;   /* the kernel object; else `name` */
  const char* name;    /* the caller's string (user memory, or kernel memory with `kernel`) */
  int dirfd;           /* a relative name is joined to this dir's path (AT_FDCWD: the cwd) */
  __u8 kernel;
  __u8 raw;            /* the name as given, never joined (a symlink's target) */
  __u8 pad[2];
};

#define FILE_REGION_MASK (FILE_PATH_MAX - 1)

/* Builds the path of `src` into `out` (a region of FILE_PATH_MAX bytes plus slack) and returns
 * its length (< FILE_PATH_MAX). Sets *from_user when the caller's string is part of it and
 * *truncated when cut. */
static __always_inline __u32 file_build(char* out, const struct file_src* src,
                                        struct needle_path_scratch* ps, __u32* from_user,
                                        __u32* truncated, const int typed) {
  __u32 pflags = 0;
  if (src->file) {
    __u32 len = needle_file_path_typed(src->file, out, ps, &pflags, typed);
    *truncated = pflags != 0;
    return len;
  }
  if (!src->name) {
    return 0;
  }
  *from_user = 1;
  char first = 0;
  if (src->kernel) {
    bpf_probe_read_kernel(&first, 1, src->name);
  } else {
    bpf_probe_read_user(&first, 1, src->name);
  }
  __u32 pos = 0;
  if (first != '/' && !src->raw) {
    struct task_struct* task = bpf_get_current_task_btf();
    if (src->dirfd == FILE_AT_FDCWD) {
      struct fs_struct* fs = BPF_CORE_READ(task, fs);
      if (fs) {
        pos = needle_path_of_typed(&fs->pwd, out, ps, &pflags, typed);
      }
    } else {
      pos = needle_file_path_typed(needle_current_file(src->dirfd), out, ps, &pflags, typed);
    }
    *truncated = pflags != 0;
    if (first == 0) {
      return pos;   /* an empty name (AT_EMPTY_PATH): the directory fd's own file */
    }
    if (pos > 0 && !(pos == 1 && out[0] == '/')) {
      out[pos & (NEEDLE_PATH_MAX - 1)] = '/';
      pos += 1;
    }
  }
  if (pos > NEEDLE_PATH_MAX) {
    pos = NEEDLE_PATH_MAX;
  }
  long n;
  if (src->kernel) {
    n = bpf_probe_read_kernel_str(out + pos, NEEDLE_PATH_MAX, src->name);
  } else {
    n = bpf_probe_read_user_str(out + pos, NEEDLE_PATH_MAX, src->name);
  }
  if (n > 1) {
    pos += (__u32)(n - 1);
  }
  return pos & FILE_REGION_MASK;
}

/* `path` (len bytes) is `prefix` or below it (whole components). */
static __always_inline int file_under(const char* path, __u32 len, const volatile char* prefix,
                                      __u32 plen) {
  if (plen == 0 || plen >= FILE_PREFIX_LEN || plen > len) {
    return 0;
  }
  if (bpf_strncmp(path, plen, (const char*)prefix) != 0) {
    return 0;
  }
  return plen == len || path[plen] == '/';
}

#define FILE_UNDER(kind, i) (kind##_count > i && file_under(path, len, kind##_##i, kind##_len[i]))

/* Whether a path passes `paths` and `exclude_paths`. */
static __always_inline int file_path_wanted(const char* path, __u32 len) {
  if (len >= FILE_PATH_MAX) {
    return 0;
  }
  if (FILE_UNDER(exclude, 0) || FILE_UNDER(exclude, 1) || FILE_UNDER(exclude, 2) ||
      FILE_UNDER(exclude, 3) || FILE_UNDER(exclude, 4) || FILE_UNDER(exclude, 5) ||
      FILE_UNDER(exclude, 6) || FILE_UNDER(exclude, 7)) {
    return 0;
  }
  if (include_count == 0) {
    return 1;
  }
  return FILE_UNDER(include, 0) || FILE_UNDER(include, 1) || FILE_UNDER(include, 2) ||
         FILE_UNDER(include, 3) || FILE_UNDER(include, 4) || FILE_UNDER(include, 5) ||
         FILE_UNDER(include, 6) || FILE_UNDER(include, 7);
}

/* ---- records ---------------------------------------------------------------------------- */

/* What one operation reports besides its paths. */
struct file_op {
  __u16 kind;
  __u16 syscall;
  __u8 abi;
  __u8 route;
  __u8 pad[2];
  __u32 flags;
  __u32 op_flags;
  __u32 mode;
  __u32 uid;
  __u32 gid;
  struct file* inode_of;   /* report ino/dev/mode of this file */
};

/* Builds the record of `op` with `path` and `new_path` (optional) in the scratch, applies the
 * path filters and returns its size, or 0 when filtered out. */
static __always_inline __u32 file_build_record(struct file_scratch* s, const struct file_op* op,
                                               const struct file_src* path,
                                               const struct file_src* new_path,
                                               const int typed) {
  struct file_record* rec = (struct file_record*)s->p.buf;
  char* out = (char*)s->p.buf + sizeof(*rec);
  needle_fill_header(&rec->hdr, op->kind, FILE_RECORD_VERSION, 0);
  __u32 flags = op->flags;
  __u32 from_user = 0, truncated = 0;
  __u32 len = file_build(out, path, &s->path, &from_user, &truncated, typed);
  if (from_user) {
    flags |= FILE_F_PATH_FROM_USER;
  }
  if (truncated) {
    flags |= FILE_F_PATH_TRUNCATED;
  }
  len &= FILE_REGION_MASK;
  int wanted = file_path_wanted(out, len);
  __u32 new_len = 0;
  if (new_path) {
    from_user = 0;
    truncated = 0;
    char* out2 = out + len;
    new_len = file_build(out2, new_path, &s->path, &from_user, &truncated, typed) &
              FILE_REGION_MASK;
    if (from_user) {
      flags |= FILE_F_NEW_PATH_FROM_USER;
    }
    if (truncated) {
      flags |= FILE_F_NEW_PATH_TRUNCATED;
    }
    wanted = wanted || file_path_wanted(out2, new_len);
  }
  if (!wanted) {
    return 0;
  }
  rec->flags = flags;
  rec->op_flags = op->op_flags;
  rec->mode = op->mode;
  rec->uid = op->uid;
  rec->gid = op->gid;
  rec->path_len = (__u16)len;
  rec->new_path_len = (__u16)new_len;
  rec->syscall = op->syscall;
  rec->abi = op->abi;
  rec->route = op->route;
  rec->reserved = 0;
  rec->ino = 0;
  rec->dev = 0;
  if (op->inode_of) {
    struct file* of = op->inode_of;
    struct inode* inode = typed ? NEEDLE_TYPED(file, of)->f_inode : BPF_CORE_READ(of, f_inode);
    if (inode) {   /* typed: a field of a typed file, so typed too */
      rec->flags |= FILE_F_HAS_INODE;
      rec->ino = typed ? inode->i_ino : BPF_CORE_READ(inode, i_ino);
      rec->dev = typed ? inode->i_sb->s_dev : BPF_CORE_READ(inode, i_sb, s_dev);
      if (op->kind == FILE_KIND_OPEN) {
        rec->mode = typed ? inode->i_mode : BPF_CORE_READ(inode, i_mode);
      }
    }
  }
  __u32 size = sizeof(*rec) + len + new_len;
  rec->hdr.size = size;
  return size;
}

static __always_inline int file_emit(const struct file_op* op, const struct file_src* path,
                                     const struct file_src* new_path, const int typed) {
  struct file_scratch* s = file_scratch();
  if (!s) {
    return 0;
  }
  __u32 size = file_build_record(s, op, path, new_path, typed);
  if (size == 0 || size > FILE_BUF_SIZE) {
    return 0;
  }
  needle_output(s->p.buf, size);
  return 0;
}

/* ---- open ------------------------------------------------------------------------------- */

static __always_inline __u32 file_created_mask(void) {
  __u32 m = calib_created & ~calib_existing;
  return (m && !(m & (m - 1))) ? m : 0;
}

/* needle's own opens: only the calibration files matter. */
static __always_inline void file_calibrate(struct file* file, __u32 open_flags) {
  if (!(open_flags & FILE_O_CREAT)) {
    return;
  }
  const unsigned char* name = BPF_CORE_READ(file, f_path.dentry, d_name.name);
  char head[FILE_CALIB_NAME_LEN] = {};
  if (!name || bpf_probe_read_kernel(head, sizeof(head), name) != 0) {
    return;
  }
  for (int i = 0; i < FILE_CALIB_NAME_LEN; i++) {
    if (head[i] != kCalibName[i]) {
      return;
    }
  }
  __u32 fmode = BPF_CORE_READ(file, f_mode);
  if (open_flags & FILE_O_EXCL) {
    calib_created = fmode;
    return;
  }
  calib_existing = fmode;
  struct file_record* rec = needle_reserve(sizeof(*rec));
  if (!rec) {
    return;
  }
  __builtin_memset(rec, 0, sizeof(*rec));
  needle_fill_header(&rec->hdr, FILE_KIND_CALIBRATION, FILE_RECORD_VERSION, sizeof(*rec));
  __u32 mask = file_created_mask();
  rec->op_flags = mask;
  rec->flags = mask ? 0 : FILE_F_CALIBRATION_FAILED;
  rec->mode = calib_created;
  rec->uid = calib_existing;
  needle_submit(rec);
}

/* Whether an open with these flags may change the file (what `read_only = false` keeps). */
static __always_inline int file_open_writes(__u32 open_flags) {
  return (open_flags & FILE_O_ACCMODE) != FILE_O_RDONLY ||
         (open_flags & (FILE_O_CREAT | FILE_O_TRUNC));
}

static __always_inline int file_open_done(struct file* file, __u32 open_flags, __u32 create_mode,
                                          __u16 syscall, __u8 abi, __u8 route,
                                          const int typed) {
  if (!file) {
    return 0;
  }
  struct task_struct* task = bpf_get_current_task_btf();
  if (task->tgid == needle_self_tgid) {
    file_calibrate(file, open_flags);
    return 0;
  }
  if (!read_only && !file_open_writes(open_flags)) {
    return 0;
  }
  if (needle_task_excluded(task)) {
    return 0;
  }
  struct file_op op = {.kind = FILE_KIND_OPEN, .syscall = syscall, .abi = abi, .route = route,
                       .op_flags = open_flags, .inode_of = file};
  __u32 mask = file_created_mask();
  if (!mask) {
    op.flags |= FILE_F_CREATE_UNKNOWN;
  } else if ((typed ? NEEDLE_TYPED(file, file)->f_mode : BPF_CORE_READ(file, f_mode)) & mask) {
    op.flags |= FILE_F_CREATED;
  }
  (void)create_mode;
  struct file_src path = {.file = file};
  return file_emit(&op, &path, NULL, typed);
}

NEEDLE_SYS_EXIT_HANDLER_TYPED(file_open_exit) {
  if (ret < 0) {
    return 0;
  }
  __u32 nr = sys->nr;
  __u32 flags = 0;
  __u32 mode = 0;
  if (sys->abi == NEEDLE_SYS_ABI_NATIVE) {
    if (nr == FILE_NR64_OPEN) {
      flags = sys->args[1];
      mode = sys->args[2];
    } else if (nr == FILE_NR64_CREAT) {
      flags = FILE_O_CREAT | FILE_O_WRONLY | FILE_O_TRUNC;
      mode = sys->args[1];
    } else if (nr == FILE_NR64_OPENAT) {
      flags = sys->args[2];
      mode = sys->args[3];
    } else if (nr == FILE_NR64_OPEN_BY_HANDLE_AT) {
      flags = sys->args[2];
    } else {
      struct open_how how = {};
      bpf_probe_read_user(&how, sizeof(how), NEEDLE_SYS_PTR(sys, 2));
      flags = (__u32)how.flags;
      mode = (__u32)how.mode;
    }
  } else {
    if (nr == FILE_NR32_OPEN) {
      flags = sys->args[1];
      mode = sys->args[2];
    } else if (nr == FILE_NR32_CREAT) {
      flags = FILE_O_CREAT | FILE_O_WRONLY | FILE_O_TRUNC;
      mode = sys->args[1];
    } else if (nr == FILE_NR32_OPENAT) {
      flags = sys->args[2];
      mode = sys->args[3];
    } else if (nr == FILE_NR32_OPEN_BY_HANDLE_AT) {
      flags = sys->args[2];
    } else {
      struct open_how how = {};
      bpf_probe_read_user(&how, sizeof(how), NEEDLE_SYS_PTR(sys, 2));
      flags = (__u32)how.flags;
      mode = (__u32)how.mode;
    }
  }
  struct file* file = needle_current_file((int)ret);
  return file_open_done(file, flags, mode, (__u16)nr, (__u8)sys->abi, FILE_ROUTE_SYSCALL, typed);
}

/* ---- name-based operations -------------------------------------------------------------- */

static __always_inline struct file_op file_op_of(__u16 kind, const struct needle_sys_args* sys) {
  struct file_op op = {.kind = kind, .syscall = (__u16)sys->nr, .abi = (__u8)sys->abi,
                       .route = FILE_ROUTE_SYSCALL};
  return op;
}

static __always_inline struct file_src user_src(int dirfd, const struct needle_sys_args* sys,
                                                int arg) {
  struct file_src s = {.name = NEEDLE_SYS_PTR(sys, arg & 7), .dirfd = dirfd};
  return s;
}

NEEDLE_SYS_EXIT_HANDLER_TYPED(file_unlink_exit) {
  if (ret != 0 || needle_current_filtered()) {
    return 0;
  }
  struct file_op op = file_op_of(FILE_KIND_UNLINK, sys);
  struct file_src path;
  __u32 nr = sys->nr;
  int native = sys->abi == NEEDLE_SYS_ABI_NATIVE;
  if (nr == (native ? FILE_NR64_UNLINKAT : FILE_NR32_UNLINKAT)) {
    path = user_src(NEEDLE_SYS_INT(sys, 0), sys, 1);
    op.op_flags = sys->args[2];
  } else {
    path = user_src(FILE_AT_FDCWD, sys, 0);
    if (nr == (native ? FILE_NR64_RMDIR : FILE_NR32_RMDIR)) {
      op.op_flags = FILE_AT_REMOVEDIR;
    }
  }
  return file_emit(&op, &path, NULL, typed);
}

NEEDLE_SYS_EXIT_HANDLER_TYPED(file_rename_exit) {
  if (ret != 0 || needle_current_filtered()) {
    return 0;
  }
  struct file_op op = file_op_of(FILE_KIND_RENAME, sys);
  struct file_src from, to;
  __u32 nr = sys->nr;
  int native = sys->abi == NEEDLE_SYS_ABI_NATIVE;
  if (nr == (native ? FILE_NR64_RENAME : FILE_NR32_RENAME)) {
    from = user_src(FILE_AT_FDCWD, sys, 0);
    to = user_src(FILE_AT_FDCWD, sys, 1);
  } else {
    from = user_src(NEEDLE_SYS_INT(sys, 0), sys, 1);
    to = user_src(NEEDLE_SYS_INT(sys, 2), sys, 3);
    if (nr == (native ? FILE_NR64_RENAMEAT2 : FILE_NR32_RENAMEAT2)) {
      op.op_flags = sys->args[4];
    }
  }
  return file_emit(&op, &from, &to, typed);
}

NEEDLE_SYS_EXIT_HANDLER_TYPED(file_chmod_exit) {
  if (ret != 0 || needle_current_filtered()) {
    return 0;
  }
  struct file_op op = file_op_of(FILE_KIND_CHMOD, sys);
  struct file_src path;
  __u32 nr = sys->nr;
  int native = sys->abi == NEEDLE_SYS_ABI_NATIVE;
  if (nr == (native ? FILE_NR64_CHMOD : FILE_NR32_CHMOD)) {
    path = user_src(FILE_AT_FDCWD, sys, 0);
    op.mode = sys->args[1];
  } else if (nr == (native ? FILE_NR64_FCHMOD : FILE_NR32_FCHMOD)) {
    struct file* file = needle_current_file(NEEDLE_SYS_INT(sys, 0));
    struct file_src f = {.file = file};
    path = f;
    op.mode = sys->args[1];
    op.inode_of = file;
  } else {
    path = user_src(NEEDLE_SYS_INT(sys, 0), sys, 1);
    op.mode = sys->args[2];
    if (nr == (native ? FILE_NR64_FCHMODAT2 : FILE_NR32_FCHMODAT2)) {
      op.op_flags = sys->args[3];
    }
  }
  op.mode &= 07777;
  return file_emit(&op, &path, NULL, typed);
}

NEEDLE_SYS_EXIT_HANDLER_TYPED(file_chown_exit) {
  if (ret != 0 || needle_current_filtered()) {
    return 0;
  }
  struct file_op op = file_op_of(FILE_KIND_CHOWN, sys);
  struct file_src path;
  __u32 nr = sys->nr;
  int native = sys->abi == NEEDLE_SYS_ABI_NATIVE;
  int id_arg = 1;
  if (native ? (nr == FILE_NR64_FCHOWN)
             : (nr == FILE_NR32_FCHOWN || nr == FILE_NR32_FCHOWN16)) {
    struct file* file = needle_current_file(NEEDLE_SYS_INT(sys, 0));
    struct file_src f = {.file = file};
    path = f;
    op.inode_of = file;
  } else if (nr == (native ? FILE_NR64_FCHOWNAT : FILE_NR32_FCHOWNAT)) {
    path = user_src(NEEDLE_SYS_INT(sys, 0), sys, 1);
    op.op_flags = sys->args[4];
    id_arg = 2;
  } else {
    path = user_src(FILE_AT_FDCWD, sys, 0);
  }
  __u32 uid = (__u32)sys->args[id_arg & 7];
  __u32 gid = (__u32)sys->args[(id_arg + 1) & 7];
  if (!native && (nr == FILE_NR32_CHOWN16 || nr == FILE_NR32_FCHOWN16 ||
                  nr == FILE_NR32_LCHOWN16)) {
    /* 16-bit ids: 0xffff means "unchanged" */
    uid = (uid & 0xffff) == 0xffff ? (__u32)-1 : (uid & 0xffff);
    gid = (gid & 0xffff) == 0xffff ? (__u32)-1 : (gid & 0xffff);
  }
  if (uid != (__u32)-1) {
    op.flags |= FILE_F_UID;
    op.uid = uid;
  }
  if (gid != (__u32)-1) {
    op.flags |= FILE_F_GID;
    op.gid = gid;
  }
  return file_emit(&op, &path, NULL, typed);
}

NEEDLE_SYS_EXIT_HANDLER_TYPED(file_link_exit) {
  if (ret != 0 || needle_current_filtered()) {
    return 0;
  }
  struct file_op op = file_op_of(FILE_KIND_LINK, sys);
  struct file_src from, to;
  if (sys->nr == (sys->abi == NEEDLE_SYS_ABI_NATIVE ? FILE_NR64_LINK : FILE_NR32_LINK)) {
    from = user_src(FILE_AT_FDCWD, sys, 0);
    to = user_src(FILE_AT_FDCWD, sys, 1);
  } else {
    from = user_src(NEEDLE_SYS_INT(sys, 0), sys, 1);
    to = user_src(NEEDLE_SYS_INT(sys, 2), sys, 3);
    op.op_flags = sys->args[4];
  }
  return file_emit(&op, &from, &to, typed);
}

/* path: the link's target as given (a symlink's target is not resolved when it is made);
 * new_path: the link itself. */
NEEDLE_SYS_EXIT_HANDLER_TYPED(file_symlink_exit) {
  if (ret != 0 || needle_current_filtered()) {
    return 0;
  }
  struct file_op op = file_op_of(FILE_KIND_SYMLINK, sys);
  struct file_src target = user_src(FILE_AT_FDCWD, sys, 0);
  target.raw = 1;
  struct file_src link;
  if (sys->nr == (sys->abi == NEEDLE_SYS_ABI_NATIVE ? FILE_NR64_SYMLINK : FILE_NR32_SYMLINK)) {
    link = user_src(FILE_AT_FDCWD, sys, 1);
  } else {
    link = user_src(NEEDLE_SYS_INT(sys, 1), sys, 2);
  }
  return file_emit(&op, &target, &link, typed);
}

/* ---- io_uring --------------------------------------------------------------------------- */

/* Submission (the request is prepared: its names are the kernel's copies). Path operations are
 * built now and kept until their completion. */
static __always_inline int file_uring_submit(struct io_kiocb* req) {
  __u8 opcode = BPF_CORE_READ(req, opcode);
  if (opcode != FILE_IORING_OP_RENAMEAT && opcode != FILE_IORING_OP_UNLINKAT &&
      opcode != FILE_IORING_OP_LINKAT && opcode != FILE_IORING_OP_SYMLINKAT) {
    return 0;
  }
  if (needle_current_filtered()) {
    return 0;
  }
  struct file_op op = {.syscall = opcode, .route = FILE_ROUTE_IO_URING};
  struct file_src path = {}, new_path = {};
  path.kernel = 1;
  new_path.kernel = 1;
  int two = 1;
  void* cmd = &req->cmd;
  if (opcode == FILE_IORING_OP_UNLINKAT) {
    struct io_unlink* un = cmd;
    op.kind = FILE_KIND_UNLINK;
    path.dirfd = BPF_CORE_READ(un, dfd);
    path.name = BPF_CORE_READ(un, filename, name);
    op.op_flags = BPF_CORE_READ(un, flags);
    two = 0;
  } else if (opcode == FILE_IORING_OP_SYMLINKAT) {
    /* io_symlinkat keeps the target in oldpath and the link in newpath/new_dfd */
    struct io_link* sl = cmd;
    op.kind = FILE_KIND_SYMLINK;
    path.raw = 1;
    path.name = BPF_CORE_READ(sl, oldpath, name);
    new_path.dirfd = BPF_CORE_READ(sl, new_dfd);
    new_path.name = BPF_CORE_READ(sl, newpath, name);
  } else if (opcode == FILE_IORING_OP_LINKAT) {
    struct io_link* ln = cmd;
    op.kind = FILE_KIND_LINK;
    path.dirfd = BPF_CORE_READ(ln, old_dfd);
    path.name = BPF_CORE_READ(ln, oldpath, name);
    new_path.dirfd = BPF_CORE_READ(ln, new_dfd);
    new_path.name = BPF_CORE_READ(ln, newpath, name);
    op.op_flags = BPF_CORE_READ(ln, flags);
  } else {
    struct io_rename* rn = cmd;
    op.kind = FILE_KIND_RENAME;
    path.dirfd = BPF_CORE_READ(rn, old_dfd);
    path.name = BPF_CORE_READ(rn, oldpath, name);
    new_path.dirfd = BPF_CORE_READ(rn, new_dfd);
    new_path.name = BPF_CORE_READ(rn, newpath, name);
    op.op_flags = BPF_CORE_READ(rn, flags);
  }
  struct file_scratch* s = file_scratch();
  if (!s) {
    return 0;
  }
  __u32 size = file_build_record(s, &op, &path, two ? &new_path : NULL, 0);
  if (size == 0 || size > FILE_BUF_SIZE) {
    return 0;
  }
  s->p.size = size;
  s->p.reserved = 0;
  __u64 key = (__u64)req;
  bpf_map_update_elem(&file_uring_pending, &key, &s->p, BPF_ANY);
  return 0;
}

/* Completion: an open's file is in the fd table now (current shares it: the submitter, or an
 * io-wq or SQPOLL thread of its process); a path operation emits what its submit built. */
static __always_inline int file_uring_complete(struct io_kiocb* req, int res) {
  __u8 opcode = BPF_CORE_READ(req, opcode);
  if (opcode == FILE_IORING_OP_OPENAT || opcode == FILE_IORING_OP_OPENAT2) {
    if (res < 0) {
      return 0;
    }
    struct io_open* open = (void*)&req->cmd;
    if (BPF_CORE_READ(open, file_slot) != 0) {
      return 0;   /* a direct descriptor (fixed file table), not in the fd table: README */
    }
    __u32 flags = (__u32)BPF_CORE_READ(open, how.flags);
    __u32 mode = (__u32)BPF_CORE_READ(open, how.mode);
    struct file* file = needle_current_file(res);
    return file_open_done(file, flags, mode, opcode, 0, FILE_ROUTE_IO_URING, 0);
  }
  if (opcode != FILE_IORING_OP_RENAMEAT && opcode != FILE_IORING_OP_UNLINKAT &&
      opcode != FILE_IORING_OP_LINKAT && opcode != FILE_IORING_OP_SYMLINKAT) {
    return 0;
  }
  __u64 key = (__u64)req;
  struct file_pending* p = bpf_map_lookup_elem(&file_uring_pending, &key);
  if (!p) {
    return 0;
  }
  __u32 size = p->size;
  if (res == 0 && size >= sizeof(struct file_record) && size <= FILE_BUF_SIZE) {
    needle_output(p->buf, size);
  }
  bpf_map_delete_elem(&file_uring_pending, &key);
  return 0;
}

SEC("?tp_btf/io_uring_submit_req")
int BPF_PROG(file_uring_submit_tp_btf, struct io_kiocb* req) {
  return file_uring_submit(req);
}

SEC("?raw_tp/io_uring_submit_req")
int BPF_PROG(file_uring_submit_raw_tp, struct io_kiocb* req) {
  return file_uring_submit(req);
}

SEC("?tp/io_uring/io_uring_submit_req")
int file_uring_submit_tp(struct trace_event_raw_io_uring_submit_req* ctx) {
  return file_uring_submit((struct io_kiocb*)ctx->req);
}

SEC("?tp_btf/io_uring_complete")
int BPF_PROG(file_uring_complete_tp_btf, struct io_ring_ctx* rctx, void* req,
             struct io_uring_cqe* cqe) {
  return file_uring_complete((struct io_kiocb*)req, BPF_CORE_READ(cqe, res));
}

SEC("?raw_tp/io_uring_complete")
int BPF_PROG(file_uring_complete_raw_tp, struct io_ring_ctx* rctx, void* req,
             struct io_uring_cqe* cqe) {
  return file_uring_complete((struct io_kiocb*)req, BPF_CORE_READ(cqe, res));
}

SEC("?tp/io_uring/io_uring_complete")
int file_uring_complete_tp(struct trace_event_raw_io_uring_complete* ctx) {
  return file_uring_complete((struct io_kiocb*)ctx->req, ctx->res);
}
