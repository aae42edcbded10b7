/* Test helper of network_source_test: performs one socket operation through exactly the route
 * named on the command line (raw syscall(2), or ia32 socketcall(2)), on a socket the test created
 * and left open across the exec. Built twice: for x86_64 and, with gcc -m32, for the ia32 compat
 * ABI, where SYS_* are the ia32 numbers and socketcall exists.
 *
 *   net_routes <route> <fd> [<ip> <port>]   prints its pid; exit 0 on success, 1 with a message
 *
 * Routes: listen, connect, accept, accept4, socketcall:listen, socketcall:connect,
 * socketcall:accept, socketcall:accept4. A connect of a non-blocking socket that is under way
 * (EINPROGRESS) counts as success. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/net.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The peer address `ip`:`port` (IPv4 or IPv6 by its text) into `ss`; returns its length. */
static socklen_t peer(const char* ip, const char* port, struct sockaddr_storage* ss) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in* a4 = (struct sockaddr_in*)ss;
  struct sockaddr_in6* a6 = (struct sockaddr_in6*)ss;
  if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((unsigned short)atoi(port));
    return sizeof *a4;
  }
  if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((unsigned short)atoi(port));
    return sizeof *a6;
  }
  fprintf(stderr, "not an IP address: %s\n", ip);
  exit(2);
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s <route> <fd> [<ip> <port>]\n", argv[0]);
    return 2;
  }
  const char* op = argv[1];
  const int fd = atoi(argv[2]);
  struct sockaddr_storage ss;
  socklen_t len = 0;
  if (strstr(op, "connect") != NULL) {
    if (argc < 5) {
      fprintf(stderr, "%s needs <ip> <port>\n", op);
      return 2;
    }
    len = peer(argv[3], argv[4], &ss);
  }
  long r = -1;
  errno = ENOSYS;
  if (strcmp(op, "listen") == 0) {
    r = syscall(SYS_listen, fd, 8);
  } else if (strcmp(op, "connect") == 0) {
    r = syscall(SYS_connect, fd, &ss, len);
  } else if (strcmp(op, "accept") == 0) {
#ifdef SYS_accept
    r = syscall(SYS_accept, fd, NULL, NULL);
#endif
  } else if (strcmp(op, "accept4") == 0) {
    r = syscall(SYS_accept4, fd, NULL, NULL, SOCK_CLOEXEC);
  } else if (strncmp(op, "socketcall:", 11) == 0) {
#ifdef SYS_socketcall
    /* The multiplexer's argument block: one unsigned long (32 bits here) per argument. */
    unsigned long args[4] = {(unsigned long)fd, 0, 0, 0};
    int call = -1;
    if (strcmp(op + 11, "listen") == 0) {
      call = SYS_LISTEN;
      args[1] = 8;
    } else if (strcmp(op + 11, "connect") == 0) {
      call = SYS_CONNECT;
      args[1] = (unsigned long)&ss;
      args[2] = len;
    } else if (strcmp(op + 11, "accept") == 0) {
      call = SYS_ACCEPT;
    } else if (strcmp(op + 11, "accept4") == 0) {
      call = SYS_ACCEPT4;
      args[3] = SOCK_CLOEXEC;
    }
    if (call < 0) {
      fprintf(stderr, "unknown route %s\n", op);
      return 2;
    }
    r = syscall(SYS_socketcall, call, args);
#endif
  } else {
    fprintf(stderr, "unknown route %s\n", op);
    return 2;
  }
  if (r < 0 && !(errno == EINPROGRESS && strstr(op, "connect") != NULL)) {
    fprintf(stderr, "%s %d: %s\n", op, fd, strerror(errno));
    return 1;
  }
  printf("%d\n", (int)getpid());
  return 0;
}
