// Unit tests of the network decoder on hand-built records (no kernel, no root).
#include "decode.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "needle/ip.h"
#include "net_record.h"

namespace needle::network {
namespace {

std::vector<std::byte> record(uint16_t kind, uint16_t family, uint16_t protocol) {
  net_record rec{};
  rec.hdr.kind = kind;
  rec.hdr.version = NET_RECORD_VERSION;
  rec.hdr.size = sizeof rec;
  rec.family = family;
  rec.protocol = protocol;
  rec.local_port = 40000;
  rec.remote_port = 443;
  rec.syscall = NET_NR64_CONNECT;
  if (family == 2) {
    const uint8_t local[4] = {127, 0, 0, 1}, remote[4] = {10, 1, 2, 3};
    std::memcpy(rec.local_addr, local, 4);
    std::memcpy(rec.remote_addr, remote, 4);
  } else {
    rec.local_addr[15] = 1;     // ::1
    rec.remote_addr[0] = 0x20;  // 2001:db8::5
    rec.remote_addr[1] = 0x01;
    rec.remote_addr[2] = 0x0d;
    rec.remote_addr[3] = 0xb8;
    rec.remote_addr[15] = 5;
  }
  std::vector<std::byte> out(sizeof rec);
  std::memcpy(out.data(), &rec, sizeof rec);
  return out;
}

TEST(NetDecode, ConnectIsOutboundFromTheLocalEnd) {
  auto rec = decode_net(record(NET_KIND_CONNECT, 2, 6));
  ASSERT_TRUE(rec) << rec.error().message;
  AddrBuf l, r;
  Sides s = sides(*rec, l, r);
  ASSERT_TRUE(s.src && s.dst);
  EXPECT_EQ(s.src->ip, "127.0.0.1");
  EXPECT_EQ(s.src->port, 40000);
  EXPECT_EQ(s.dst->ip, "10.1.2.3");
  EXPECT_EQ(s.dst->port, 443);
  EXPECT_EQ(s.direction, "outbound");
  EXPECT_EQ(event_type(rec->kind), "net.connect");
  EXPECT_EQ(proto_name(rec->protocol), "tcp");
  EXPECT_EQ(family_name(rec->family), "ipv4");
  EXPECT_EQ(route_name(*rec, l), "connect");
}

TEST(NetDecode, AcceptIsInboundWithThePeerAsSource) {
  auto rec = decode_net(record(NET_KIND_ACCEPT, 10, 6));
  ASSERT_TRUE(rec);
  AddrBuf l, r;
  Sides s = sides(*rec, l, r);
  ASSERT_TRUE(s.src && s.dst);
  EXPECT_EQ(s.src->ip, "2001:db8::5");
  EXPECT_EQ(s.src->port, 443);
  EXPECT_EQ(s.dst->ip, "::1");
  EXPECT_EQ(s.direction, "inbound");
}

TEST(NetDecode, ListenHasOnlyTheLocalDestination) {
  auto rec = decode_net(record(NET_KIND_LISTEN, 2, 6));
  ASSERT_TRUE(rec);
  AddrBuf l, r;
  Sides s = sides(*rec, l, r);
  EXPECT_FALSE(s.src);
  ASSERT_TRUE(s.dst);
  EXPECT_EQ(s.dst->port, 40000);
  EXPECT_TRUE(s.direction.empty());
}

TEST(NetDecode, RoutesNameSocketcallAndIoUring) {
  auto raw = record(NET_KIND_CONNECT, 2, 17);
  net_record rec;
  std::memcpy(&rec, raw.data(), sizeof rec);
  rec.route = NET_ROUTE_SOCKETCALL;
  rec.abi = 1;
  rec.syscall = NET_SOCKETCALL_CONNECT;
  std::memcpy(raw.data(), &rec, sizeof rec);
  auto d = decode_net(raw);
  ASSERT_TRUE(d);
  AddrBuf buf;
  EXPECT_EQ(route_name(*d, buf), "ia32:socketcall:connect");
  d->route = NET_ROUTE_IO_URING;
  d->syscall = NET_IORING_OP_ACCEPT;
  EXPECT_EQ(route_name(*d, buf), "io_uring:accept");
  d->route = NET_ROUTE_SYSCALL;
  d->syscall = NET_NR32_ACCEPT4;
  EXPECT_EQ(route_name(*d, buf), "ia32:accept4");
}

TEST(NetDecode, RejectsShortWrongSizeKindFamilyAndProtocol) {
  auto raw = record(NET_KIND_CONNECT, 2, 6);
  EXPECT_FALSE(decode_net(std::span(raw).first(raw.size() - 1)));
  EXPECT_FALSE(decode_net(record(9, 2, 6)));
  EXPECT_FALSE(decode_net(record(NET_KIND_CONNECT, 1, 6)));
  EXPECT_FALSE(decode_net(record(NET_KIND_CONNECT, 2, 1)));
  net_record rec;
  std::memcpy(&rec, raw.data(), sizeof rec);
  rec.hdr.size = 100;
  std::memcpy(raw.data(), &rec, sizeof rec);
  EXPECT_FALSE(decode_net(raw));
}

// The SDK's address text (needle/ip.h) is inet_ntop's, byte for byte: every IPv4 octet value
// in every position, the IPv6 special forms, and random addresses whose groups are zero often
// enough to make runs of every length at every place (ties, trailing runs, embedded IPv4).
TEST(IpText, IsInetNtopsText) {
  const auto ntop = [](int af, const uint8_t* a) {
    char want[INET6_ADDRSTRLEN];
    EXPECT_NE(inet_ntop(af, a, want, sizeof want), nullptr);
    return std::string(want);
  };
  char got[kIpTextMax];
  for (unsigned v = 0; v < 256; ++v) {
    for (int at = 0; at < 4; ++at) {
      uint8_t a[4] = {1, 20, 255, 0};
      a[at] = static_cast<uint8_t>(v);
      EXPECT_EQ(std::string(got, format_ipv4(a, got)), ntop(AF_INET, a));
    }
  }
  const auto check6 = [&](const uint8_t* a) {
    EXPECT_EQ(std::string(got, format_ipv6(a, got)), ntop(AF_INET6, a));
  };
  uint8_t a[16] = {};
  check6(a);   // ::
  a[15] = 1;
  check6(a);   // ::1
  a[10] = a[11] = 0xff;
  a[12] = 192;
  check6(a);   // ::ffff:192.0.0.1
  a[10] = a[11] = 0;
  check6(a);   // ::192.0.0.1
  a[9] = 1;
  check6(a);   // ::1:c000:1 (not IPv4 inside)
  const uint8_t full[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  check6(full);
  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i) {
    uint8_t r[16];
    const unsigned zeros = rng() & 0xff;   // which groups are zero
    for (int g = 0; g < 8; ++g) {
      const uint32_t w = (zeros >> g & 1) != 0 ? 0 : rng() >> (rng() % 32);
      r[2 * g] = static_cast<uint8_t>(w >> 8);
      r[2 * g + 1] = static_cast<uint8_t>(w);
    }
    if (i % 7 == 0) {   // ::ffff:0:0/96 now and then
      std::memset(r, 0, 10);
      r[10] = r[11] = 0xff;
    }
    check6(r);
    if (::testing::Test::HasFailure()) {
      break;
    }
  }
}

}  // namespace
}  // namespace needle::network
