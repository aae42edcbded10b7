/* Test helper of file_source_test: performs one file operation through exactly the syscall named
 * on the command line (raw syscall(2), no libc wrapper choosing another route). Built twice: for
 * x86_64 and, with gcc -m32, for the ia32 compat ABI, where SYS_* are the ia32 numbers.
 *
 *   file_routes <syscall> <args...>      exit 0 on success, 1 with a message otherwise
 *
 * Paths are passed as given; directory fds are opened from a path argument first. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

struct open_how_compat {
  unsigned long long flags;
  unsigned long long mode;
  unsigned long long resolve;
};

static int dirfd_of(const char* path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "open %s: %s\n", path, strerror(errno));
    exit(1);
  }
  return fd;
}

static int fd_of(const char* path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "open %s: %s\n", path, strerror(errno));
    exit(1);
  }
  return fd;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s <syscall> <args...>\n", argv[0]);
    return 2;
  }
  const char* op = argv[1];
  const char* a = argv[2];
  const char* b = argc > 3 ? argv[3] : "";
  const char* c = argc > 4 ? argv[4] : "";
  long r = -1;
  if (strcmp(op, "open") == 0) {
#ifdef SYS_open
    r = syscall(SYS_open, a, O_CREAT | O_WRONLY | O_CLOEXEC, 0640);
#endif
  } else if (strcmp(op, "creat") == 0) {
#ifdef SYS_creat
    r = syscall(SYS_creat, a, 0640);
#endif
  } else if (strcmp(op, "openat") == 0) {   /* openat <dir> <name> */
    r = syscall(SYS_openat, dirfd_of(a), b, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  } else if (strcmp(op, "openat2") == 0) {  /* openat2 <dir> <name> */
    struct open_how_compat how = {O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600, 0};
    r = syscall(SYS_openat2, dirfd_of(a), b, &how, sizeof how);
  } else if (strcmp(op, "open_rdonly") == 0) {
    r = syscall(SYS_openat, AT_FDCWD, a, O_RDONLY | O_CLOEXEC);
  } else if (strcmp(op, "rename") == 0) {
#ifdef SYS_rename
    r = syscall(SYS_rename, a, b);
#endif
  } else if (strcmp(op, "renameat") == 0) { /* renameat <dir> <old> <new> */
#ifdef SYS_renameat
    int d = dirfd_of(a);
    r = syscall(SYS_renameat, d, b, d, c);
#endif
  } else if (strcmp(op, "renameat2") == 0) {
    int d = dirfd_of(a);
    r = syscall(SYS_renameat2, d, b, d, c, 1 /* RENAME_NOREPLACE */);
  } else if (strcmp(op, "unlink") == 0) {
#ifdef SYS_unlink
    r = syscall(SYS_unlink, a);
#endif
  } else if (strcmp(op, "unlinkat") == 0) { /* unlinkat <dir> <name> */
    r = syscall(SYS_unlinkat, dirfd_of(a), b, 0);
  } else if (strcmp(op, "rmdir") == 0) {
#ifdef SYS_rmdir
    r = syscall(SYS_rmdir, a);
#endif
  } else if (strcmp(op, "chmod") == 0) {
#ifdef SYS_chmod
    r = syscall(SYS_chmod, a, 0604);
#endif
  } else if (strcmp(op, "fchmod") == 0) {
    r = syscall(SYS_fchmod, fd_of(a), 0605);
  } else if (strcmp(op, "fchmodat") == 0) { /* fchmodat <dir> <name> */
    r = syscall(SYS_fchmodat, dirfd_of(a), b, 0606);
  } else if (strcmp(op, "fchmodat2") == 0) {
    r = syscall(SYS_fchmodat2, dirfd_of(a), b, 0607, 0);
  } else if (strcmp(op, "chown") == 0) {
#ifdef SYS_chown
    r = syscall(SYS_chown, a, 1, 2);
#endif
  } else if (strcmp(op, "fchown") == 0) {
    r = syscall(SYS_fchown, fd_of(a), 3, -1);
  } else if (strcmp(op, "lchown") == 0) {
#ifdef SYS_lchown
    r = syscall(SYS_lchown, a, -1, 4);
#endif
  } else if (strcmp(op, "chown32") == 0) {
#ifdef SYS_chown32
    r = syscall(SYS_chown32, a, 5, 6);
#endif
  } else if (strcmp(op, "fchownat") == 0) { /* fchownat <dir> <name> */
    r = syscall(SYS_fchownat, dirfd_of(a), b, 7, 8, 0);
  } else if (strcmp(op, "link") == 0) {
#ifdef SYS_link
    r = syscall(SYS_link, a, b);
#endif
  } else if (strcmp(op, "linkat") == 0) {   /* linkat <dir> <old> <new> */
    int d = dirfd_of(a);
    r = syscall(SYS_linkat, d, b, d, c, 0);
  } else if (strcmp(op, "symlink") == 0) {
#ifdef SYS_symlink
    r = syscall(SYS_symlink, a, b);
#endif
  } else if (strcmp(op, "symlinkat") == 0) { /* symlinkat <target> <dir> <name> */
    r = syscall(SYS_symlinkat, a, dirfd_of(b), c);
  } else {
    fprintf(stderr, "unknown syscall %s\n", op);
    return 2;
  }
  if (r < 0) {
    fprintf(stderr, "%s %s: %s\n", op, a, strerror(errno));
    return 1;
  }
  return 0;
}
