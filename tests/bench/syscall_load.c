/* Load generator of tests/bench/source_overhead.sh: N operations of one kind as fast as one thread
 * can, then prints "<kind> <n> <seconds> <wall ns/op> <cpu ns/op>" (cpu: this process's user +
 * system time, which holds the kernel-side cost of BPF programs run in its syscalls and not the
 * time it waited for a CPU that needle's own threads were using). Kinds:
 *   file DIR   create+write+chmod+rename+unlink of a file in DIR (5 file syscalls and a close)
 *   open DIR   open O_RDONLY + close of a file in DIR (read-only: filtered in the kernel)
 *   null       getppid(), a syscall no source claims: the dispatcher's early return
 *   signal     kill(child, SIGURG) to a child that ignores it (ipc.signal each)
 *   tcp        connect + accept + close over 127.0.0.1 (net.connect and net.accept each) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double cpu_now(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s file|open|null|signal|tcp N [DIR]\n", argv[0]);
    return 2;
  }
  const char* kind = argv[1];
  long n = atol(argv[2]);
  const char* dir = argc > 3 ? argv[3] : "/tmp";
  char a[4096], b[4096];
  snprintf(a, sizeof a, "%s/load-a", dir);
  snprintf(b, sizeof b, "%s/load-b", dir);
  if (strcmp(kind, "open") == 0) {
    int fd = open(a, O_CREAT | O_WRONLY, 0600);
    if (fd < 0) {
      perror(a);
      return 1;
    }
    close(fd);
  }
  pid_t child = -1;
  if (strcmp(kind, "signal") == 0) {
    child = fork();
    if (child == 0) {
      signal(SIGURG, SIG_IGN);
      for (;;) {
        pause();
      }
    }
    usleep(10000);
  }
  int listener = -1;
  struct sockaddr_in addr = {0};
  if (strcmp(kind, "tcp") == 0) {
    listener = socket(AF_INET, SOCK_STREAM, 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(listener, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(listener, 64) != 0 ||
        getsockname(listener, (struct sockaddr*)&addr, &len) != 0) {
      perror("listener");
      return 1;
    }
  }
  double t0 = now();
  double c0 = cpu_now();
  for (long i = 0; i < n; i++) {
    if (strcmp(kind, "file") == 0) {
      int fd = open(a, O_CREAT | O_WRONLY | O_TRUNC, 0600);
      if (fd < 0 || write(fd, "x", 1) != 1) {
        perror(a);
        return 1;
      }
      close(fd);
      chmod(a, 0640);
      rename(a, b);
      unlink(b);
    } else if (strcmp(kind, "open") == 0) {
      int fd = open(a, O_RDONLY);
      close(fd);
    } else if (strcmp(kind, "signal") == 0) {
      kill(child, SIGURG);
    } else if (strcmp(kind, "tcp") == 0) {
      int c = socket(AF_INET, SOCK_STREAM, 0);
      if (connect(c, (struct sockaddr*)&addr, sizeof addr) != 0) {
        perror("connect");
        return 1;
      }
      int a = accept(listener, NULL, NULL);
      close(a);
      close(c);
    } else {
      syscall(SYS_getppid);
    }
  }
  double secs = now() - t0;
  double cpu = cpu_now() - c0;
  if (strcmp(kind, "open") == 0) {
    unlink(a);
  }
  if (child > 0) {
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
  }
  printf("%s %ld %.6f %.1f %.1f\n", kind, n, secs, secs * 1e9 / (double)n,
         cpu * 1e9 / (double)n);
  return 0;
}
