/* Load generator of tests/bench/net_overhead.sh: N operations of one kind, then prints
 * "<kind> <n> <seconds> <ns/op> <cpu-ns/op>" (wall time; then the CPU time of the whole
 * process, user + system, all threads). Everything stays on loopback. Kinds:
 *   dns PORT     a DNS query over connected UDP to a responder thread on 127.0.0.1:PORT and its
 *                answer (one round trip per op): the dns source's capture path
 *   tcp PORT     a bulk TCP stream of N x 64 KiB to 127.0.0.1:PORT (a sink thread reads it): the
 *                per-packet cost on a port the dns source does not watch (ns per 64 KiB)
 *   cgroup DIR   mkdir + rmdir of a cgroup under DIR (a cgroup2 folder): the container source's
 *                hooks */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void report(const char* kind, long n, double t0, double c0) {
  double secs = now() - t0;
  double cpus = cpu() - c0;
  printf("%s %ld %.6f %.1f %.1f\n", kind, n, secs, secs * 1e9 / (double)n, cpus * 1e9 / (double)n);
}

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static int server_fd = -1;

static void* dns_responder(void* arg) {
  (void)arg;
  unsigned char buf[512];
  for (;;) {
    struct sockaddr_in from;
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(server_fd, buf, sizeof buf, 0, (struct sockaddr*)&from, &len);
    if (n < 12) {
      continue;
    }
    /* The question back with one A answer. */
    unsigned char ans[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 0, 0, 1};
    buf[2] = 0x81;
    buf[3] = 0x80;
    buf[7] = 1;
    memcpy(buf + n, ans, sizeof ans);
    sendto(server_fd, buf, (size_t)n + sizeof ans, 0, (struct sockaddr*)&from, len);
  }
  return NULL;
}

static int run_dns(long n, int port) {
  server_fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = loopback(port);
  if (bind(server_fd, (struct sockaddr*)&a, sizeof a) != 0) {
    perror("bind");
    return 1;
  }
  pthread_t t;
  pthread_create(&t, NULL, dns_responder, NULL);
  int c = socket(AF_INET, SOCK_DGRAM, 0);
  if (connect(c, (struct sockaddr*)&a, sizeof a) != 0) {
    perror("connect");
    return 1;
  }
  static const unsigned char q[] = {0x12, 0x34, 1,   0,   0,   1,   0,   0,   0, 0,
                                    0,    0,    5,   'b', 'e', 'n', 'c', 'h', 6, 'n',
                                    'e',  'e',  'd', 'l', 'e', 0,   0,   1,   0, 1};
  unsigned char buf[512];
  double t0 = now();
  double c0 = cpu();
  for (long i = 0; i < n; ++i) {
    if (send(c, q, sizeof q, 0) != (ssize_t)sizeof q || recv(c, buf, sizeof buf, 0) < 12) {
      perror("dns round trip");
      return 1;
    }
  }
  report("dns", n, t0, c0);
  return 0;
}

static void* tcp_sink(void* arg) {
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
    perror("bind");
    return 1;
  }
  pthread_t t;
  pthread_create(&t, NULL, tcp_sink, &ls);
  int c = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(c, (struct sockaddr*)&a, sizeof a) != 0) {
    perror("connect");
    return 1;
  }
  static char chunk[1 << 16];
  double t0 = now();
  double c0 = cpu();
  for (long i = 0; i < n; ++i) {
    size_t off = 0;
    while (off < sizeof chunk) {
      ssize_t w = write(c, chunk + off, sizeof chunk - off);
      if (w <= 0) {
        perror("write");
        return 1;
      }
      off += (size_t)w;
    }
  }
  shutdown(c, SHUT_WR);
  pthread_join(t, NULL);
  report("tcp", n, t0, c0);
  return 0;
}

static int run_cgroup(long n, const char* dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/needle-bench-%d", dir, getpid());
  double t0 = now();
  double c0 = cpu();
  for (long i = 0; i < n; ++i) {
    if (mkdir(path, 0755) != 0 || rmdir(path) != 0) {
      perror(path);
      return 1;
    }
  }
  report("cgroup", n, t0, c0);
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s dns|tcp PORT N | cgroup DIR N\n", argv[0]);
    return 2;
  }
  long n = atol(argv[3]);
  if (strcmp(argv[1], "dns") == 0) {
    return run_dns(n, atoi(argv[2]));
  }
  if (strcmp(argv[1], "tcp") == 0) {
    return run_tcp(n, atoi(argv[2]));
  }
  if (strcmp(argv[1], "cgroup") == 0) {
    return run_cgroup(n, argv[2]);
  }
  fprintf(stderr, "unknown kind %s\n", argv[1]);
  return 2;
}
