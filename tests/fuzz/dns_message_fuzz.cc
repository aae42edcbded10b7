// libFuzzer target for the dns source's untrusted-input path: the DNS message parser (as a UDP
// payload and as a TCP segment with its length prefix) and the ring record decoder in front of
// it. Built with ASan and UBSan, so any read past the input or undefined arithmetic aborts.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "decode.h"
#include "dns_message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto msg = std::make_unique<needle::dns::Message>();
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);

  needle::dns::parse(bytes, *msg);
  std::span<const std::byte> inner;
  bool complete = false;
  if (needle::dns::tcp_message(bytes, inner, complete) == needle::dns::ParseError::kNone) {
    needle::dns::parse(inner, *msg);
  }
  if (auto packet = needle::dns::decode_packet(bytes); packet.ok()) {
    needle::dns::parse_packet(*packet, *msg);
    std::array<char, 48> buf{};
    needle::dns::format_ip(packet->saddr, packet->ipv6, buf);
  }
  // Every name the parser produced stays within its buffer.
  if (msg->qname.len > needle::dns::Name::kCap) {
    __builtin_trap();
  }
  return 0;
}
