#include "decode.h"

#include <cstdio>
#include <cstring>
#include <string>

#include "needle/ip.h"
#include "net_record.h"

static_assert(sizeof(net_record) == NET_RECORD_SIZE, "net_record layout");
static_assert(offsetof(net_record, flags) == NEEDLE_RECORD_HEADER_SIZE, "net_record layout");
static_assert(offsetof(net_record, local_addr) == 104, "net_record layout");

namespace needle::network {
namespace {

std::string_view format_ip(uint16_t family, const std::array<uint8_t, 16>& addr, AddrBuf& buf) {
  static_assert(std::tuple_size_v<AddrBuf> >= kIpTextMax);
  const size_t n = family == 2 ? format_ipv4(addr.data(), buf.data())
                               : format_ipv6(addr.data(), buf.data());
  return std::string_view(buf.data(), n);
}

}  // namespace

Result<NetRecord> decode_net(std::span<const std::byte> raw) {
  net_record rec;
  if (raw.size() < sizeof rec) {
    return make_error("network record of " + std::to_string(raw.size()) +
                      " bytes is shorter than " + std::to_string(sizeof rec));
  }
  std::memcpy(&rec, raw.data(), sizeof rec);
  if (rec.hdr.size != sizeof rec) {
    return make_error("network record claims " + std::to_string(rec.hdr.size) + " bytes, not " +
                      std::to_string(sizeof rec));
  }
  if (rec.hdr.version != NET_RECORD_VERSION) {
    return make_error("network record layout version " + std::to_string(rec.hdr.version) +
                      " (this plugin reads " + std::to_string(NET_RECORD_VERSION) + ")");
  }
  if (rec.hdr.kind < NET_KIND_CONNECT || rec.hdr.kind > NET_KIND_LISTEN) {
    return make_error("unknown network record kind " + std::to_string(rec.hdr.kind));
  }
  if ((rec.family != 2 && rec.family != 10) || (rec.protocol != 6 && rec.protocol != 17)) {
    return make_error("network record of family " + std::to_string(rec.family) + " and protocol " +
                      std::to_string(rec.protocol));
  }
  NetRecord out;
  out.kind = static_cast<Kind>(rec.hdr.kind);
  out.task = rec.hdr.task;
  out.boot_ns = rec.hdr.boot_ns;
  out.flags = rec.flags;
  out.family = rec.family;
  out.protocol = rec.protocol;
  out.local_port = rec.local_port;
  out.remote_port = rec.remote_port;
  out.syscall = rec.syscall;
  out.abi = rec.abi;
  out.route = rec.route;
  std::memcpy(out.local_addr.data(), rec.local_addr, 16);
  std::memcpy(out.remote_addr.data(), rec.remote_addr, 16);
  return out;
}

std::string_view event_type(Kind kind) {
  switch (kind) {
    case Kind::kConnect:
      return "net.connect";
    case Kind::kAccept:
      return "net.accept";
    case Kind::kListen:
      return "net.listen";
  }
  return "";
}

std::string_view proto_name(uint16_t protocol) {
  return protocol == 6 ? "tcp" : "udp";
}
std::string_view family_name(uint16_t family) {
  return family == 2 ? "ipv4" : "ipv6";
}

Sides sides(const NetRecord& rec, AddrBuf& local, AddrBuf& remote) {
  Endpoint l{format_ip(rec.family, rec.local_addr, local), rec.local_port};
  Endpoint r{format_ip(rec.family, rec.remote_addr, remote), rec.remote_port};
  switch (rec.kind) {
    case Kind::kConnect:
      return Sides{l, r, "outbound"};
    case Kind::kAccept:
      return Sides{r, l, "inbound"};
    case Kind::kListen:
      return Sides{std::nullopt, l, {}};
  }
  return {};
}

std::string_view route_name(const NetRecord& rec, AddrBuf& buf) {
  const char* name = nullptr;
  int n = 0;
  if (rec.route == NET_ROUTE_IO_URING) {
    name = rec.syscall == NET_IORING_OP_CONNECT  ? "connect"
           : rec.syscall == NET_IORING_OP_ACCEPT ? "accept"
                                                 : nullptr;
    n = name ? std::snprintf(buf.data(), buf.size(), "io_uring:%s", name)
             : std::snprintf(buf.data(), buf.size(), "io_uring:%u", unsigned{rec.syscall});
  } else if (rec.route == NET_ROUTE_SOCKETCALL) {
    name = rec.syscall == NET_SOCKETCALL_CONNECT   ? "connect"
           : rec.syscall == NET_SOCKETCALL_LISTEN  ? "listen"
           : rec.syscall == NET_SOCKETCALL_ACCEPT  ? "accept"
           : rec.syscall == NET_SOCKETCALL_ACCEPT4 ? "accept4"
                                                   : nullptr;
    n = name ? std::snprintf(buf.data(), buf.size(), "ia32:socketcall:%s", name)
             : std::snprintf(buf.data(), buf.size(), "ia32:socketcall:%u", unsigned{rec.syscall});
  } else {
    const bool compat = rec.abi == 1;
    const uint16_t nr = rec.syscall;
    if (compat) {
      name = nr == NET_NR32_CONNECT   ? "connect"
             : nr == NET_NR32_ACCEPT4 ? "accept4"
             : nr == NET_NR32_LISTEN  ? "listen"
                                      : nullptr;
    } else {
      name = nr == NET_NR64_CONNECT   ? "connect"
             : nr == NET_NR64_ACCEPT  ? "accept"
             : nr == NET_NR64_ACCEPT4 ? "accept4"
             : nr == NET_NR64_LISTEN  ? "listen"
                                      : nullptr;
    }
    if (name != nullptr && !compat) {
      return name;   // the common case, named without a copy
    }
    n = name ? std::snprintf(buf.data(), buf.size(), "ia32:%s", name)
             : std::snprintf(buf.data(), buf.size(), "%ssyscall:%u", compat ? "ia32:" : "",
                             unsigned{nr});
  }
  return std::string_view(buf.data(), n > 0 ? static_cast<std::size_t>(n) : 0);
}

}  // namespace needle::network
