/* The workloads of tests/bench/overhead.sh: N operations of one kind in a tight loop, as fast as
 * one thread can, then one line
 *     <kind> <n> <seconds> <wall ns/op> <cpu ns/op> <pid>
 * where cpu is the user + system time of this process (all its threads) and of the children it
 * waited for (exec, fork): it holds the kernel-side cost of the BPF programs run in their
 * syscalls but not the time they waited for a CPU that needle's threads were using. pid is this
 * process (overhead.sh counts the events needle wrote for it).
 *
 *   exec            fork + execve /bin/true + wait (process.exec, .fork, .exit each)
 *   fork            fork + _exit + wait (process.fork, .exit each)
 *   open DIR        open O_RDONLY + close of one file in DIR (file.open each, read-only)
 *   file DIR        create+write, chmod, rename, unlink of a file in DIR (5 file events)
 *   connect         TCP connect + accept + close over 127.0.0.1 (net.connect, net.accept each)
 *   dns PORT        a DNS query over connected UDP to a responder thread on 127.0.0.1:PORT and
 *                   its answer, one round trip per op (dns.query, dns.response each)
 *   null            getppid(), a syscall no source claims: the syscall hooks' early exit
 *   tcp PORT        a bulk TCP stream, N x 64 KiB, to a reader thread on 127.0.0.1:PORT: the
 *                   per-packet cost of the packet programs on a port no source watches
 *   signal          kill(child, SIGURG) to a child that ignores it (ipc.signal each)
 *   cgroup DIR      mkdir + rmdir of a cgroup under DIR, a cgroup2 folder (container hooks) */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_of(int who) {
  struct rusage ru;
  getrusage(who, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* This process and the children it waited for: an exec's cost is paid by the child. */
static double cpu_now(void) { return cpu_of(RUSAGE_SELF) + cpu_of(RUSAGE_CHILDREN); }

static double t0, c0;

static void start_clock(void) {
  t0 = wall_now();
  c0 = cpu_now();
}

static int report(const char* kind, long n) {
  double secs = wall_now() - t0;
  double cpus = cpu_now() - c0;
  printf("%s %ld %.6f %.1f %.1f %d\n", kind, n, secs, secs * 1e9 / (double)n,
         cpus * 1e9 / (double)n, (int)getpid());
  return 0;
}

static int fail(const char* what) {
  perror(what);
  return 1;
}

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static int run_exec(long n) {
  char* const argv[] = {"/bin/true", NULL};
  char* const envp[] = {NULL};
  start_clock();
  for (long i = 0; i < n; ++i) {
    pid_t child = fork();
    if (child < 0) {
      return fail("fork");
    }
    if (child == 0) {
      execve(argv[0], argv, envp);
      _exit(127);
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "exec: /bin/true did not exit 0\n");
      return 1;
    }
  }
  return report("exec", n);
}

static int run_fork(long n) {
  start_clock();
  for (long i = 0; i < n; ++i) {
    pid_t child = fork();
    if (child < 0) {
      return fail("fork");
    }
    if (child == 0) {
      _exit(0);
    }
    waitpid(child, NULL, 0);
  }
  return report("fork", n);
}

static int run_open(long n, const char* dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/bench-open", dir);
  int fd = open(path, O_CREAT | O_WRONLY, 0600);
  if (fd < 0) {
    return fail(path);
  }
  close(fd);
  start_clock();
  for (long i = 0; i < n; ++i) {
    fd = open(path, O_RDONLY);
    if (fd < 0) {
      return fail(path);
    }
    close(fd);
  }
  report("open", n);
  unlink(path);
  return 0;
}

static int run_file(long n, const char* dir) {
  char a[4096], b[4096];
  snprintf(a, sizeof a, "%s/bench-a", dir);
  snprintf(b, sizeof b, "%s/bench-b", dir);
  start_clock();
  for (long i = 0; i < n; ++i) {
    int fd = open(a, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    if (fd < 0 || write(fd, "x", 1) != 1) {
      return fail(a);
    }
    close(fd);
    if (chmod(a, 0640) != 0 || rename(a, b) != 0 || unlink(b) != 0) {
      return fail(b);
    }
  }
  return report("file", n);
}

static int run_connect(long n) {
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = loopback(0);
  socklen_t len = sizeof a;
  if (bind(ls, (struct sockaddr*)&a, sizeof a) != 0 || listen(ls, 64) != 0 ||
      getsockname(ls, (struct sockaddr*)&a, &len) != 0) {
    return fail("listener");
  }
  start_clock();
  for (long i = 0; i < n; ++i) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr*)&a, sizeof a) != 0) {
      return fail("connect");
    }
    int s = accept(ls, NULL, NULL);
    close(s);
    close(c);
  }
  return report("connect", n);
}

static int dns_server = -1;

static void* dns_responder(void* arg) {
  (void)arg;
  unsigned char buf[512];
  /* The question back with one A answer, 10.0.0.1, TTL 30. */
  static const unsigned char answer[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 0, 0, 1};
  for (;;) {
    struct sockaddr_in from;
    socklen_t len = sizeof from;
    ssize_t got = recvfrom(dns_server, buf, sizeof buf - sizeof answer, 0,
                           (struct sockaddr*)&from, &len);
    if (got < 12) {
      continue;
    }
    buf[2] = 0x81;
    buf[3] = 0x80;
    buf[7] = 1;
    memcpy(buf + got, answer, sizeof answer);
    sendto(dns_server, buf, (size_t)got + sizeof answer, 0, (struct sockaddr*)&from, len);
  }
  return NULL;
}

static int run_dns(long n, int port) {
  dns_server = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = loopback(port);
  if (bind(dns_server, (struct sockaddr*)&a, sizeof a) != 0) {
    return fail("dns: bind the responder");
  }
  pthread_t t;
  pthread_create(&t, NULL, dns_responder, NULL);
  int c = socket(AF_INET, SOCK_DGRAM, 0);
  if (connect(c, (struct sockaddr*)&a, sizeof a) != 0) {
    return fail("dns: connect");
  }
  /* bench.needle. A IN */
  static const unsigned char query[] = {0x12, 0x34, 1,   0,   0,   1,   0,   0,   0, 0,
                                        0,    0,    5,   'b', 'e', 'n', 'c', 'h', 6, 'n',
                                        'e',  'e',  'd', 'l', 'e', 0,   0,   1,   0, 1};
  unsigned char buf[512];
  start_clock();
  for (long i = 0; i < n; ++i) {
    if (send(c, query, sizeof query, 0) != (ssize_t)sizeof query ||
        recv(c, buf, sizeof buf, 0) < 12) {
      return fail("dns round trip");
    }
  }
  return report("dns", n);
}

static void* tcp_reader(void* arg) {
  int c = accept(*(int*)arg, NULL, NULL);
  static char buf[1 << 16];
  while (c >= 0 && read(c, buf, sizeof buf) > 0) {
  }
  return NULL;
}

static int run_tcp(long n, int port) {
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = loopback(port);
  if (bind(ls, (struct sockaddr*)&a, sizeof a) != 0 || listen(ls, 1) != 0) {
    return fail("tcp: bind");
  }
  pthread_t t;
  pthread_create(&t, NULL, tcp_reader, &ls);
  int c = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(c, (struct sockaddr*)&a, sizeof a) != 0) {
    return fail("tcp: connect");
  }
  static char chunk[1 << 16];
  start_clock();
  for (long i = 0; i < n; ++i) {
    size_t off = 0;
    while (off < sizeof chunk) {
      ssize_t w = write(c, chunk + off, sizeof chunk - off);
      if (w <= 0) {
        return fail("tcp: write");
      }
      off += (size_t)w;
    }
  }
  shutdown(c, SHUT_WR);
  pthread_join(t, NULL);
  return report("tcp", n);
}

static int run_null(long n) {
  start_clock();
  for (long i = 0; i < n; ++i) {
    syscall(SYS_getppid);
  }
  return report("null", n);
}

static int run_signal(long n) {
  pid_t child = fork();
  if (child == 0) {
    signal(SIGURG, SIG_IGN);
    for (;;) {
      pause();
    }
  }
  usleep(10000);
  start_clock();
  for (long i = 0; i < n; ++i) {
    kill(child, SIGURG);
  }
  report("signal", n);
  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  return 0;
}

static int run_cgroup(long n, const char* dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/needle-bench-%d", dir, (int)getpid());
  start_clock();
  for (long i = 0; i < n; ++i) {
    if (mkdir(path, 0755) != 0 || rmdir(path) != 0) {
      return fail(path);
    }
  }
  return report("cgroup", n);
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr,
            "usage: %s exec|fork|connect|null|signal N | open|file|cgroup N DIR | dns|tcp N PORT\n",
            argv[0]);
    return 2;
  }
  const char* kind = argv[1];
  long n = atol(argv[2]);
  const char* arg = argc > 3 ? argv[3] : NULL;
  if (n <= 0) {
    fprintf(stderr, "N must be a positive count, not %s\n", argv[2]);
    return 2;
  }
  int needs_arg = strcmp(kind, "open") == 0 || strcmp(kind, "file") == 0 ||
                  strcmp(kind, "cgroup") == 0 || strcmp(kind, "dns") == 0 ||
                  strcmp(kind, "tcp") == 0;
  if (needs_arg && arg == NULL) {
    fprintf(stderr, "%s needs a third argument (a folder or a port)\n", kind);
    return 2;
  }
  if (strcmp(kind, "exec") == 0) return run_exec(n);
  if (strcmp(kind, "fork") == 0) return run_fork(n);
  if (strcmp(kind, "open") == 0) return run_open(n, arg);
  if (strcmp(kind, "file") == 0) return run_file(n, arg);
  if (strcmp(kind, "connect") == 0) return run_connect(n);
  if (strcmp(kind, "dns") == 0) return run_dns(n, atoi(arg));
  if (strcmp(kind, "null") == 0) return run_null(n);
  if (strcmp(kind, "tcp") == 0) return run_tcp(n, atoi(arg));
  if (strcmp(kind, "signal") == 0) return run_signal(n);
  if (strcmp(kind, "cgroup") == 0) return run_cgroup(n, arg);
  fprintf(stderr, "unknown workload %s\n", kind);
  return 2;
}
