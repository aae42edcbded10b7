/* Ring records of the `dns` source (bpf/dns.bpf.c -> plugins/sources/dns/decode.cc).
 *
 * One record per UDP or TCP packet with a payload, to or from a configured DNS port, as a
 * process of this host sends or receives it (the client side: a packet going to a DNS port, or
 * coming from one). The DNS message itself is parsed in user space.
 *
 *   struct dns_packet_record | exe (exe_len bytes) | payload prefix (data_len bytes)
 *
 * `hdr.task` is the process that owns the socket, as the connect/sendmsg hooks saw it (zero with
 * DNS_F_PROCESS clear when the socket predates needle or its owner is unknown). Fixed widths and
 * explicit padding only; decode.cc checks the layout with static_assert. Kinds are append-only
 * and never reused; a layout change bumps the version. */
#ifndef NEEDLE_DNS_RECORD_H
#define NEEDLE_DNS_RECORD_H

#include "needle/bpf/record.h"

#define DNS_RECORD_VERSION 1

#define DNS_KIND_PACKET 1

/* Bytes of L4 payload copied per packet (a power of two). A longer message is parsed as far as
 * it was captured; its answers are then marked truncated. */
#define DNS_CAPTURE_MAX 2048
/* Bytes of the owner's executable path kept per socket (a power of two); a longer path keeps its
 * leaf end and sets DNS_F_EXE_TRUNCATED. */
#define DNS_EXE_MAX 512

/* dns_packet_record.flags */
#define DNS_F_PROCESS (1u << 0)        /* hdr.task and exe describe the socket's owner */
#define DNS_F_EXE_TRUNCATED (1u << 1)  /* exe is the leaf end of a longer path */
#define DNS_F_EGRESS (1u << 2)         /* sent by this host (else received) */
#define DNS_F_IPV6 (1u << 3)           /* addresses are IPv6 (else IPv4 in the first 4 bytes) */
#define DNS_F_TCP (1u << 4)            /* TCP segment (else UDP datagram) */

struct dns_packet_record {
  struct needle_record_header hdr;
  __u64 cookie;         /* socket cookie (bpf_get_socket_cookie) */
  __u8 saddr[16];       /* the packet's source address */
  __u8 daddr[16];       /* the packet's destination address */
  __u16 sport;          /* host byte order */
  __u16 dport;
  __u32 flags;          /* DNS_F_* */
  __u32 payload_len;    /* L4 payload bytes the packet carries */
  __u16 exe_len;        /* bytes of exe after the fixed part (at most DNS_EXE_MAX) */
  __u16 data_len;       /* then the payload prefix (at most DNS_CAPTURE_MAX) */
};

#endif /* NEEDLE_DNS_RECORD_H */
