// Unit tests of the network decoder on hand-built records (no kernel, no root).
#include "decode.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

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

}  // namespace
}  // namespace needle::network
