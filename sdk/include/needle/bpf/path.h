/* Kernel side of the Needle SDK: path resolution and "fileless" checks for struct file / struct
 * path. Include after vmlinux.h, bpf/bpf_helpers.h and bpf/bpf_core_read.h.
 *
 * bpf_d_path is not callable from tracepoints or iterators, so the path is rebuilt here the way
 * the kernel's prepend_path() does: walk the dentries up to their mount's root, cross into the
 * parent mount at the mountpoint (struct mount via container_of on the vfsmount), and stop at the
 * root of the mount namespace (a mount that is its own parent), or at the calling task's root
 * (fs->root), as d_path does: a chrooted process's paths are the ones it sees, and a container's
 * pivot_root gives container paths. (A task iterator runs as needle, so the snapshot's paths are
 * relative to needle's root.) A pseudo file (alloc_file_pseudo: memfd,
 * anon inodes) resolves to "/<name>" as in d_path; one whose name the kernel generates on demand
 * (pipe:[N], socket:[N]) resolves to "" (length 0). Unlinked files keep their last name (no
 * " (deleted)" suffix; see needle_file_fileless). Needs bpf_loop (Linux 5.17).
 *
 * The result has no NUL and no trailing slash; the root is "/". A path with more than
 * NEEDLE_PATH_MAX_DEPTH components, or longer than NEEDLE_PATH_MAX - 1 bytes, keeps its leaf end:
 * the top components are dropped, the result has no leading "/" (so it cannot be mistaken for an
 * absolute path) and *flags gets NEEDLE_PATH_TRUNCATED_DEPTH or NEEDLE_PATH_TRUNCATED_LEN. */
#ifndef NEEDLE_BPF_PATH_H
#define NEEDLE_BPF_PATH_H

#define NEEDLE_PATH_MAX 4096        /* the result is at most NEEDLE_PATH_MAX - 1 bytes */
#define NEEDLE_PATH_MAX_DEPTH 64    /* components; a power of two */
#define NEEDLE_PATH_NAME_MAX 255    /* a component longer than this is cut to it */
/* Room `out` must have: the verifier cannot prove that a component written at an offset below
 * NEEDLE_PATH_MAX ends inside it, so the buffer needs one component of slack. The result is at
 * most NEEDLE_PATH_MAX - 1 bytes; a short name copied as whole words (NEEDLE_PATH_COPIED) may
 * also write up to 39 bytes of its dentry's name buffer past the result's end, inside the slack,
 * which callers do not read. */
#define NEEDLE_PATH_BUF_SIZE (NEEDLE_PATH_MAX + NEEDLE_PATH_NAME_MAX + 1)

#define NEEDLE_PATH_TRUNCATED_DEPTH (1u << 0)
#define NEEDLE_PATH_TRUNCATED_LEN (1u << 1)

/* Per-call working memory (too big for the 512-byte BPF stack): put it in a per-CPU map next to
 * the output buffer. Contents are meaningless between calls. The loop state lives here rather
 * than on the stack on purpose: the verifier does not track values through map memory, so the
 * bpf_loop callbacks converge after one pass instead of being re-verified for every depth and
 * offset they could see. */
#define NEEDLE_PATH_INLINE_WORDS 5      /* a dentry's inline name: DNAME_INLINE_LEN 40 on 64-bit */
#define NEEDLE_PATH_COPIED (1u << 31)   /* in len[]: the bytes are in inline_name[] */

struct needle_path_scratch {
  __u64 name[NEEDLE_PATH_MAX_DEPTH];   /* const unsigned char* of each component, leaf first */
  __u32 len[NEEDLE_PATH_MAX_DEPTH];    /* | NEEDLE_PATH_COPIED */
  /* A short name's bytes, copied from its dentry during the walk with direct loads (typed
   * walk, Linux 6.14+ layout), so that writing it costs no helper call. */
  __u64 inline_name[NEEDLE_PATH_MAX_DEPTH][NEEDLE_PATH_INLINE_WORDS];
  __u64 dentry;       /* walk position */
  __u64 vfsmnt;
  __u64 mnt;
  __u32 depth;        /* components recorded */
  __u32 total;        /* bytes of "/" + name for the components still to write */
  __u32 done;         /* the walk reached a root */
  __u32 pos;          /* bytes written */
  __u32 truncated;    /* the first written component gets no leading "/" */
  __u32 dropped;      /* top components were dropped for length */
  __u32 pseudo;       /* the walk ended at a disconnected dentry */
  __u32 reserved;
  __u64 root_dentry;  /* the calling task's root (fs->root): the walk stops there, as d_path */
  __u64 root_vfsmnt;
  __u64 mnt_root;     /* the current mount's root dentry, read once per mount */
};

/* A dentry's d_parent and d_name (hash_len, name), which the kernel keeps side by side: one
 * read instead of three where the layout allows (checked against the running kernel's BTF). */
struct needle_dentry_head {
  __u64 parent;
  __u64 hash_len;
  __u64 name;
};

static __always_inline int needle_dentry_head(struct dentry* dentry, struct needle_dentry_head* h,
                                              __u32* len) {
  __u64 parent_off = bpf_core_field_offset(struct dentry, d_parent);
  if (bpf_core_field_offset(struct dentry, d_name) == parent_off + 8 &&
      bpf_core_field_offset(struct qstr, name) == 8 &&
      bpf_core_field_offset(struct qstr, len) <= 4) {
    if (bpf_probe_read_kernel(h, sizeof(*h), (const char*)dentry + parent_off) != 0) {
      return -1;
    }
    *len = (__u32)(h->hash_len >> (8 * bpf_core_field_offset(struct qstr, len)));
    return 0;
  }
  h->parent = (__u64)BPF_CORE_READ(dentry, d_parent);
  h->name = (__u64)BPF_CORE_READ(dentry, d_name.name);
  *len = BPF_CORE_READ(dentry, d_name.len);
  return 0;
}

struct needle_path_loop {
  struct needle_path_scratch* s;
  char* out;
};

/* One step up: into the parent mount at a mount root, else to the parent dentry. `typed`: the
 * dentry and mount are read directly (NEEDLE_TYPED), else through bpf_probe_read_kernel. */
static __always_inline long needle_path_walk(void* arg, const int typed) {
  struct needle_path_scratch* s = ((struct needle_path_loop*)arg)->s;
  struct dentry* dentry = (struct dentry*)s->dentry;
  struct mount* mnt = (struct mount*)s->mnt;
  if (!dentry || !mnt) {
    s->done = 1;
    return 1;
  }
  if (s->dentry == s->root_dentry && s->vfsmnt == s->root_vfsmnt) {
    s->done = 1;     /* the task's root (a chroot stops the path here, as d_path does) */
    return 1;
  }
  if (s->dentry == s->mnt_root) {
    struct mount* m = typed ? NEEDLE_TYPED(mount, mnt) : mnt;
    struct mount* parent = typed ? m->mnt_parent : BPF_CORE_READ(mnt, mnt_parent);
    if (!parent || parent == mnt) {
      s->done = 1;   /* root of the namespace, or of a detached / internal mount */
      return 1;
    }
    s->dentry = (__u64)(typed ? m->mnt_mountpoint : BPF_CORE_READ(mnt, mnt_mountpoint));
    s->mnt = (__u64)parent;
    s->vfsmnt = (__u64)parent + bpf_core_field_offset(struct mount, mnt);
    s->mnt_root = (__u64)(typed ? NEEDLE_TYPED(mount, parent)->mnt.mnt_root
                                : BPF_CORE_READ(parent, mnt.mnt_root));
    return 0;
  }
  __u32 depth = s->depth;
  if (depth >= NEEDLE_PATH_MAX_DEPTH) {
    return 1;        /* too deep: done stays 0 */
  }
  struct needle_dentry_head head;
  __u32 len = 0;
  if (typed) {
    struct dentry* d = NEEDLE_TYPED(dentry, dentry);
    head.parent = (__u64)d->d_parent;
    head.name = (__u64)d->d_name.name;
    len = d->d_name.len;
  } else if (needle_dentry_head(dentry, &head, &len) != 0) {
    s->done = 1;
    return 1;
  }
  struct dentry* up = (struct dentry*)head.parent;
  if (!up || up == dentry) {
    /* A disconnected dentry, the root of its own tree: a pseudo file (memfd, pipe, socket)
     * made by alloc_file_pseudo(). d_path() shows these as "/" + name, so keep the name as the
     * only component; pipes and sockets have none (the kernel generates theirs), which leaves
     * the path empty rather than a misleading "/". */
    s->done = 1;
    s->pseudo = 1;
    up = dentry;
  }
  if (len > NEEDLE_PATH_NAME_MAX) {
    len = NEEDLE_PATH_NAME_MAX;
  }
  if (len == 0) {
    return 1;        /* only a pseudo root has no name */
  }
  __u32 slot = depth & (NEEDLE_PATH_MAX_DEPTH - 1);
  s->name[slot] = head.name;
  s->len[slot] = len;
  if (typed && bpf_core_field_exists(struct dentry, d_shortname) &&
      bpf_core_field_size(struct dentry, d_shortname) == 8 * NEEDLE_PATH_INLINE_WORDS &&
      len < 8 * NEEDLE_PATH_INLINE_WORDS) {
    /* A short name lives in the dentry itself (d_name.name points at d_shortname): five
     * direct loads instead of a bpf_probe_read_kernel call when the path is written. */
    struct dentry* d = NEEDLE_TYPED(dentry, dentry);
    if (head.name == (__u64)dentry + bpf_core_field_offset(struct dentry, d_shortname)) {
      s->inline_name[slot][0] = d->d_shortname.words[0];
      s->inline_name[slot][1] = d->d_shortname.words[1];
      s->inline_name[slot][2] = d->d_shortname.words[2];
      s->inline_name[slot][3] = d->d_shortname.words[3];
      s->inline_name[slot][4] = d->d_shortname.words[4];
      s->len[slot] = len | NEEDLE_PATH_COPIED;
    }
  }
  s->depth = depth + 1;
  s->total += len + 1;
  s->dentry = (__u64)up;
  return s->pseudo ? 1 : 0;
}

/* Walk steps per bpf_loop callback: a callback's return costs more than a step here (the
 * return thunk of a CPU with return-stack mitigations makes it a mispredicted return), and most
 * paths take a few steps, so one call takes up to four. Each step unrolled into the callback
 * adds to what the verifier checks once per call site: four emit steps per call (below) more
 * than doubled it, for about 10 ns, so the emit loop stays at one component per call. */
#define NEEDLE_PATH_WALK_STEPS_PER_CALL 4

static __always_inline long needle_path_walk_steps(void* arg, const int typed) {
#pragma unroll
  for (__u32 k = 0; k < NEEDLE_PATH_WALK_STEPS_PER_CALL; k++) {
    if (needle_path_walk(arg, typed)) {
      return 1;
    }
  }
  return 0;
}

static long needle_path_walk_step(__u32 index, void* arg) {
  return needle_path_walk_steps(arg, 0);
}

static long needle_path_walk_step_typed(__u32 index, void* arg) {
  return needle_path_walk_steps(arg, 1);
}

/* Writes component `depth - 1 - index` (root side first), dropping top components while the
 * rest does not fit. */
static long needle_path_emit_step(__u32 index, void* arg) {
  struct needle_path_scratch* s = ((struct needle_path_loop*)arg)->s;
  char* out = ((struct needle_path_loop*)arg)->out;
  __u32 depth = s->depth;
  if (index >= depth) {
    return 1;
  }
  __u32 slot = (depth - 1 - index) & (NEEDLE_PATH_MAX_DEPTH - 1);
  __u32 len = s->len[slot];
  __u32 copied = len & NEEDLE_PATH_COPIED;
  len &= ~NEEDLE_PATH_COPIED;
  if (len > NEEDLE_PATH_NAME_MAX) {
    len = NEEDLE_PATH_NAME_MAX;
  }
  if (s->total > NEEDLE_PATH_MAX - 1) {
    s->total -= len + 1;
    s->truncated = 1;
    s->dropped = 1;
    return 0;
  }
  __u32 pos = s->pos;
  if (!(s->truncated && pos == 0)) {
    out[pos & (NEEDLE_PATH_MAX - 1)] = '/';
    pos += 1;
  }
  if (pos + len > NEEDLE_PATH_MAX - 1) {
    return 1;        /* cannot happen (total was checked); keeps the bound obvious */
  }
  if (copied) {
    /* All five words: the bytes past the name land after the path's end (in the buffer's
     * slack), where the next component or nothing is written over them. */
    __u64* to = (__u64*)(out + (pos & (NEEDLE_PATH_MAX - 1)));
    to[0] = s->inline_name[slot][0];
    to[1] = s->inline_name[slot][1];
    to[2] = s->inline_name[slot][2];
    to[3] = s->inline_name[slot][3];
    to[4] = s->inline_name[slot][4];
    pos += len;
  } else if (bpf_probe_read_kernel(out + (pos & (NEEDLE_PATH_MAX - 1)), len,
                                   (const void*)s->name[slot]) == 0) {
    pos += len;
  }
  s->pos = pos;
  return 0;
}

/* The current task's root (fs->root) into the scratch, with direct loads; a global function,
 * checked once per program by the verifier (see needle_current_fd_file). */
__attribute__((noinline)) int needle_current_root(struct needle_path_scratch* s) {
  if (!s) {
    return 0;
  }
  struct fs_struct* fs = bpf_get_current_task_btf()->fs;
  s->root_dentry = fs ? (__u64)fs->root.dentry : 0;
  s->root_vfsmnt = fs ? (__u64)fs->root.mnt : 0;
  return 0;
}

/* Resolves (vfsmnt, dentry) into `out` (NEEDLE_PATH_BUF_SIZE writable bytes) and returns its
 * length (0 when dentry or vfsmnt is NULL). ORs NEEDLE_PATH_TRUNCATED_* into *flags. `typed`
 * (a constant): 1 in a program of a "+typed" rung, where the walk's dentries and mounts load
 * directly; the *_typed functions below take it, the others are their plain form. */
static __always_inline __u32 needle_path_resolve_typed(struct vfsmount* vfsmnt,
                                                       struct dentry* dentry, char* out,
                                                       struct needle_path_scratch* scratch,
                                                       __u32* flags, const int typed) {
  if (!vfsmnt || !dentry) {
    return 0;
  }
  scratch->dentry = (__u64)dentry;
  scratch->vfsmnt = (__u64)vfsmnt;
  scratch->mnt = (__u64)vfsmnt - bpf_core_field_offset(struct mount, mnt);
  scratch->depth = 0;
  scratch->total = 0;
  scratch->done = 0;
  scratch->pos = 0;
  scratch->truncated = 0;
  scratch->dropped = 0;
  scratch->pseudo = 0;
  scratch->mnt_root = (__u64)(typed ? NEEDLE_TYPED(vfsmount, vfsmnt)->mnt_root
                                     : BPF_CORE_READ(vfsmnt, mnt_root));
  needle_current_root(scratch);
  struct needle_path_loop loop = {.s = scratch, .out = out};
  /* Every step either records a component or crosses a mount: 2x depth bounds both. */
  bpf_loop(NEEDLE_PATH_MAX_DEPTH * 2 / NEEDLE_PATH_WALK_STEPS_PER_CALL,
           typed ? needle_path_walk_step_typed : needle_path_walk_step, &loop, 0);
  if (!scratch->done) {
    scratch->truncated = 1;
    *flags |= NEEDLE_PATH_TRUNCATED_DEPTH;
  }
  if (scratch->depth == 0) {
    if (scratch->truncated || scratch->pseudo) {
      return 0;
    }
    out[0] = '/';
    return 1;
  }
  bpf_loop(NEEDLE_PATH_MAX_DEPTH, needle_path_emit_step, &loop, 0);
  if (scratch->dropped) {
    *flags |= NEEDLE_PATH_TRUNCATED_LEN;
  }
  return scratch->pos & (NEEDLE_PATH_MAX - 1);
}

static __always_inline __u32 needle_path_resolve(struct vfsmount* vfsmnt, struct dentry* dentry,
                                                 char* out, struct needle_path_scratch* scratch,
                                                 __u32* flags) {
  return needle_path_resolve_typed(vfsmnt, dentry, out, scratch, flags, 0);
}

/* The path of a `struct path*` (a kernel pointer, e.g. &task->fs->pwd). */
static __always_inline __u32 needle_path_of_typed(const struct path* path, char* out,
                                                  struct needle_path_scratch* scratch,
                                                  __u32* flags, const int typed) {
  if (!path) {
    return 0;
  }
  if (typed) {
    const struct path* p = NEEDLE_TYPED(path, path);
    return needle_path_resolve_typed(p->mnt, p->dentry, out, scratch, flags, 1);
  }
  return needle_path_resolve(BPF_CORE_READ(path, mnt), BPF_CORE_READ(path, dentry), out, scratch,
                             flags);
}

static __always_inline __u32 needle_path_of(const struct path* path, char* out,
                                            struct needle_path_scratch* scratch, __u32* flags) {
  return needle_path_of_typed(path, out, scratch, flags, 0);
}

/* The path of an open file. */
static __always_inline __u32 needle_file_path_typed(struct file* file, char* out,
                                                    struct needle_path_scratch* scratch,
                                                    __u32* flags, const int typed) {
  if (!file) {
    return 0;
  }
  if (typed) {
    struct file* f = NEEDLE_TYPED(file, file);
    return needle_path_resolve_typed(f->f_path.mnt, f->f_path.dentry, out, scratch, flags, 1);
  }
  return needle_path_resolve(BPF_CORE_READ(file, f_path.mnt), BPF_CORE_READ(file, f_path.dentry),
                             out, scratch, flags);
}

static __always_inline __u32 needle_file_path(struct file* file, char* out,
                                              struct needle_path_scratch* scratch, __u32* flags) {
  return needle_file_path_typed(file, out, scratch, flags, 0);
}

#define NEEDLE_FILE_MEMFD (1u << 0)     /* a memfd: shmem/hugetlbfs file named "memfd:..." */
#define NEEDLE_FILE_DELETED (1u << 1)   /* no link left in any directory (unlinked, O_TMPFILE) */

#define NEEDLE_TMPFS_MAGIC 0x01021994UL
#define NEEDLE_HUGETLBFS_MAGIC 0x958458f6UL

/* Whether `file` lives nowhere on disk: NEEDLE_FILE_MEMFD, NEEDLE_FILE_DELETED or 0. A memfd
 * (never linked) reports only NEEDLE_FILE_MEMFD. `typed`: the inode, its superblock and the name
 * pointer load directly (NEEDLE_TYPED, a "+typed" rung), else through bpf_probe_read_kernel. */
static __always_inline __u32 needle_file_fileless_typed(struct file* file, const int typed) {
  if (!file) {
    return 0;
  }
  struct file* f = typed ? NEEDLE_TYPED(file, file) : file;
  struct inode* inode = typed ? f->f_inode : BPF_CORE_READ(file, f_inode);
  unsigned long magic = typed ? inode->i_sb->s_magic : BPF_CORE_READ(inode, i_sb, s_magic);
  if (magic == NEEDLE_TMPFS_MAGIC || magic == NEEDLE_HUGETLBFS_MAGIC) {
    const unsigned char* name =
        typed ? f->f_path.dentry->d_name.name : BPF_CORE_READ(file, f_path.dentry, d_name.name);
    char prefix[8] = {};
    if (name && bpf_probe_read_kernel(prefix, 6, name) == 0 && prefix[0] == 'm' &&
        prefix[1] == 'e' && prefix[2] == 'm' && prefix[3] == 'f' && prefix[4] == 'd' &&
        prefix[5] == ':') {
      return NEEDLE_FILE_MEMFD;
    }
  }
  unsigned int nlink = 0;
  if (typed) {
    nlink = inode->__i_nlink;
  } else {
    BPF_CORE_READ_INTO(&nlink, inode, __i_nlink);
  }
  return nlink == 0 ? NEEDLE_FILE_DELETED : 0;
}

static __always_inline __u32 needle_file_fileless(struct file* file) {
  return needle_file_fileless_typed(file, 0);
}

#endif /* NEEDLE_BPF_PATH_H */
