// source/network on the real kernel: TCP connect and accept over 127.0.0.1 and ::1 and a
// connected UDP socket, with the addresses of the kernel's sockets, the direction and the
// process, through every route (the syscalls of both ABIs, ia32 socketcall, io_uring). Each test
// selects its own pids and ports: the host is shared.
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <utility>

#include "harness.h"

namespace needle::test {
namespace {

std::string net_config(const TempDir& d, const std::string& source_extra = "") {
  return needle_section() + "[[source]]\nplugin = \"network\"\n" + source_extra +
         "\n[[sink]]\nplugin = \"file\"\npath = \"" + d.file("events.jsonl") + "\"\n";
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

/// Binds a socket of `family`/`type` (| `flags`) to the loopback address, port chosen by the
/// kernel.
int bound(int family, int type, int flags = SOCK_CLOEXEC) {
  int fd = socket(family, type | flags, 0);
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

std::string helper(bool compat) {
  return build_dir() + (compat ? "/tests/net_routes32" : "/tests/net_routes");
}

/// Runs the route helper on a socket of this process (created without SOCK_CLOEXEC, so the
/// helper inherits it); returns the helper's pid, or 0 after failing the test when the operation
/// itself failed.
pid_t route(bool compat, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {helper(compat)};
  argv.insert(argv.end(), args.begin(), args.end());
  Result r = run(argv);
  EXPECT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
  return r.exit_code == 0 ? static_cast<pid_t>(std::atoi(r.out.c_str())) : 0;
}

/// One expected event: `src_port` -1 for none (listen).
struct Expected {
  std::string type;
  pid_t pid;
  std::string route;
  std::string proto;
  std::string ip;  // both ends are on loopback
  int src_port;
  int dst_port;
  bool in_progress;
};

/// Checks that process `w.pid` made exactly one event, and that it is `w`.
void expect_event(const std::vector<nlohmann::json>& evs, const Expected& w,
                  const std::string& family) {
  std::vector<nlohmann::json> by_pid;
  for (auto& e : evs) {
    if (int_field(e, "process.pid") == w.pid) {
      by_pid.push_back(e);
    }
  }
  ASSERT_EQ(by_pid.size(), 1u) << "one operation, one event";
  const nlohmann::json& e = by_pid[0];
  EXPECT_EQ(str_field(e, "type"), w.type);
  EXPECT_EQ(str_field(e, "net.route"), w.route);
  EXPECT_EQ(str_field(e, "net.proto"), w.proto);
  EXPECT_EQ(str_field(e, "net.family"), family);
  EXPECT_EQ(str_field(e, "net.dst_ip"), w.ip);
  EXPECT_EQ(int_field(e, "net.dst_port"), w.dst_port);
  if (w.src_port < 0) {
    EXPECT_EQ(field(e, "net.src_ip"), nullptr);
    EXPECT_EQ(field(e, "net.src_port"), nullptr);
    EXPECT_EQ(field(e, "net.direction"), nullptr);
  } else {
    EXPECT_EQ(str_field(e, "net.src_ip"), w.ip);
    EXPECT_EQ(int_field(e, "net.src_port"), w.src_port);
    EXPECT_EQ(str_field(e, "net.direction"), w.type == "net.accept" ? "inbound" : "outbound");
  }
  const nlohmann::json* in_progress = field(e, "net.in_progress");
  EXPECT_EQ(in_progress != nullptr && in_progress->get<bool>(), w.in_progress);
}

// Through the helper, over IPv4 and IPv6: listen; per accept route a connect and that accept; a
// non-blocking connect left under way; a connected UDP socket. `via` is "" (the syscalls) or
// "socketcall:" (the ia32 multiplexer); each event must name its route and carry the helper's
// pid and the sockets' addresses. `rung` pins the syscall hooks' rung ("": needle's choice): a
// dispatcher rung ("tp_btf") or its typed variant ("tp_btf+typed").
void run_and_check_routes(bool compat, const std::string& via,
                          const std::vector<std::string>& accepts, const std::string& rung = "") {
  if (compat && access(helper(true).c_str(), X_OK) != 0) {
    GTEST_SKIP() << "no 32-bit helper: gcc -m32 (gcc-multilib) was not available at build time";
  }
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, net_config(d, rung.empty() ? "" : "rung = \"" + rung + "\"\n"));
  if (!rung.empty()) {
    EXPECT_NE(n.err().find("the syscall dispatcher runs on rung " + rung.substr(0, rung.find('+'))),
              std::string::npos)
        << n.err();
    for (const char* hook : {"connect", "accept", "listen", "socketcall"}) {
      EXPECT_NE(n.err().find("hook " + std::string(hook) + " runs on rung " + rung + "\n"),
                std::string::npos)
          << hook << "\n"
          << n.err();
    }
  }
  const std::string p = (compat ? "ia32:" : "") + via;
  std::vector<std::pair<std::string, Expected>> want;  // family, event
  for (const auto& [family, ip, fam] :
       {std::tuple{AF_INET, "127.0.0.1", "ipv4"}, std::tuple{AF_INET6, "::1", "ipv6"}}) {
    int server = bound(family, SOCK_STREAM, 0);
    const int port = local_port(server);
    pid_t pid = route(compat, {via + "listen", std::to_string(server)});
    want.push_back({fam, {"net.listen", pid, p + "listen", "tcp", ip, -1, port, false}});
    for (const std::string& accept : accepts) {
      int client = socket(family, SOCK_STREAM, 0);
      pid = route(compat, {via + "connect", std::to_string(client), ip, std::to_string(port)});
      const int client_port = local_port(client);
      want.push_back(
          {fam, {"net.connect", pid, p + "connect", "tcp", ip, client_port, port, false}});
      pid = route(compat, {via + accept, std::to_string(server)});
      want.push_back({fam, {"net.accept", pid, p + accept, "tcp", ip, client_port, port, false}});
      close(client);
    }
    // EINPROGRESS: the kernel has already chosen both ends.
    int pending = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    pid = route(compat, {via + "connect", std::to_string(pending), ip, std::to_string(port)});
    want.push_back(
        {fam, {"net.connect", pid, p + "connect", "tcp", ip, local_port(pending), port, true}});
    close(pending);
    close(server);
    int peer = bound(family, SOCK_DGRAM);
    const int peer_port = local_port(peer);
    int udp = socket(family, SOCK_DGRAM, 0);
    pid = route(compat, {via + "connect", std::to_string(udp), ip, std::to_string(peer_port)});
    want.push_back(
        {fam, {"net.connect", pid, p + "connect", "udp", ip, local_port(udp), peer_port, false}});
    close(udp);
    close(peer);
  }
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));
  for (const auto& [fam, w] : want) {
    SCOPED_TRACE(w.type + " " + w.proto + " " + fam + " via " + w.route);
    expect_event(evs, w, fam);
  }
}

TEST(NetworkSource, EveryNativeSyscallRouteReportsItsEvent) {
  run_and_check_routes(false, "", {"accept", "accept4"});
}

TEST(NetworkSource, EveryIa32CompatSyscallRouteReportsItsEvent) {
  run_and_check_routes(true, "", {"accept4"});  // ia32 has no accept syscall of its own
}

TEST(NetworkSource, EveryIa32SocketcallRouteReportsItsEvent) {
  run_and_check_routes(true, "socketcall:", {"accept", "accept4"});
}

// An io_uring ACCEPT and CONNECT on loopback; `rung` pins every hook's rung ("": needle's choice).
void io_uring_round(const std::string& rung) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, net_config(d, rung.empty() ? "" : "rung = \"" + rung + "\"\n"));
  if (!rung.empty()) {
    EXPECT_NE(n.err().find("hook io_uring runs on rung " + rung), std::string::npos) << n.err();
  }
  int server = bound(AF_INET, SOCK_STREAM);
  ASSERT_EQ(listen(server, 4), 0);
  const int port = local_port(server);
  int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(static_cast<uint16_t>(port));
  io_uring ring{};
  ASSERT_EQ(io_uring_queue_init(8, &ring, 0), 0);
  // The accept goes first, so it waits inside io_uring for the connect (an async completion).
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  io_uring_prep_accept(sqe, server, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, 1);
  ASSERT_EQ(io_uring_submit(&ring), 1);
  sqe = io_uring_get_sqe(&ring);
  io_uring_prep_connect(sqe, client, reinterpret_cast<sockaddr*>(&to), sizeof to);
  io_uring_sqe_set_data64(sqe, 2);
  ASSERT_EQ(io_uring_submit(&ring), 1);
  int accepted = -1, connected = -1;
  for (int i = 0; i < 2; ++i) {
    io_uring_cqe* cqe = nullptr;
    ASSERT_EQ(io_uring_wait_cqe(&ring, &cqe), 0);
    (cqe->user_data == 1 ? accepted : connected) = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
  }
  io_uring_queue_exit(&ring);
  ASSERT_GE(accepted, 0) << std::strerror(-accepted);
  ASSERT_EQ(connected, 0) << std::strerror(-connected);
  const int client_port = local_port(client);
  close(accepted);
  close(client);
  close(server);
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));
  auto connects = mine(evs, "net.connect", port);
  ASSERT_EQ(connects.size(), 1u);
  EXPECT_EQ(str_field(connects[0], "net.route"), "io_uring:connect");
  EXPECT_EQ(str_field(connects[0], "net.proto"), "tcp");
  EXPECT_EQ(str_field(connects[0], "net.direction"), "outbound");
  EXPECT_EQ(str_field(connects[0], "net.src_ip"), "127.0.0.1");
  EXPECT_EQ(int_field(connects[0], "net.src_port"), client_port);
  EXPECT_EQ(str_field(connects[0], "net.dst_ip"), "127.0.0.1");
  EXPECT_EQ(int_field(connects[0], "net.dst_port"), port);
  auto accepts = mine(evs, "net.accept", port);
  ASSERT_EQ(accepts.size(), 1u);
  EXPECT_EQ(str_field(accepts[0], "net.route"), "io_uring:accept");
  EXPECT_EQ(str_field(accepts[0], "net.direction"), "inbound");
  EXPECT_EQ(str_field(accepts[0], "net.src_ip"), "127.0.0.1");
  EXPECT_EQ(int_field(accepts[0], "net.src_port"), client_port);
  EXPECT_EQ(str_field(accepts[0], "net.dst_ip"), "127.0.0.1");
  EXPECT_EQ(int_field(accepts[0], "net.dst_port"), port);
}

TEST(NetworkSource, IoUringConnectAndAcceptAreReportedWithTheirRoute) {
  io_uring_round("");
}

// The ia32 arguments come from other registers on each rung (tp: the tracepoint's record); the
// io_uring hook is pinned to the same rung.
class NetworkSourceRung : public ::testing::TestWithParam<std::string> {};

TEST_P(NetworkSourceRung, PinnedRungReportsTheNativeIa32AndIoUringRoutes) {
  run_and_check_routes(false, "", {"accept", "accept4"}, GetParam());
  run_and_check_routes(true, "", {"accept4"}, GetParam());
  run_and_check_routes(true, "socketcall:", {"accept4"}, GetParam());
  io_uring_round(GetParam());
}

INSTANTIATE_TEST_SUITE_P(Rungs, NetworkSourceRung, ::testing::Values("tp_btf", "raw_tp", "tp"));

// The typed variant of each dispatcher rung (the socket read with direct loads): the same
// events, field for field, over IPv4 and IPv6, natively and through ia32 and socketcall.
class NetworkSourceTypedRung : public ::testing::TestWithParam<std::string> {};

TEST_P(NetworkSourceTypedRung, PinnedTypedRungReportsEveryRoute) {
  run_and_check_routes(false, "", {"accept", "accept4"}, GetParam());
  run_and_check_routes(true, "", {"accept4"}, GetParam());
  run_and_check_routes(true, "socketcall:", {"accept4"}, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Rungs, NetworkSourceTypedRung,
                         ::testing::Values("tp_btf+typed", "raw_tp+typed", "tp+typed"),
                         [](const auto& info) {
                           return info.param.substr(0, info.param.find('+')) + "_typed";
                         });

}  // namespace
}  // namespace needle::test
