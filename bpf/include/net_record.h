/* Ring records of the `network` source (bpf/network.bpf.c -> plugins/sources/network). Shared by
 * the BPF program and the plugin's decoder: fixed widths, explicit padding, checked on both sides. */
#ifndef NEEDLE_NET_RECORD_H
#define NEEDLE_NET_RECORD_H

#include "needle/bpf/record.h"

#define NET_RECORD_VERSION 1

/* Record kinds (append-only, never reused). */
#define NET_KIND_CONNECT 1
#define NET_KIND_ACCEPT 2
#define NET_KIND_LISTEN 3

/* net_record.flags */
#define NET_F_IN_PROGRESS (1u << 0)   /* a non-blocking connect that returned EINPROGRESS */

/* net_record.route */
#define NET_ROUTE_SYSCALL 0
#define NET_ROUTE_SOCKETCALL 1        /* ia32 socketcall(2); `syscall` is its call number */
#define NET_ROUTE_IO_URING 2          /* `syscall` is the IORING_OP_* opcode */

/* One fixed-size record. Addresses and ports are the socket's own (struct sock), local and
 * remote, in network byte order for addresses and host order for ports. */
struct net_record {
  struct needle_record_header hdr;
  __u32 flags;         /* NET_F_* */
  __u16 family;        /* AF_INET (2) or AF_INET6 (10) */
  __u16 protocol;      /* IPPROTO_TCP (6) or IPPROTO_UDP (17) */
  __u16 local_port;
  __u16 remote_port;
  __u16 syscall;       /* see route */
  __u8 abi;            /* NEEDLE_SYSCALL_NATIVE or NEEDLE_SYSCALL_COMPAT */
  __u8 route;          /* NET_ROUTE_* */
  __u8 local_addr[16]; /* IPv4: the first 4 bytes */
  __u8 remote_addr[16];
};

#define NET_RECORD_SIZE 136

/* Syscall numbers, per ABI (x86_64, ia32). */
#define NET_NR64_CONNECT 42
#define NET_NR64_ACCEPT 43
#define NET_NR64_ACCEPT4 288
#define NET_NR64_LISTEN 50
#define NET_NR32_CONNECT 362
#define NET_NR32_ACCEPT4 364
#define NET_NR32_LISTEN 363
#define NET_NR32_SOCKETCALL 102
/* socketcall(2) call numbers */
#define NET_SOCKETCALL_CONNECT 3
#define NET_SOCKETCALL_LISTEN 4
#define NET_SOCKETCALL_ACCEPT 5
#define NET_SOCKETCALL_ACCEPT4 18
/* io_uring opcodes */
#define NET_IORING_OP_ACCEPT 13
#define NET_IORING_OP_CONNECT 16

#endif /* NEEDLE_NET_RECORD_H */
