// Decoding of the `network` source's ring records (bpf/include/net_record.h). Pure: bytes in, a
// NetRecord out; no host, no kernel.
#ifndef NEEDLE_PLUGINS_SOURCES_NETWORK_DECODE_H
#define NEEDLE_PLUGINS_SOURCES_NETWORK_DECODE_H

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "needle/bpf/record.h"
#include "needle/result.h"

namespace needle::network {

enum class Kind : uint16_t { kConnect = 1, kAccept = 2, kListen = 3 };

using AddrBuf = std::array<char, 64>;

/// One endpoint of an event, formatted.
struct Endpoint {
  std::string_view ip;
  uint16_t port = 0;
};

/// One decoded record.
struct NetRecord {
  Kind kind = Kind::kConnect;
  needle_task_ctx task{};
  uint64_t boot_ns = 0;
  uint32_t flags = 0;     // NET_F_*
  uint16_t family = 0;    // 2 or 10
  uint16_t protocol = 0;  // 6 or 17
  uint16_t local_port = 0;
  uint16_t remote_port = 0;
  uint16_t syscall = 0;
  uint8_t abi = 0;
  uint8_t route = 0;
  std::array<uint8_t, 16> local_addr{};
  std::array<uint8_t, 16> remote_addr{};
};

/// Decodes one record (header included). Fails, without reading past `raw`, for a short record,
/// a header size unlike the layout, another version, an unknown kind, family or protocol.
Result<NetRecord> decode_net(std::span<const std::byte> raw);

/// "net.connect", "net.accept", "net.listen".
std::string_view event_type(Kind kind);
/// "tcp" / "udp"; "ipv4" / "ipv6".
std::string_view proto_name(uint16_t protocol);
std::string_view family_name(uint16_t family);

/// The event's sides: src is the initiator on both ends (connect: local; accept: the peer);
/// listen has only dst (the local address that will be connected to). `direction` is
/// "outbound", "inbound" or empty. Views live in the buffers.
struct Sides {
  std::optional<Endpoint> src;
  std::optional<Endpoint> dst;
  std::string_view direction;
};
Sides sides(const NetRecord& rec, AddrBuf& local, AddrBuf& remote);

/// The route: "connect", "ia32:accept4", "ia32:socketcall:connect", "io_uring:accept".
std::string_view route_name(const NetRecord& rec, AddrBuf& buf);

}  // namespace needle::network

#endif  // NEEDLE_PLUGINS_SOURCES_NETWORK_DECODE_H
