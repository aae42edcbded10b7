// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Kernel side of the `network` source: connect, accept and listen of TCP and UDP sockets over
 * IPv4 and IPv6, with the addresses taken from the kernel's socket (struct sock), never from the
 * caller's sockaddr. Routes: the syscalls of both ABIs through the shared dispatcher, ia32
 * socketcall(2), and io_uring's CONNECT and ACCEPT. Record layout: bpf/include/net_record.h. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "needle/bpf/needle.bpf.h"
#include "needle/bpf/syscalls.h"
#include "net_record.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

_Static_assert(sizeof(struct net_record) == NET_RECORD_SIZE, "net_record layout");

#define NET_AF_INET 2
#define NET_AF_INET6 10
#define NET_IPPROTO_TCP 6
#define NET_IPPROTO_UDP 17
#define NET_EINPROGRESS 115
#define NET_SOCKFS_MAGIC 0x534F434B

/* The sock behind a socket file, or NULL for any other file. `typed`: read directly
 * (NEEDLE_TYPED, a "+typed" rung), else through bpf_probe_read_kernel. */
static __always_inline struct sock* net_sock_of(struct file* file, const int typed) {
  if (!file) {
    return NULL;
  }
  if (typed) {
    struct file* f = NEEDLE_TYPED(file, file);
    if (f->f_inode->i_sb->s_magic != NET_SOCKFS_MAGIC) {
      return NULL;
    }
    struct socket* sock = NEEDLE_TYPED(socket, f->private_data);
    return sock ? sock->sk : NULL;
  }
  if (BPF_CORE_READ(file, f_inode, i_sb, s_magic) != NET_SOCKFS_MAGIC) {
    return NULL;
  }
  struct socket* sock = BPF_CORE_READ(file, private_data);
  return sock ? BPF_CORE_READ(sock, sk) : NULL;
}

/* The addresses and ports of `sk` into `rec` (family set). */
static __always_inline void net_addresses(struct net_record* rec, struct sock* sk,
                                          const int typed) {
  __builtin_memset(rec->local_addr, 0, sizeof(rec->local_addr));
  __builtin_memset(rec->remote_addr, 0, sizeof(rec->remote_addr));
  struct sock_common* c = &sk->__sk_common;   /* typed: direct loads through it */
  rec->local_port = typed ? c->skc_num : BPF_CORE_READ(sk, __sk_common.skc_num);
  rec->remote_port = bpf_ntohs(typed ? c->skc_dport : BPF_CORE_READ(sk, __sk_common.skc_dport));
  if (rec->family == NET_AF_INET) {
    __u32 local = typed ? c->skc_rcv_saddr : BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
    __u32 remote = typed ? c->skc_daddr : BPF_CORE_READ(sk, __sk_common.skc_daddr);
    __builtin_memcpy(rec->local_addr, &local, 4);
    __builtin_memcpy(rec->remote_addr, &remote, 4);
  } else if (typed) {
    __u64 words[4] = {((__u64*)&c->skc_v6_rcv_saddr)[0], ((__u64*)&c->skc_v6_rcv_saddr)[1],
                      ((__u64*)&c->skc_v6_daddr)[0], ((__u64*)&c->skc_v6_daddr)[1]};
    __builtin_memcpy(rec->local_addr, &words[0], 16);
    __builtin_memcpy(rec->remote_addr, &words[2], 16);
  } else {
    BPF_CORE_READ_INTO(&rec->local_addr, sk, __sk_common.skc_v6_rcv_saddr);
    BPF_CORE_READ_INTO(&rec->remote_addr, sk, __sk_common.skc_v6_daddr);
  }
}

/* Emits a record for `sk` (TCP or UDP over IPv4/IPv6 only). */
static __always_inline int net_emit(struct sock* sk, __u16 kind, __u32 flags, __u16 syscall,
                                    __u8 abi, __u8 route, const int typed) {
  if (!sk) {
    return 0;
  }
  __u16 family = typed ? sk->__sk_common.skc_family : BPF_CORE_READ(sk, __sk_common.skc_family);
  if (family != NET_AF_INET && family != NET_AF_INET6) {
    return 0;
  }
  __u16 protocol = typed ? sk->sk_protocol : BPF_CORE_READ(sk, sk_protocol);
  if (protocol != NET_IPPROTO_TCP && protocol != NET_IPPROTO_UDP) {
    return 0;
  }
  if (needle_current_filtered()) {
    return 0;
  }
  struct net_record* rec = needle_reserve(sizeof(*rec));
  if (!rec) {
    return 0;
  }
  needle_fill_header(&rec->hdr, kind, NET_RECORD_VERSION, sizeof(*rec));
  rec->flags = flags;
  rec->family = family;
  rec->protocol = protocol;
  rec->syscall = syscall;
  rec->abi = abi;
  rec->route = route;
  net_addresses(rec, sk, typed);
  needle_submit(rec);
  return 0;
}

static __always_inline int net_emit_fd(int fd, __u16 kind, __u32 flags, __u16 syscall, __u8 abi,
                                       __u8 route, const int typed) {
  struct file* file = needle_current_file(fd);
  return net_emit(net_sock_of(file, typed), kind, flags, syscall, abi, route, typed);
}

/* connect: success, or a non-blocking connect under way (its addresses are already chosen). */
NEEDLE_SYS_EXIT_HANDLER_TYPED(net_connect_exit) {
  if (ret != 0 && ret != -NET_EINPROGRESS) {
    return 0;
  }
  return net_emit_fd(NEEDLE_SYS_INT(sys, 0), NET_KIND_CONNECT,
                     ret ? NET_F_IN_PROGRESS : 0, (__u16)sys->nr, (__u8)sys->abi,
                     NET_ROUTE_SYSCALL, typed);
}

NEEDLE_SYS_EXIT_HANDLER_TYPED(net_accept_exit) {
  if (ret < 0) {
    return 0;
  }
  return net_emit_fd((int)ret, NET_KIND_ACCEPT, 0, (__u16)sys->nr, (__u8)sys->abi,
                     NET_ROUTE_SYSCALL, typed);
}

NEEDLE_SYS_EXIT_HANDLER_TYPED(net_listen_exit) {
  if (ret != 0) {
    return 0;
  }
  return net_emit_fd(NEEDLE_SYS_INT(sys, 0), NET_KIND_LISTEN, 0, (__u16)sys->nr, (__u8)sys->abi,
                     NET_ROUTE_SYSCALL, typed);
}

/* ia32 socketcall(call, args): the fd is the first 32-bit word of the caller's argument block,
 * read at exit (accept's fd is the return value). */
NEEDLE_SYS_EXIT_HANDLER_TYPED(net_socketcall_exit) {
  __u32 call = (__u32)sys->args[0];
  __u32 fd = 0;
  if (call == NET_SOCKETCALL_ACCEPT || call == NET_SOCKETCALL_ACCEPT4) {
    if (ret < 0) {
      return 0;
    }
    return net_emit_fd((int)ret, NET_KIND_ACCEPT, 0, (__u16)call, NEEDLE_SYS_ABI_COMPAT,
                       NET_ROUTE_SOCKETCALL, typed);
  }
  if (call != NET_SOCKETCALL_CONNECT && call != NET_SOCKETCALL_LISTEN) {
    return 0;
  }
  if (ret != 0 && !(call == NET_SOCKETCALL_CONNECT && ret == -NET_EINPROGRESS)) {
    return 0;
  }
  if (bpf_probe_read_user(&fd, sizeof(fd), NEEDLE_SYS_PTR(sys, 1)) != 0) {
    return 0;
  }
  return net_emit_fd((int)fd, call == NET_SOCKETCALL_CONNECT ? NET_KIND_CONNECT : NET_KIND_LISTEN,
                     ret ? NET_F_IN_PROGRESS : 0, (__u16)call, NEEDLE_SYS_ABI_COMPAT,
                     NET_ROUTE_SOCKETCALL, typed);
}

/* ---- io_uring --------------------------------------------------------------------------- */

static __always_inline int net_uring_complete(struct io_kiocb* req, int res) {
  __u8 opcode = BPF_CORE_READ(req, opcode);
  if (opcode == NET_IORING_OP_CONNECT) {
    if (res != 0) {
      return 0;
    }
    return net_emit(net_sock_of(BPF_CORE_READ(req, file), 0), NET_KIND_CONNECT, 0, opcode, 0,
                    NET_ROUTE_IO_URING, 0);
  }
  if (opcode == NET_IORING_OP_ACCEPT) {
    struct io_accept* accept = (void*)&req->cmd;
    if (res < 0 || BPF_CORE_READ(accept, file_slot) != 0) {
      return 0;   /* failed, or into a fixed-file slot (not in the fd table) */
    }
    return net_emit_fd(res, NET_KIND_ACCEPT, 0, opcode, 0, NET_ROUTE_IO_URING, 0);
  }
  return 0;
}

SEC("?tp_btf/io_uring_complete")
int BPF_PROG(net_uring_complete_tp_btf, struct io_ring_ctx* rctx, void* req,
             struct io_uring_cqe* cqe) {
  return net_uring_complete((struct io_kiocb*)req, BPF_CORE_READ(cqe, res));
}

SEC("?raw_tp/io_uring_complete")
int BPF_PROG(net_uring_complete_raw_tp, struct io_ring_ctx* rctx, void* req,
             struct io_uring_cqe* cqe) {
  return net_uring_complete((struct io_kiocb*)req, BPF_CORE_READ(cqe, res));
}

SEC("?tp/io_uring/io_uring_complete")
int net_uring_complete_tp(struct trace_event_raw_io_uring_complete* ctx) {
  return net_uring_complete((struct io_kiocb*)ctx->req, ctx->res);
}
