// Decoding of the `dns` source's ring records (bpf/include/dns_record.h) into the fields of a
// dns.query / dns.response event. Pure: bytes in, a Packet out; no host, no kernel, no allocation
// on success (the DNS message is parsed into the caller's reusable dns::Message).
#ifndef NEEDLE_PLUGINS_SOURCES_DNS_DECODE_H
#define NEEDLE_PLUGINS_SOURCES_DNS_DECODE_H

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "dns_message.h"
#include "needle/bpf/record.h"
#include "needle/result.h"

namespace needle::dns {

/// One decoded packet record. Views point into the bytes given to decode_packet and are valid as
/// long as those are (for a ring record: during the decode callback).
struct Packet {
  needle_task_ctx task{};  // the socket's owner; meaningful only when has_process
  uint64_t boot_ns = 0;
  uint64_t cookie = 0;
  bool has_process = false;
  bool exe_truncated = false;
  bool egress = false;  // sent by this host
  bool ipv6 = false;
  bool tcp = false;
  std::array<std::byte, 16> saddr{};
  std::array<std::byte, 16> daddr{};
  uint16_t sport = 0;
  uint16_t dport = 0;
  std::string_view exe;
  std::span<const std::byte> data;  // the payload prefix the kernel copied
  uint32_t payload_len = 0;         // the payload's full size in the packet
  bool capture_cut() const { return data.size() < payload_len; }
};

/// Checks the record's header, sizes and bounds; fails with a message naming what is wrong.
Result<Packet> decode_packet(std::span<const std::byte> raw);

/// What parsing the packet's DNS message gave.
struct Parsed {
  ParseError error = ParseError::kNone;  // a malformed message (counted); kNone otherwise
  bool truncated = false;  // the message is longer than the capture: answers may be missing
};

/// Parses the DNS message a packet carries (after the TCP length prefix for TCP) into `msg`.
/// A message cut short by the capture bound is `truncated`, not an error.
Parsed parse_packet(const Packet& p, Message& msg);

/// Formats a packet address ("127.0.0.1", "::1") into `buf`.
std::string_view format_ip(std::span<const std::byte, 16> addr, bool ipv6, std::span<char, 48> buf);

}  // namespace needle::dns

#endif  // NEEDLE_PLUGINS_SOURCES_DNS_DECODE_H
