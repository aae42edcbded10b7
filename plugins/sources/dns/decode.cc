#include "decode.h"

#include <cstring>
#include <string>

#include "dns_record.h"
#include "needle/ip.h"
#include "needle/record.h"

static_assert(sizeof(dns_packet_record) == 144, "dns_packet_record layout");
static_assert(offsetof(dns_packet_record, cookie) == 88, "dns_packet_record layout");
static_assert(offsetof(dns_packet_record, saddr) == 96, "dns_packet_record layout");
static_assert(offsetof(dns_packet_record, sport) == 128, "dns_packet_record layout");
static_assert(offsetof(dns_packet_record, flags) == 132, "dns_packet_record layout");
static_assert(offsetof(dns_packet_record, exe_len) == 140, "dns_packet_record layout");

namespace needle::dns {

Result<Packet> decode_packet(std::span<const std::byte> raw) {
  if (raw.size() < sizeof(dns_packet_record)) {
    return make_error("dns record of " + std::to_string(raw.size()) + " bytes is shorter than " +
                      std::to_string(sizeof(dns_packet_record)));
  }
  dns_packet_record rec;
  std::memcpy(&rec, raw.data(), sizeof rec);
  if (rec.hdr.kind != DNS_KIND_PACKET) {
    return make_error("dns record of unknown kind " + std::to_string(rec.hdr.kind));
  }
  if (rec.hdr.version != DNS_RECORD_VERSION) {
    return make_error("dns record version " + std::to_string(rec.hdr.version) + ", expected " +
                      std::to_string(DNS_RECORD_VERSION));
  }
  size_t need = sizeof rec + size_t{rec.exe_len} + rec.data_len;
  if (rec.hdr.size < need || rec.hdr.size > raw.size()) {
    return make_error("dns record size " + std::to_string(rec.hdr.size) + " does not hold its " +
                      std::to_string(need) + " bytes (" + std::to_string(raw.size()) +
                      " in the ring)");
  }
  if (rec.exe_len > DNS_EXE_MAX || rec.data_len > DNS_CAPTURE_MAX || rec.data_len == 0 ||
      rec.data_len > rec.payload_len) {
    return make_error("dns record lengths out of bounds: exe " + std::to_string(rec.exe_len) +
                      ", data " + std::to_string(rec.data_len) + " of " +
                      std::to_string(rec.payload_len));
  }
  Packet p;
  p.task = rec.hdr.task;
  p.boot_ns = rec.hdr.boot_ns;
  p.cookie = rec.cookie;
  p.has_process = (rec.flags & DNS_F_PROCESS) != 0;
  p.exe_truncated = (rec.flags & DNS_F_EXE_TRUNCATED) != 0;
  p.egress = (rec.flags & DNS_F_EGRESS) != 0;
  p.ipv6 = (rec.flags & DNS_F_IPV6) != 0;
  p.tcp = (rec.flags & DNS_F_TCP) != 0;
  std::memcpy(p.saddr.data(), rec.saddr, sizeof rec.saddr);
  std::memcpy(p.daddr.data(), rec.daddr, sizeof rec.daddr);
  p.sport = rec.sport;
  p.dport = rec.dport;
  p.payload_len = rec.payload_len;
  const auto* tail = reinterpret_cast<const char*>(raw.data()) + sizeof rec;
  p.exe = std::string_view(tail, rec.exe_len);
  p.data = raw.subspan(sizeof rec + rec.exe_len, rec.data_len);
  return p;
}

Parsed parse_packet(const Packet& p, Message& msg) {
  Parsed out;
  std::span<const std::byte> bytes = p.data;
  bool whole = !p.capture_cut();
  if (p.tcp) {
    bool complete = false;
    ParseError e = tcp_message(p.data, bytes, complete);
    if (e != ParseError::kNone) {
      msg.error = e;
      out.error = e;
      return out;
    }
    whole = complete;
  }
  ParseError e = parse(bytes, msg);
  if (e != ParseError::kNone && msg.ran_out && !whole) {
    out.truncated = true;  // the capture ended first: not the message's fault
  } else {
    out.error = e;
  }
  return out;
}

std::string_view format_ip(std::span<const std::byte, 16> addr, bool ipv6,
                           std::span<char, 48> buf) {
  static_assert(decltype(buf)::extent >= kIpTextMax);
  const auto* a = reinterpret_cast<const uint8_t*>(addr.data());
  const size_t n = ipv6 ? format_ipv6(a, buf.data()) : format_ipv4(a, buf.data());
  return std::string_view(buf.data(), n);
}

}  // namespace needle::dns
