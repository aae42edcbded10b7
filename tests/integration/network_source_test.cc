// source/network on the real kernel: TCP connect and accept over 127.0.0.1 and ::1 and a
// connected UDP socket, with the addresses of the kernel's sockets, the direction and the
// process. Each test selects its own pid and ports: the host is shared.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "harness.h"

namespace needle::test {
namespace {

std::string net_config(const TempDir& d) {
  return needle_section() + "[[source]]\nplugin = \"network\"\n\n[[sink]]\nplugin = \"file\"\n" +
         "path = \"" + d.file("events.jsonl") + "\"\n";
}

/// The events of `type` by this process that involve `port` (either side).
std::vector<nlohmann::json> mine(const std::vector<nlohmann::json>& evs, const std::string& type,
                                 int port) {
  std::vector<nlohmann::json> out;
  for (auto& e : evs) {
    if (str_field(e, "type") == type && int_field(e, "process.pid") == getpid() &&
        (int_field(e, "net.dst_port") == port || int_field(e, "net.src_port") == port)) {
      out.push_back(e);
    }
  }
  return out;
}

int local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

/// Binds a socket of `family`/`type` to the loopback address, port chosen by the kernel.
int bound(int family, int type) {
  int fd = socket(family, type | SOCK_CLOEXEC, 0);
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    len = sizeof *a;
  }
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&ss), len), 0);
  return fd;
}

int connect_to(int family, int type, int port) {
  int fd = socket(family, type | SOCK_CLOEXEC, 0);
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof *a;
  }
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&ss), len), 0) << std::strerror(errno);
  return fd;
}

void tcp_round(int family, const std::string& ip, const std::string& fam) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, net_config(d));
  int server = bound(family, SOCK_STREAM);
  ASSERT_EQ(listen(server, 4), 0);
  const int port = local_port(server);
  int client = connect_to(family, SOCK_STREAM, port);
  const int client_port = local_port(client);
  int conn = accept4(server, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(conn, 0);
  close(conn);
  close(client);
  close(server);
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));
  auto listens = mine(evs, "net.listen", port);
  ASSERT_EQ(listens.size(), 1u);
  EXPECT_EQ(str_field(listens[0], "net.dst_ip"), ip);
  EXPECT_EQ(field(listens[0], "net.src_ip"), nullptr);
  auto connects = mine(evs, "net.connect", port);
  ASSERT_EQ(connects.size(), 1u);
  auto& c = connects[0];
  EXPECT_EQ(str_field(c, "net.proto"), "tcp");
  EXPECT_EQ(str_field(c, "net.family"), fam);
  EXPECT_EQ(str_field(c, "net.direction"), "outbound");
  EXPECT_EQ(str_field(c, "net.src_ip"), ip);
  EXPECT_EQ(int_field(c, "net.src_port"), client_port);
  EXPECT_EQ(str_field(c, "net.dst_ip"), ip);
  EXPECT_EQ(int_field(c, "net.dst_port"), port);
  auto accepts = mine(evs, "net.accept", port);
  ASSERT_EQ(accepts.size(), 1u);
  auto& a = accepts[0];
  EXPECT_EQ(str_field(a, "net.direction"), "inbound");
  EXPECT_EQ(int_field(a, "net.src_port"), client_port) << "src is the initiator on both ends";
  EXPECT_EQ(int_field(a, "net.dst_port"), port);
  EXPECT_EQ(str_field(a, "net.route"), "accept4");
}

TEST(NetworkSource, TcpConnectAndAcceptOverIpv4LoopbackCarryTheSocketsAddresses) {
  tcp_round(AF_INET, "127.0.0.1", "ipv4");
}

TEST(NetworkSource, TcpConnectAndAcceptOverIpv6LoopbackCarryTheSocketsAddresses) {
  tcp_round(AF_INET6, "::1", "ipv6");
}

TEST(NetworkSource, ConnectedUdpSocketIsReportedAsAnOutboundConnect) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, net_config(d));
  int peer = bound(AF_INET, SOCK_DGRAM);
  const int port = local_port(peer);
  int udp = connect_to(AF_INET, SOCK_DGRAM, port);
  const int udp_port = local_port(udp);
  close(udp);
  close(peer);
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto connects = mine(read_events(d.file("events.jsonl")), "net.connect", port);
  ASSERT_EQ(connects.size(), 1u);
  EXPECT_EQ(str_field(connects[0], "net.proto"), "udp");
  EXPECT_EQ(int_field(connects[0], "net.src_port"), udp_port);
  EXPECT_EQ(str_field(connects[0], "net.dst_ip"), "127.0.0.1");
  EXPECT_EQ(str_field(connects[0], "net.direction"), "outbound");
}

}  // namespace
}  // namespace needle::test
