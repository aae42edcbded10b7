/* Test helper of ipc_source_test: performs one ipc operation through exactly the syscall named on
 * the command line (raw syscall(2), no libc wrapper choosing another route). Built twice: for
 * x86_64 and, with gcc -m32, for the ia32 compat ABI, where SYS_* are the ia32 numbers.
 *
 *   ipc_routes <syscall> <args...>   prints its pid (process_vm: and its target's); exit 0 on
 *                                    success, 1 with a message otherwise
 *
 *   kill|tkill|rt_sigqueueinfo|pidfd_send_signal <pid> <sig>
 *   tgkill|rt_tgsigqueueinfo <tgid> <tid> <sig>
 *   ptrace <pid>          PTRACE_ATTACH, waits for the stop, PTRACE_DETACH, then PTRACE_SEIZE
 *                         (left to the exit to undo)
 *   process_vm <text>     forks a child and writes <text> into it with process_vm_writev, then
 *                         reads it back with process_vm_readv (a 32-bit iovec cannot reach the
 *                         test's 64-bit processes)
 *   memfd_create <name>   with MFD_CLOEXEC | MFD_ALLOW_SEALING */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_target[64] = "before";

static int fail(const char* what) {
  fprintf(stderr, "%s: %s\n", what, strerror(errno));
  return 1;
}

/* Queued signal info as sigqueue(3) fills it: the kernel refuses a non-negative si_code from user
 * space for another process. */
static siginfo_t queued(int sig) {
  siginfo_t info;
  memset(&info, 0, sizeof info);
  info.si_signo = sig;
  info.si_code = SI_QUEUE;
  info.si_pid = getpid();
  info.si_uid = getuid();
  return info;
}

static int process_vm(const char* text) {
  const size_t n = strlen(text) + 1;
  if (n > sizeof g_target) {
    fprintf(stderr, "text longer than %zu bytes\n", sizeof g_target);
    return 2;
  }
  int gate[2];
  if (pipe(gate) != 0) {
    return fail("pipe");
  }
  pid_t child = fork();
  if (child == 0) {
    /* Waits until the parent closes the pipe: the child ends without a signal to report. */
    char c;
    close(gate[1]);
    _exit(read(gate[0], &c, 1) == 0 ? 0 : 1);
  }
  close(gate[0]);
  if (child < 0) {
    return fail("fork");
  }
  /* fork: g_target has the same address in the child. */
  struct iovec local = {(void*)text, n};
  struct iovec remote = {g_target, n};
  long w = syscall(SYS_process_vm_writev, child, &local, 1, &remote, 1, 0);
  char back[sizeof g_target] = {0};
  struct iovec into = {back, n};
  long r = w == (long)n ? syscall(SYS_process_vm_readv, child, &into, 1, &remote, 1, 0) : -1;
  int err = errno;
  close(gate[1]);
  waitpid(child, NULL, 0);
  errno = err;
  if (w != (long)n || r != (long)n) {
    return fail(w != (long)n ? "process_vm_writev" : "process_vm_readv");
  }
  if (strcmp(back, text) != 0) {
    fprintf(stderr, "process_vm_readv read back '%s'\n", back);
    return 1;
  }
  printf("%d %d\n", (int)getpid(), (int)child);
  return 0;
}

static int ptrace_child(pid_t pid) {
  if (syscall(SYS_ptrace, PTRACE_ATTACH, pid, 0, 0) != 0) {
    return fail("PTRACE_ATTACH");
  }
  if (waitpid(pid, NULL, 0) != pid) {
    return fail("waitpid");
  }
  if (syscall(SYS_ptrace, PTRACE_DETACH, pid, 0, 0) != 0) {
    return fail("PTRACE_DETACH");
  }
  if (syscall(SYS_ptrace, PTRACE_SEIZE, pid, 0, 0) != 0) {
    return fail("PTRACE_SEIZE");
  }
  printf("%d\n", (int)getpid());
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s <syscall> <args...>\n", argv[0]);
    return 2;
  }
  const char* op = argv[1];
  const int a = atoi(argv[2]);
  const int b = argc > 3 ? atoi(argv[3]) : 0;
  const int c = argc > 4 ? atoi(argv[4]) : 0;
  if (strcmp(op, "process_vm") == 0) {
    return process_vm(argv[2]);
  }
  if (strcmp(op, "ptrace") == 0) {
    return ptrace_child(a);
  }
  long r = -1;
  if (strcmp(op, "memfd_create") == 0) {
    r = syscall(SYS_memfd_create, argv[2], MFD_CLOEXEC | MFD_ALLOW_SEALING);
  } else if (strcmp(op, "kill") == 0) {
    r = syscall(SYS_kill, a, b);
  } else if (strcmp(op, "tkill") == 0) {
    r = syscall(SYS_tkill, a, b);
  } else if (strcmp(op, "tgkill") == 0) {
    r = syscall(SYS_tgkill, a, b, c);
  } else if (strcmp(op, "rt_sigqueueinfo") == 0) {
    siginfo_t info = queued(b);
    r = syscall(SYS_rt_sigqueueinfo, a, b, &info);
  } else if (strcmp(op, "rt_tgsigqueueinfo") == 0) {
    siginfo_t info = queued(c);
    r = syscall(SYS_rt_tgsigqueueinfo, a, b, c, &info);
  } else if (strcmp(op, "pidfd_send_signal") == 0) {
    int pidfd = (int)syscall(SYS_pidfd_open, a, 0);
    if (pidfd < 0) {
      return fail("pidfd_open");
    }
    r = syscall(SYS_pidfd_send_signal, pidfd, b, NULL, 0);
  } else {
    fprintf(stderr, "unknown syscall %s\n", op);
    return 2;
  }
  if (r < 0) {
    return fail(op);
  }
  printf("%d\n", (int)getpid());
  return 0;
}
