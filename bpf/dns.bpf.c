// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Kernel side of the `dns` source: DNS packets of this host's processes, copied to the ring.
 *
 * Two kinds of programs, all attached to the cgroup2 root (NEEDLE_PROG_CGROUP), so they see every
 * process of the host:
 *
 * - cgroup_skb/egress and cgroup_skb/ingress see each IP packet a local socket sends or
 *   receives. A packet is copied when it is a UDP datagram or a TCP segment with a payload that
 *   goes TO a configured DNS port (a query) or comes FROM one (an answer): the client side. A
 *   DNS server on this host is therefore not reported for the queries it serves, only for those
 *   it forwards. The fast path reads the socket's connected peer port from the context and
 *   returns after a handful of instructions for any connected socket whose peer is not a DNS
 *   port (bulk TCP); only unconnected sockets make it read the packet's ports.
 *
 * - cgroup/connect4/6 and cgroup/sendmsg4/6 run in the process that connects a socket to a DNS
 *   port (TCP, connected UDP as glibc's resolver does) or sends an unconnected datagram to one.
 *   They store the process context and its executable's path in the socket's own storage
 *   (dns_owners, BPF_MAP_TYPE_SK_STORAGE); the skb programs, which run in softirq or any task's
 *   context, read it there to tie each packet to that process. The kernel frees it with the
 *   socket: no program runs when a socket closes, and no owner is ever evicted. A socket
 *   connected before needle started is reported without a process.
 *
 * The headers load directly from the packet (cgroup_skb: skb->data is the network header) when
 * they are in its linear part, else with bpf_skb_load_bytes; the payload prefix is copied with
 * bpf_skb_load_bytes, which never reads past the packet; the DNS message is parsed in user
 * space. A record is built in a per-CPU scratch slot and copied to the ring at its real size.
 * A program may be interrupted on its CPU by another that needs a slot (ingress in softirq
 * during a process-context egress; with full preemption, another task's egress or connect), so
 * each takes a free slot with a compare-and-swap and gives it back at the end; with every slot
 * taken the packet is counted as a drop (needle.gap). */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "dns_record.h"
#include "needle/bpf/needle.bpf.h"
#include "needle/bpf/path.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define DNS_AF_INET 2
#define DNS_AF_INET6 10
#define DNS_ETH_P_IP 0x0800
#define DNS_ETH_P_IPV6 0x86DD
#define DNS_IP_OFFSET_MASK 0x1fff
#define DNS_RECORD_MAX (sizeof(struct dns_packet_record) + DNS_EXE_MAX + DNS_CAPTURE_MAX)

_Static_assert(sizeof(struct dns_packet_record) == 144, "dns_packet_record layout");
_Static_assert((DNS_CAPTURE_MAX & (DNS_CAPTURE_MAX - 1)) == 0, "DNS_CAPTURE_MAX: power of two");
_Static_assert((DNS_EXE_MAX & (DNS_EXE_MAX - 1)) == 0, "DNS_EXE_MAX: power of two");

/* The configured ports (key `ports`) as a bitmap of 65536 bits; set by the plugin before load.
 * Default: 53. */
NEEDLE_CONFIG(__u64, dns_ports[1024], {[0] = 1ull << 53});

static __always_inline int dns_port_on(__u16 port) {
  return (dns_ports[(port >> 6) & 1023] >> (port & 63)) & 1;
}

#define DNS_OWNER_FILTERED (1u << 31)   /* the owner is excluded: report nothing for the socket */

/* What the connect/sendmsg hooks learned about a socket's owner. */
struct dns_sock_owner {
  struct needle_task_ctx task;
  __u32 flags;          /* DNS_F_EXE_TRUNCATED, DNS_OWNER_FILTERED */
  __u32 exe_len;
  char exe[DNS_EXE_MAX];
};

struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct dns_sock_owner);
} dns_owners SEC(".maps");

/* Scratch slots per CPU (see the top): an outer program and the ones that may interrupt it. */
#define DNS_SCRATCH_SLOTS 4

/* Each scratch value starts with this word: 1 while a program on the CPU builds in it. */
struct dns_slot {
  __u64 busy;   /* 64 bits: the atomics clang emits for BPF's default CPU version */
};

/* A free slot of `map` (a per-CPU array of DNS_SCRATCH_SLOTS values that start with struct
 * dns_slot), taken; NULL when every slot is in use. Give it back with dns_slot_put. */
static __always_inline void* dns_slot_take(void* map) {
  for (__u32 i = 0; i < DNS_SCRATCH_SLOTS; i++) {
    struct dns_slot* slot = bpf_map_lookup_elem(map, &i);
    if (slot && __sync_val_compare_and_swap(&slot->busy, 0, 1) == 0) {
      return slot;
    }
  }
  return NULL;
}

static __always_inline void dns_slot_put(void* taken) {
  __sync_lock_test_and_set(&((struct dns_slot*)taken)->busy, 0);
}

struct dns_owner_scratch {
  struct dns_slot slot;
  struct dns_sock_owner owner;
  char path[NEEDLE_PATH_BUF_SIZE];
  struct needle_path_scratch ps;
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, DNS_SCRATCH_SLOTS);
  __type(key, __u32);
  __type(value, struct dns_owner_scratch);
} dns_owner_scratch_map SEC(".maps");

/* ---- owners: connect4/6, sendmsg4/6 --------------------------------------------------------- */

/* Stores `o` as the owner of `sk`. A socket another thread or process used before (`known`)
 * gets a new storage rather than the old one overwritten: a packet program reading the old
 * owner on another CPU keeps it whole (the kernel frees it after such readers), where a copy in
 * place could hand it one process's pid with another's executable. */
static __always_inline void dns_store_owner(struct bpf_sock* sk, struct dns_sock_owner* known,
                                            const struct dns_sock_owner* o) {
  if (known) {
    bpf_sk_storage_delete(&dns_owners, sk);
  }
  bpf_sk_storage_get(&dns_owners, sk, (void*)o, BPF_SK_STORAGE_GET_F_CREATE);
}

/* Builds the calling process's owner entry for `sk` in `s` and stores it. */
static __always_inline void dns_fill_owner(struct bpf_sock* sk, struct dns_sock_owner* known,
                                           struct task_struct* task,
                                           struct dns_owner_scratch* s) {
  struct dns_sock_owner* o = &s->owner;
  o->flags = 0;
  o->exe_len = 0;
  if (needle_current_filtered()) {
    o->flags = DNS_OWNER_FILTERED;
    __builtin_memset(&o->task, 0, sizeof(o->task));
    dns_store_owner(sk, known, o);
    return;
  }
  needle_fill_current_ctx(&o->task);
  __u32 path_flags = 0;
  struct mm_struct* mm = task->mm;   /* direct loads: task is current's BTF pointer */
  struct file* exe = mm ? mm->exe_file : NULL;
  __u32 len = needle_file_path(exe, s->path, &s->ps, &path_flags);
  __u32 keep = len;
  if (keep > DNS_EXE_MAX) {
    keep = DNS_EXE_MAX;
    path_flags |= NEEDLE_PATH_TRUNCATED_LEN;
  }
  __u32 from = (len - keep) & (NEEDLE_PATH_MAX - 1);
  if (keep > 0 && bpf_probe_read_kernel(o->exe, keep, s->path + from) == 0) {
    o->exe_len = keep;
  }
  if (path_flags) {
    o->flags |= DNS_F_EXE_TRUNCATED;
  }
  dns_store_owner(sk, known, o);
}

static __always_inline void dns_remember(struct bpf_sock_addr* ctx) {
  __u32 proto = ctx->protocol;
  if (proto != IPPROTO_UDP && proto != IPPROTO_TCP) {
    return;
  }
  __u16 port = bpf_ntohs((__u16)ctx->user_port);
  if (!dns_port_on(port)) {
    return;
  }
  struct bpf_sock* sk = ctx->sk;
  if (!sk) {
    return;
  }
  struct task_struct* task = bpf_get_current_task_btf();
  __u32 tgid = task->tgid;   /* direct loads: task is a BTF pointer */
  __u32 pid = task->pid;
  struct dns_sock_owner* known = bpf_sk_storage_get(&dns_owners, sk, 0, 0);
  if (known && known->task.tgid == tgid && known->task.pid == pid) {
    return;   /* sendmsg on a socket this thread already used: nothing new */
  }
  struct dns_owner_scratch* s = dns_slot_take(&dns_owner_scratch_map);
  if (!s) {
    return;   /* every slot in use on this CPU: the socket's packets go without an owner */
  }
  dns_fill_owner(sk, known, task, s);
  dns_slot_put(s);
}

SEC("?cgroup/connect4")
int dns_connect4(struct bpf_sock_addr* ctx) {
  dns_remember(ctx);
  return 1;
}

SEC("?cgroup/connect6")
int dns_connect6(struct bpf_sock_addr* ctx) {
  dns_remember(ctx);
  return 1;
}

SEC("?cgroup/sendmsg4")
int dns_sendmsg4(struct bpf_sock_addr* ctx) {
  dns_remember(ctx);
  return 1;
}

SEC("?cgroup/sendmsg6")
int dns_sendmsg6(struct bpf_sock_addr* ctx) {
  dns_remember(ctx);
  return 1;
}

/* ---- packets: cgroup_skb egress and ingress ------------------------------------------------ */

struct dns_l4 {
  __u32 l4_off;        /* offset of the L4 header from the network header */
  __u32 proto;
  __u16 sport;
  __u16 dport;
  __u8 saddr[16];      /* the packet's addresses (IPv4: the first 4 bytes, the rest 0) */
  __u8 daddr[16];
};

/* Copies `len` (a constant) bytes at `off` of the packet, counted from its network header:
 * straight from the packet when they lie in its linear part (where the headers of any packet
 * the host builds are), else with bpf_skb_load_bytes. Header offsets stay below 128 bytes (an
 * IPv4 header with options, then 13 bytes of TCP). 0 on success. */
static __always_inline int dns_load(struct __sk_buff* skb, __u32 off, void* dst, const __u32 len) {
  off &= 127;
  void* data = (void*)(long)skb->data;
  void* end = (void*)(long)skb->data_end;
  if (data + off + len <= end) {
    __builtin_memcpy(dst, data + off, len);
    return 0;
  }
  return bpf_skb_load_bytes(skb, off, dst, len) != 0 ? -1 : 0;
}

/* Reads the IP header (addresses kept for the record) and the L4 ports. 0 when the packet is a
 * UDP datagram or TCP segment (the first fragment) whose ports are known. */
static __always_inline int dns_read_l4(struct __sk_buff* skb, __u16 eth_proto,
                                       struct dns_l4* l4) {
  if (eth_proto == DNS_ETH_P_IP) {
    struct iphdr ip;
    if (dns_load(skb, 0, &ip, sizeof ip) != 0) {
      return -1;
    }
    if (ip.ihl < 5 || (bpf_ntohs(ip.frag_off) & DNS_IP_OFFSET_MASK) != 0) {
      return -1;
    }
    l4->l4_off = ip.ihl * 4;
    l4->proto = ip.protocol;
    __builtin_memcpy(l4->saddr, &ip.saddr, 4);
    __builtin_memcpy(l4->daddr, &ip.daddr, 4);
  } else {
    struct ipv6hdr ip6;
    if (dns_load(skb, 0, &ip6, sizeof ip6) != 0) {
      return -1;
    }
    /* Extension headers are not walked: DNS packets do not carry them in practice. */
    l4->l4_off = sizeof ip6;
    l4->proto = ip6.nexthdr;
    __builtin_memcpy(l4->saddr, &ip6.saddr, 16);
    __builtin_memcpy(l4->daddr, &ip6.daddr, 16);
  }
  if (l4->proto != IPPROTO_UDP && l4->proto != IPPROTO_TCP) {
    return -1;
  }
  __be16 ports[2];
  if (dns_load(skb, l4->l4_off, ports, sizeof ports) != 0) {
    return -1;
  }
  l4->sport = bpf_ntohs(ports[0]);
  l4->dport = bpf_ntohs(ports[1]);
  return 0;
}

/* A packet's record is built here and copied into the ring at its real size: a ring
 * reservation must have a constant size, and reserving DNS_RECORD_MAX (about 2.7 KiB) for
 * records of a few hundred bytes let an 8 MiB ring hold only ~3,000 of them. */
struct dns_packet_scratch {
  struct dns_slot slot;
  __u8 buf[DNS_RECORD_MAX];
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, DNS_SCRATCH_SLOTS);
  __type(key, __u32);
  __type(value, struct dns_packet_scratch);
} dns_packet_scratch_map SEC(".maps");

/* Builds the record of a DNS packet in `rec` (a scratch slot) and copies it to the ring. */
static __always_inline void dns_record(struct __sk_buff* skb, int egress, __u16 eth_proto,
                                       const struct dns_l4* l4, __u32 payload_off,
                                       __u32 payload_len, struct dns_sock_owner* owner,
                                       struct dns_packet_record* rec) {
  __u8* tail = (__u8*)(rec + 1);
  __builtin_memset(rec, 0, sizeof(*rec));
  __builtin_memcpy(rec->saddr, l4->saddr, 16);
  __builtin_memcpy(rec->daddr, l4->daddr, 16);
  __u32 flags = 0;
  __u32 exe_len = 0;
  if (owner) {
    __builtin_memcpy(&rec->hdr.task, &owner->task, sizeof(rec->hdr.task));
    flags |= DNS_F_PROCESS | (owner->flags & DNS_F_EXE_TRUNCATED);
    exe_len = owner->exe_len;
    if (exe_len > DNS_EXE_MAX) {
      exe_len = DNS_EXE_MAX;
    }
    /* Whole 64-byte chunks with direct loads (the owner is map memory) rather than a
     * bpf_probe_read_kernel call: a call and its return cost more than the few words of a path.
     * What a last chunk copies past exe_len lies where the payload is written next, or past
     * the record's size. */
#pragma unroll
    for (__u32 i = 0; i < DNS_EXE_MAX / 64; i++) {
      if (i * 64 >= exe_len) {
        break;
      }
      __builtin_memcpy(tail + i * 64, owner->exe + i * 64, 64);
    }
  }
  __u32 cap = payload_len > DNS_CAPTURE_MAX ? DNS_CAPTURE_MAX : payload_len;
  /* payload_len >= 1 here, so this is cap itself, written so that the verifier sees 1..MAX
   * (clang may otherwise test a copy of the register it passes). */
  cap = ((cap - 1) & (DNS_CAPTURE_MAX - 1)) + 1;
  if (bpf_skb_load_bytes(skb, payload_off, tail + exe_len, cap) != 0) {
    return;
  }
  if (egress) {
    flags |= DNS_F_EGRESS;
  }
  if (eth_proto == DNS_ETH_P_IPV6) {
    flags |= DNS_F_IPV6;
  }
  if (l4->proto == IPPROTO_TCP) {
    flags |= DNS_F_TCP;
  }
  rec->cookie = bpf_get_socket_cookie(skb);
  rec->sport = l4->sport;
  rec->dport = l4->dport;
  rec->flags = flags;
  rec->payload_len = payload_len;
  rec->exe_len = exe_len;
  rec->data_len = cap;
  rec->hdr.kind = DNS_KIND_PACKET;
  rec->hdr.version = DNS_RECORD_VERSION;
  __u32 size = sizeof(*rec) + exe_len + cap;
  rec->hdr.size = size;
  rec->hdr.boot_ns = bpf_ktime_get_boot_ns();
  rec->hdr.source = needle_source_index;
  rec->hdr.cpu = bpf_get_smp_processor_id();
  /* The SDK's copy wakes the reader only when this record takes the unread data across
   * needle_wakeup_bytes (a wakeup per packet is a self-IPI, a VM exit on a guest). */
  needle_output(rec, size);
}

static __always_inline void dns_packet(struct __sk_buff* skb, int egress) {
  __u16 eth_proto = bpf_ntohs((__u16)skb->protocol);
  if (eth_proto != DNS_ETH_P_IP && eth_proto != DNS_ETH_P_IPV6) {
    return;
  }
  /* Fast path: a connected socket's peer port is in the context (network order, upper half). */
  __u16 peer = (__u16)bpf_ntohl(skb->remote_port);
  if (peer != 0 && !dns_port_on(peer)) {
    return;
  }
  struct dns_l4 l4 = {};
  if (dns_read_l4(skb, eth_proto, &l4) != 0) {
    return;
  }
  /* The client side: a query goes to a DNS port, an answer comes from one. */
  if (!dns_port_on(egress ? l4.dport : l4.sport)) {
    return;
  }
  __u32 payload_off = 0;
  __u32 payload_len = 0;
  __u32 skb_len = skb->len;
  if (l4.proto == IPPROTO_UDP) {
    struct udphdr udp;
    if (dns_load(skb, l4.l4_off, &udp, sizeof udp) != 0) {
      return;
    }
    payload_off = l4.l4_off + sizeof udp;
    __u32 ulen = bpf_ntohs(udp.len);
    payload_len = ulen > sizeof udp ? ulen - sizeof udp : 0;
  } else {
    __u8 doff_byte = 0;   /* data offset in the upper 4 bits of byte 12 */
    if (dns_load(skb, l4.l4_off + 12, &doff_byte, 1) != 0) {
      return;
    }
    payload_off = l4.l4_off + (doff_byte >> 4) * 4;
    payload_len = skb_len > payload_off ? skb_len - payload_off : 0;
  }
  if (payload_off >= skb_len) {
    return;
  }
  if (payload_len > skb_len - payload_off) {
    payload_len = skb_len - payload_off;
  }
  if (payload_len == 0) {
    return;   /* SYN, ACK, FIN: no DNS bytes */
  }
  struct dns_sock_owner* owner = NULL;
  struct bpf_sock* sk = skb->sk;
  if (sk) {
    sk = bpf_sk_fullsock(sk);
  }
  if (sk) {
    owner = bpf_sk_storage_get(&dns_owners, sk, 0, 0);
  }
  if (owner && (owner->flags & DNS_OWNER_FILTERED)) {
    return;
  }
  struct dns_packet_scratch* scratch = dns_slot_take(&dns_packet_scratch_map);
  if (!scratch) {
    needle_count_drop();   /* every slot in use on this CPU: counted, reported as needle.gap */
    return;
  }
  dns_record(skb, egress, eth_proto, &l4, payload_off, payload_len, owner,
             (struct dns_packet_record*)scratch->buf);
  dns_slot_put(scratch);
}

SEC("?cgroup_skb/egress")
int dns_egress(struct __sk_buff* skb) {
  dns_packet(skb, 1);
  return 1;
}

SEC("?cgroup_skb/ingress")
int dns_ingress(struct __sk_buff* skb) {
  dns_packet(skb, 0);
  return 1;
}
