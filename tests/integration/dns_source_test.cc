// source/dns on the real kernel: DNS queries and answers exchanged over loopback between a child
// of the test and a small UDP+TCP responder the test runs itself, on a port of its own (the
// `ports` key), so that nothing else on the host interferes. Each test selects the child's pid
// and its own query names.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>
#include <thread>

#include "harness.h"

namespace needle::test {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

constexpr uint16_t kTypeA = 1;
constexpr uint16_t kTypeCname = 5;
constexpr uint16_t kTypeAaaa = 28;

void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v & 0xff));
}
void put32(Bytes& b, uint32_t v) {
  put16(b, static_cast<uint16_t>(v >> 16));
  put16(b, static_cast<uint16_t>(v & 0xffff));
}
void put_name(Bytes& b, const std::string& name) {
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    std::string label = name.substr(start, dot == std::string::npos ? dot : dot - start);
    b.push_back(static_cast<uint8_t>(label.size()));
    b.insert(b.end(), label.begin(), label.end());
    start = dot == std::string::npos ? name.size() : dot + 1;
  }
  b.push_back(0);
}

Bytes make_query(uint16_t id, const std::string& name, uint16_t qtype) {
  Bytes b;
  put16(b, id);
  put16(b, 0x0100);  // RD
  put16(b, 1);
  put16(b, 0);
  put16(b, 0);
  put16(b, 0);
  put_name(b, name);
  put16(b, qtype);
  put16(b, 1);
  return b;
}

/// The question's name of a query (plain labels only: the test's own queries).
std::string query_name(const Bytes& q) {
  std::string out;
  size_t pos = 12;
  while (pos < q.size() && q[pos] != 0) {
    size_t len = q[pos];
    if (!out.empty()) {
      out += '.';
    }
    out.append(reinterpret_cast<const char*>(q.data()) + pos + 1,
               std::min(len, q.size() - pos - 1));
    pos += 1 + len;
  }
  return out;
}

/// Answers the test's names:
///   a.*       A 10.53.0.1 and 10.53.0.2, ttl 30
///   six.*     CNAME real.<rest> (ttl 40), then AAAA 2001:db8::53 (ttl 50)
///   missing.* NXDOMAIN
///   loop.*    one answer whose owner name is a pointer to itself (a compression loop)
Bytes make_answer(const Bytes& q) {
  std::string name = query_name(q);
  size_t qend = 12;
  while (qend < q.size() && q[qend] != 0) {
    qend += 1 + q[qend];
  }
  qend += 5;  // root label, qtype, qclass
  Bytes r(q.begin(), q.begin() + static_cast<long>(std::min(qend, q.size())));
  uint16_t rcode = 0;
  uint16_t ancount = 0;
  Bytes ans;
  if (name.rfind("a.", 0) == 0) {
    for (uint8_t last : {1, 2}) {
      put16(ans, 0xc00c);
      put16(ans, kTypeA);
      put16(ans, 1);
      put32(ans, 30);
      put16(ans, 4);
      ans.insert(ans.end(), {10, 53, 0, last});
      ++ancount;
    }
  } else if (name.rfind("six.", 0) == 0) {
    Bytes target;
    put_name(target, "real." + name.substr(4));
    put16(ans, 0xc00c);
    put16(ans, kTypeCname);
    put16(ans, 1);
    put32(ans, 40);
    put16(ans, static_cast<uint16_t>(target.size()));
    uint16_t target_at = static_cast<uint16_t>(r.size() + ans.size());
    ans.insert(ans.end(), target.begin(), target.end());
    put16(ans, static_cast<uint16_t>(0xc000 | target_at));
    put16(ans, kTypeAaaa);
    put16(ans, 1);
    put32(ans, 50);
    put16(ans, 16);
    ans.insert(ans.end(), {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53});
    ancount = 2;
  } else if (name.rfind("loop.", 0) == 0) {
    uint16_t self = static_cast<uint16_t>(r.size());
    put16(ans, static_cast<uint16_t>(0xc000 | self));
    put16(ans, kTypeA);
    put16(ans, 1);
    put32(ans, 1);
    put16(ans, 4);
    ans.insert(ans.end(), {10, 0, 0, 1});
    ancount = 1;
  } else {
    rcode = 3;  // NXDOMAIN
  }
  r[2] = 0x81;                                // QR RD
  r[3] = static_cast<uint8_t>(0x80 | rcode);  // RA
  r[6] = static_cast<uint8_t>(ancount >> 8);
  r[7] = static_cast<uint8_t>(ancount & 0xff);
  r.insert(r.end(), ans.begin(), ans.end());
  return r;
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

/// The loopback address of `family` (127.0.0.1 or ::1) and `port`, as a sockaddr of its size.
struct Loopback {
  Loopback(int family, uint16_t port) {
    if (family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(port);
      a->sin6_addr = in6addr_loopback;
      len = sizeof(sockaddr_in6);
    } else {
      *reinterpret_cast<sockaddr_in*>(&ss) = loopback(port);
      len = sizeof(sockaddr_in);
    }
  }
  sockaddr* sa() { return reinterpret_cast<sockaddr*>(&ss); }
  uint16_t port() const { return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port); }
  sockaddr_storage ss{};
  socklen_t len = 0;
};

bool read_full(int fd, uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r <= 0) {
      return false;
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

/// A DNS server on 127.0.0.1 (or ::1): UDP and TCP on one port, a thread each; stopped by the
/// destructor.
class Responder {
 public:
  explicit Responder(int family = AF_INET) {
    for (int attempt = 0; attempt < 20 && port_ == 0; ++attempt) {
      int u = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      Loopback a(family, 0);
      socklen_t len = a.len;
      if (bind(u, a.sa(), a.len) != 0 || getsockname(u, a.sa(), &len) != 0) {
        close(u);
        continue;
      }
      int t = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int one = 1;
      setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (bind(t, a.sa(), a.len) != 0 || listen(t, 16) != 0) {
        close(u);
        close(t);
        continue;
      }
      udp_ = u;
      tcp_ = t;
      port_ = a.port();
    }
    if (port_ != 0) {
      udp_thread_ = std::thread([this] { serve_udp(); });
      tcp_thread_ = std::thread([this] { serve_tcp(); });
    }
  }
  ~Responder() {
    stop_ = true;
    if (udp_thread_.joinable()) {
      udp_thread_.join();
    }
    if (tcp_thread_.joinable()) {
      tcp_thread_.join();
    }
    if (udp_ >= 0) {
      close(udp_);
    }
    if (tcp_ >= 0) {
      close(tcp_);
    }
  }
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  uint16_t port() const { return port_; }

 private:
  bool wait_readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return poll(&p, 1, 50) > 0;
  }
  void serve_udp() {
    while (!stop_) {
      if (!wait_readable(udp_)) {
        continue;
      }
      uint8_t buf[2048];
      sockaddr_storage from{};
      socklen_t len = sizeof from;
      ssize_t n = recvfrom(udp_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 12) {
        continue;
      }
      Bytes r = make_answer(Bytes(buf, buf + n));
      sendto(udp_, r.data(), r.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  }
  void serve_tcp() {
    while (!stop_) {
      if (!wait_readable(tcp_)) {
        continue;
      }
      int c = accept4(tcp_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        continue;
      }
      uint8_t lenb[2];
      if (read_full(c, lenb, 2)) {
        Bytes q(static_cast<size_t>((lenb[0] << 8) | lenb[1]));
        if (read_full(c, q.data(), q.size())) {
          Bytes r = make_answer(q);
          Bytes out;
          put16(out, static_cast<uint16_t>(r.size()));
          out.insert(out.end(), r.begin(), r.end());
          (void)!write(c, out.data(), out.size());
        }
      }
      close(c);
    }
  }

  int udp_ = -1;
  int tcp_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread udp_thread_;
  std::thread tcp_thread_;
};

// ---- the client: runs in a forked child so that its pid is the test's own ----

bool recv_timeout(int fd, uint8_t* buf, size_t cap, ssize_t& n) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 3000) <= 0) {
    return false;
  }
  n = recv(fd, buf, cap, 0);
  return n >= 12;
}

bool udp_connected(uint16_t port, const Bytes& q, int family = AF_INET) {
  int s = socket(family, SOCK_DGRAM, 0);
  Loopback a(family, port);
  uint8_t buf[2048];
  ssize_t n = 0;
  bool ok = connect(s, a.sa(), a.len) == 0 &&
            send(s, q.data(), q.size(), 0) == static_cast<ssize_t>(q.size()) &&
            recv_timeout(s, buf, sizeof buf, n);
  close(s);
  return ok;
}

bool udp_sendto(uint16_t port, const Bytes& q, int family = AF_INET) {
  int s = socket(family, SOCK_DGRAM, 0);
  Loopback a(family, port);
  uint8_t buf[2048];
  ssize_t n = 0;
  bool ok = sendto(s, q.data(), q.size(), 0, a.sa(), a.len) ==
                static_cast<ssize_t>(q.size()) &&
            recv_timeout(s, buf, sizeof buf, n);
  close(s);
  return ok;
}

bool tcp_query(uint16_t port, const Bytes& q, int family = AF_INET) {
  int s = socket(family, SOCK_STREAM, 0);
  Loopback a(family, port);
  Bytes framed;
  put16(framed, static_cast<uint16_t>(q.size()));
  framed.insert(framed.end(), q.begin(), q.end());
  uint8_t lenb[2];
  bool ok = connect(s, a.sa(), a.len) == 0 &&
            write(s, framed.data(), framed.size()) == static_cast<ssize_t>(framed.size()) &&
            read_full(s, lenb, 2);
  if (ok) {
    Bytes r(static_cast<size_t>((lenb[0] << 8) | lenb[1]));
    ok = read_full(s, r.data(), r.size());
  }
  close(s);
  return ok;
}

/// Runs `body` in a child process and returns its pid once it exited 0.
pid_t run_client(const std::function<bool()>& body) {
  pid_t pid = fork();
  if (pid == 0) {
    _exit(body() ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "client status " << status;
  return pid;
}

std::string self_exe() {
  return fs::read_symlink("/proc/self/exe").string();
}

std::string dns_config(const TempDir& d, uint16_t port, const std::string& needle_extra = "") {
  return needle_section(needle_extra) + "[[source]]\nplugin = \"dns\"\nports = [" +
         std::to_string(port) + "]\n\n[[sink]]\nplugin = \"file\"\npath = \"" +
         d.file("events.jsonl") + "\"\n";
}

std::vector<nlohmann::json> of(const std::vector<nlohmann::json>& evs, pid_t pid,
                               const std::string& type) {
  std::vector<nlohmann::json> out;
  for (auto& e : evs) {
    if (str_field(e, "type") == type && int_field(e, "process.pid") == pid) {
      out.push_back(e);
    }
  }
  return out;
}

std::string tag() {
  return "t" + std::to_string(getpid()) + ".needle.test";
}

void expect_owner(const nlohmann::json& e, pid_t pid) {
  EXPECT_EQ(int_field(e, "process.pid"), pid);
  EXPECT_EQ(int_field(e, "process.tid"), pid);
  EXPECT_EQ(int_field(e, "process.ppid"), getpid());
  EXPECT_EQ(str_field(e, "process.exe"), self_exe());
  EXPECT_FALSE(str_field(e, "process.entity_id").empty());
}

class DnsSource : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(dns_.port(), 0) << "no free loopback port for the responder"; }
  Responder dns_;
};

TEST_F(DnsSource, ConnectedUdpQueryAndAnswerAreTiedToTheSendingProcess) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, dns_config(d, dns_.port()));
  const std::string name = "a." + tag();
  pid_t pid =
      run_client([&] { return udp_connected(dns_.port(), make_query(0x5151, name, kTypeA)); });
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));
  auto qs = of(evs, pid, "dns.query");
  auto rs = of(evs, pid, "dns.response");
  ASSERT_EQ(qs.size(), 1u);
  ASSERT_EQ(rs.size(), 1u);
  for (const auto* e : {&qs[0], &rs[0]}) {
    expect_owner(*e, pid);
    EXPECT_EQ(int_field(*e, "dns.id"), 0x5151);
    EXPECT_EQ(str_field(*e, "dns.query"), name);
    EXPECT_EQ(str_field(*e, "dns.qtype"), "A");
    EXPECT_EQ(str_field(*e, "dns.server_ip"), "127.0.0.1");
    EXPECT_EQ(int_field(*e, "dns.server_port"), dns_.port());
    EXPECT_EQ(str_field(*e, "net.proto"), "udp");
    EXPECT_EQ(str_field(*e, "net.family"), "ipv4");
    EXPECT_EQ(int_field(*e, "net.dst_port"), dns_.port());
    EXPECT_EQ(str_field(*e, "source"), "dns");
  }
  EXPECT_EQ(int_field(qs[0], "net.src_port"), int_field(rs[0], "net.src_port"));
  EXPECT_EQ(field(qs[0], "dns.rcode"), nullptr);
  EXPECT_EQ(str_field(rs[0], "dns.rcode"), "NOERROR");
  const nlohmann::json* answers = field(rs[0], "dns.answers");
  ASSERT_NE(answers, nullptr);
  EXPECT_EQ(*answers, nlohmann::json::parse(R"([{"type":"A","data":"10.53.0.1","ttl":30},
                                                {"type":"A","data":"10.53.0.2","ttl":30}])"));
  for (auto& e : evs) {
    EXPECT_NE(str_field(e, "type"), "needle.gap") << e.dump();
  }
}

// The owner's executable goes into each packet's record in whole 64-byte chunks: a path of
// over 200 bytes takes four, the last one partly. The socket is connected by net_routes run
// from a long folder (the connect stores the owner), then the query and its answer go over it.
TEST_F(DnsSource, ALongExecutablePathIsCarriedWhole) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, dns_config(d, dns_.port()));
  const std::string dir = d.file(std::string(90, 'e') + "/" + std::string(90, 'f'));
  fs::create_directories(dir);
  const std::string exe = dir + "/net_routes";
  fs::copy_file(build_dir() + "/tests/net_routes", exe);
  ASSERT_GT(exe.size(), 3 * 64u) << exe;
  int s = socket(AF_INET, SOCK_DGRAM, 0);   // not close-on-exec: the helper connects it
  ASSERT_GE(s, 0) << std::strerror(errno);
  Result r = run({exe, "connect", std::to_string(s), "127.0.0.1", std::to_string(dns_.port())});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Bytes q = make_query(0x6464, "long." + tag(), kTypeA);
  uint8_t buf[2048];
  ssize_t got = 0;
  EXPECT_EQ(send(s, q.data(), q.size(), 0), static_cast<ssize_t>(q.size()));
  EXPECT_TRUE(recv_timeout(s, buf, sizeof buf, got));
  close(s);
  ASSERT_EQ(n.stop(), 0) << n.err();
  int seen = 0;
  for (const auto& e : read_events(d.file("events.jsonl"))) {
    if (int_field(e, "dns.id") == 0x6464 && str_field(e, "source") == "dns") {
      EXPECT_EQ(str_field(e, "process.exe"), exe) << e.dump();
      ++seen;
    }
  }
  EXPECT_EQ(seen, 2);   // the query and its answer
}

TEST_F(DnsSource, UnconnectedSendtoIsTiedToItsProcess) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, dns_config(d, dns_.port()));
  const std::string name = "a.sendto." + tag();
  pid_t pid = run_client([&] { return udp_sendto(dns_.port(), make_query(77, name, kTypeA)); });
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));
  auto qs = of(evs, pid, "dns.query");
  auto rs = of(evs, pid, "dns.response");
  ASSERT_EQ(qs.size(), 1u);
  ASSERT_EQ(rs.size(), 1u);
  expect_owner(qs[0], pid);
  expect_owner(rs[0], pid);
  EXPECT_EQ(str_field(rs[0], "dns.query"), name);
  EXPECT_EQ(field(rs[0], "dns.answers")->size(), 2u);
}

// One unconnected UDP socket used by a process, then by its child (which inherited it), then
// by the process again: each query and its answer belong to whoever sent the query, so the
// socket's owner is replaced twice.
TEST_F(DnsSource, ASocketPassedToAChildIsTiedToWhoeverSendsOnIt) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, dns_config(d, dns_.port()));
  const std::string first = "a.first." + tag();
  const std::string second = "a.second." + tag();
  const std::string third = "a.third." + tag();
  const uint16_t port = dns_.port();
  auto ask = [port](int s, uint16_t id, const std::string& name) {
    const Bytes q = make_query(id, name, kTypeA);
    sockaddr_in a = loopback(port);
    uint8_t buf[2048];
    ssize_t got = 0;
    return sendto(s, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a) ==
               static_cast<ssize_t>(q.size()) &&
           recv_timeout(s, buf, sizeof buf, got);
  };
  pid_t pid = run_client([&] {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0 || !ask(s, 81, first)) {
      return false;
    }
    pid_t child = fork();
    if (child == 0) {
      _exit(ask(s, 82, second) ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && ask(s, 83, third);
    close(s);
    return ok;
  });
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));
  auto owner_of = [&](const std::string& type, const std::string& name) -> int64_t {
    for (auto& e : evs) {
      if (str_field(e, "type") == type && str_field(e, "dns.query") == name) {
        return int_field(e, "process.pid");
      }
    }
    return -1;
  };
  for (const char* type : {"dns.query", "dns.response"}) {
    EXPECT_EQ(owner_of(type, first), pid) << type;
    const int64_t child = owner_of(type, second);
    EXPECT_GT(child, 0) << type;
    EXPECT_NE(child, pid) << type << ": the child's query is the child's";
    EXPECT_EQ(owner_of(type, third), pid) << type << ": the socket's owner is the parent again";
  }
}

TEST_F(DnsSource, TcpQueryWithLengthPrefixAndCnameChainAnswer) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, dns_config(d, dns_.port()));
  const std::string name = "six." + tag();
  pid_t pid = run_client([&] { return tcp_query(dns_.port(), make_query(4096, name, kTypeAaaa)); });
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));
  auto qs = of(evs, pid, "dns.query");
  auto rs = of(evs, pid, "dns.response");
  ASSERT_EQ(qs.size(), 1u);  // SYN, ACK and FIN segments carry no DNS bytes
  ASSERT_EQ(rs.size(), 1u);
  expect_owner(qs[0], pid);
  expect_owner(rs[0], pid);
  EXPECT_EQ(str_field(qs[0], "net.proto"), "tcp");
  EXPECT_EQ(int_field(rs[0], "dns.id"), 4096);
  EXPECT_EQ(str_field(rs[0], "dns.qtype"), "AAAA");
  EXPECT_EQ(
      *field(rs[0], "dns.answers"),
      nlohmann::json::parse(R"([{"type":"CNAME","data":"real.)" + tag() +
                            R"(","ttl":40},{"type":"AAAA","data":"2001:db8::53","ttl":50}])"));
}

// The same over IPv6 loopback: connected UDP (connect6), an unconnected sendto (sendmsg6) and
// TCP, each query and answer tied to the client with the IPv6 addresses the packet carried.
TEST(DnsSourceIpv6, UdpConnectedSendtoAndTcpOverIpv6) {
  Responder dns(AF_INET6);
  ASSERT_NE(dns.port(), 0) << "no free ::1 port for the responder";
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, dns_config(d, dns.port()));
  const std::string connected = "a.v6c." + tag();
  const std::string sent = "a.v6s." + tag();
  const std::string tcp = "six.v6t." + tag();
  pid_t pid = run_client([&] {
    return udp_connected(dns.port(), make_query(601, connected, kTypeA), AF_INET6) &&
           udp_sendto(dns.port(), make_query(602, sent, kTypeA), AF_INET6) &&
           tcp_query(dns.port(), make_query(603, tcp, kTypeAaaa), AF_INET6);
  });
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));
  auto qs = of(evs, pid, "dns.query");
  auto rs = of(evs, pid, "dns.response");
  ASSERT_EQ(qs.size(), 3u);
  ASSERT_EQ(rs.size(), 3u);
  const std::vector<std::pair<std::string, std::string>> want = {
      {connected, "udp"}, {sent, "udp"}, {tcp, "tcp"}};
  for (size_t i = 0; i < want.size(); ++i) {
    for (const auto* e : {&qs[i], &rs[i]}) {
      expect_owner(*e, pid);
      EXPECT_EQ(int_field(*e, "dns.id"), static_cast<int64_t>(601 + i));
      EXPECT_EQ(str_field(*e, "dns.query"), want[i].first);
      EXPECT_EQ(str_field(*e, "net.family"), "ipv6");
      EXPECT_EQ(str_field(*e, "net.proto"), want[i].second);
      EXPECT_EQ(str_field(*e, "dns.server_ip"), "::1");
      EXPECT_EQ(int_field(*e, "dns.server_port"), dns.port());
    }
    EXPECT_EQ(str_field(rs[i], "dns.rcode"), "NOERROR");
  }
  EXPECT_EQ(field(rs[0], "dns.answers")->size(), 2u);
  EXPECT_EQ(field(rs[1], "dns.answers")->size(), 2u);
  EXPECT_EQ(*field(rs[2], "dns.answers"),
            nlohmann::json::parse(R"([{"type":"CNAME","data":"real.v6t.)" + tag() +
                                  R"(","ttl":40},{"type":"AAAA","data":"2001:db8::53","ttl":50}])"));
}

TEST_F(DnsSource, NxdomainAndUnknownQtypeMnemonics) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, dns_config(d, dns_.port()));
  const std::string name = "missing." + tag();
  pid_t pid = run_client([&] { return udp_connected(dns_.port(), make_query(9, name, 65280)); });
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto rs = of(read_events(d.file("events.jsonl")), pid, "dns.response");
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(str_field(rs[0], "dns.rcode"), "NXDOMAIN");
  EXPECT_EQ(str_field(rs[0], "dns.qtype"), "TYPE65280");
  EXPECT_TRUE(field(rs[0], "dns.answers")->empty());
}

std::string http_get(uint16_t port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = loopback(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return {};
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) {
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

uint16_t free_tcp_port() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = loopback(0);
  socklen_t len = sizeof a;
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

TEST_F(DnsSource, CompressionLoopInAnAnswerIsReportedAndCounted) {
  TempDir d;
  uint16_t mport = free_tcp_port();
  Needle n(d);
  NEEDLE_START_BPF(n, dns_config(d, dns_.port(),
                                 "metrics_listen = \"127.0.0.1:" + std::to_string(mport) + "\""));
  const std::string name = "loop." + tag();
  pid_t pid = run_client([&] { return udp_connected(dns_.port(), make_query(3, name, kTypeA)); });
  std::string body;
  bool counted = eventually([&] {
    body = http_get(mport, "/metrics");
    for (size_t at = body.find("name=\"parse_errors\""); at != std::string::npos;
         at = body.find("name=\"parse_errors\"", at + 1)) {
      size_t bol = body.rfind('\n', at) + 1;
      std::string line = body.substr(bol, body.find('\n', at) - bol);
      if (line.find("source/dns") != std::string::npos && line.back() != '0') {
        return true;
      }
    }
    return false;
  });
  EXPECT_TRUE(counted) << body;
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto rs = of(read_events(d.file("events.jsonl")), pid, "dns.response");
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(str_field(rs[0], "dns.error"), "compression loop");
  EXPECT_EQ(str_field(rs[0], "dns.query"), name);  // the question before the fault is kept
  EXPECT_TRUE(field(rs[0], "dns.answers")->empty());
}

TEST_F(DnsSource, TrafficOnOtherPortsIsNotReported) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, dns_config(d, dns_.port()));
  // A TCP stream and a DNS-shaped datagram to ports that are not configured.
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = loopback(0);
  socklen_t len = sizeof a;
  ASSERT_EQ(bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len), 0);
  ASSERT_EQ(listen(ls, 1), 0);
  uint16_t other = ntohs(a.sin_port);
  std::thread sink([ls] {
    int c = accept(ls, nullptr, nullptr);
    char buf[65536];
    while (c >= 0 && read(c, buf, sizeof buf) > 0) {
    }
    if (c >= 0) {
      close(c);
    }
  });
  pid_t pid = run_client([&] {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in to = loopback(other);
    if (connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
      return false;
    }
    Bytes q = make_query(1, "a.other." + tag(), kTypeA);
    for (int i = 0; i < 64; ++i) {
      if (write(s, q.data(), q.size()) != static_cast<ssize_t>(q.size())) {
        return false;
      }
    }
    close(s);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in uto = loopback(static_cast<uint16_t>(other == 65535 ? 65534 : other + 1));
    sendto(u, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&uto), sizeof uto);
    close(u);
    return true;
  });
  sink.join();
  close(ls);
  ASSERT_EQ(n.stop(), 0) << n.err();
  for (auto& e : read_events(d.file("events.jsonl"))) {
    EXPECT_NE(int_field(e, "process.pid"), pid) << e.dump();
  }
}

TEST(DnsSourceConfig, BadPortsAreRejectedNamingTheKey) {
  TempDir d;
  for (const char* ports : {"[0]", "[65536]", "[]", "[53, -1]"}) {
    std::string cfg = needle_section() +
                      "[[source]]\nplugin = \"dns\"\nports = " + std::string(ports) +
                      "\n\n[[sink]]\nplugin = \"stdout\"\n";
    write_file(d.file("bad.toml"), cfg);
    Result r = run({needle_bin(), "check", "-c", d.file("bad.toml")});
    EXPECT_EQ(r.exit_code, 2) << ports << "\n" << r.err;
    EXPECT_NE(r.err.find("ports"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("bad.toml"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace needle::test
