// sink/syslog against a real rsyslogd that each test starts with its own config (UDP, TCP and a
// unix socket, or TLS with client certificates) on free loopback ports. rsyslog writes every
// message it parsed as a JSON line; each is matched by event id to the event needle wrote to a
// file sink in the same run and compared field by field.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "harness.h"

namespace needle::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A loopback port nobody listens on right now.
uint16_t free_port(int type) {
  int s = socket(AF_INET, type, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

bool tcp_accepts(uint16_t port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(s);
  return ok;
}

std::string find_rsyslogd() {
  for (const char* p : {"/usr/sbin/rsyslogd", "/sbin/rsyslogd"}) {
    if (access(p, X_OK) == 0) {
      return p;
    }
  }
  return "";
}

// A private rsyslogd: started with -n (it stays our child), stopped by SIGTERM then SIGKILL.
class Rsyslog {
 public:
  struct Tls {
    std::string ca, cert, key;
  };
  Rsyslog(const TempDir& dir, std::optional<Tls> tls = std::nullopt)
      : dir_(dir), tls_(std::move(tls)) {
    udp_port_ = free_port(SOCK_DGRAM);
    tcp_port_ = free_port(SOCK_STREAM);
    fs::create_directories(dir.file("rsyslog-work"));
    write_file(dir.file("rsyslog.conf"), config());
  }
  ~Rsyslog() { stop(); }
  Rsyslog(const Rsyslog&) = delete;
  Rsyslog& operator=(const Rsyslog&) = delete;

  bool start() {
    std::string bin = find_rsyslogd();
    if (bin.empty()) {
      return false;
    }
    std::string conf = dir_.file("rsyslog.conf");
    std::string log = dir_.file("rsyslogd.log");
    std::string pidfile = dir_.file("rsyslogd.pid");
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // no orphan if the test process dies
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      execl(bin.c_str(), bin.c_str(), "-n", "-f", conf.c_str(), "-i", pidfile.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    return eventually([&] { return tcp_accepts(tcp_port_) && (tls_ || fs::exists(socket_path())); },
                      std::chrono::seconds(10));
  }

  void stop() {
    if (pid_ <= 0) {
      return;
    }
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  /// Every message rsyslog wrote so far (a last line still being written is left out).
  std::vector<json> messages() const {
    std::vector<json> out;
    std::istringstream in(read_file(dir_.file("rsyslog-out.jsonl")));
    std::string line;
    while (std::getline(in, line)) {
      json j = json::parse(line, nullptr, false);
      if (!j.is_discarded()) {
        out.push_back(std::move(j));
      }
    }
    return out;
  }

  uint16_t udp_port() const { return udp_port_; }
  uint16_t tcp_port() const { return tcp_port_; }
  std::string socket_path() const { return dir_.file("rsyslog.sock"); }
  std::string log() const { return read_file(dir_.file("rsyslogd.log")); }

 private:
  std::string config() const {
    std::string d = dir_.path();
    std::string c = "global(workDirectory=\"" + d + "/rsyslog-work\" maxMessageSize=\"64k\"";
    if (tls_) {
      c += " DefaultNetstreamDriver=\"ossl\" DefaultNetstreamDriverCAFile=\"" + tls_->ca +
           "\" DefaultNetstreamDriverCertFile=\"" + tls_->cert +
           "\" DefaultNetstreamDriverKeyFile=\"" + tls_->key + "\")\n" +
           // Mutual TLS: the client must present a certificate signed by the CA.
           "module(load=\"imtcp\" StreamDriver.Name=\"ossl\" StreamDriver.Mode=\"1\" "
           "StreamDriver.AuthMode=\"x509/certvalid\")\n";
    } else {
      c += ")\nmodule(load=\"imudp\")\nmodule(load=\"imtcp\")\n"
           "module(load=\"imuxsock\" SysSock.Use=\"off\")\n";
    }
    c += R"(template(name="parsed" type="list" option.jsonf="on") {
  property(outname="pri" name="pri" format="jsonf")
  property(outname="version" name="protocol-version" format="jsonf")
  property(outname="timestamp" name="timereported" format="jsonf" dateFormat="rfc3339")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app_name" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="sd" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
  property(outname="input" name="inputname" format="jsonf")
}
)";
    c += "ruleset(name=\"test\") { action(type=\"omfile\" file=\"" + d +
         "/rsyslog-out.jsonl\" template=\"parsed\") }\n";
    c += "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"" + std::to_string(tcp_port_) +
         "\" ruleset=\"test\")\n";
    if (!tls_) {
      c += "input(type=\"imudp\" address=\"127.0.0.1\" port=\"" + std::to_string(udp_port_) +
           "\" ruleset=\"test\")\n";
      c += "input(type=\"imuxsock\" socket=\"" + socket_path() +
           "\" ruleset=\"test\" useSpecialParser=\"off\" parseHostname=\"on\" "
           "ignoreTimestamp=\"off\")\n";
    }
    return c;
  }

  const TempDir& dir_;
  std::optional<Tls> tls_;
  uint16_t udp_port_ = 0;
  uint16_t tcp_port_ = 0;
  pid_t pid_ = -1;
};

#define NEEDLE_REQUIRE_RSYSLOG()                                                       \
  do {                                                                                 \
    if (find_rsyslogd().empty()) {                                                     \
      GTEST_SKIP() << "rsyslogd is not installed (scripts/setup.sh test installs it)"; \
    }                                                                                  \
  } while (0)

// Runs `count` execs of /bin/true with a marker argument; returns their pids.
std::set<int64_t> exec_marked(int count, const std::string& marker) {
  std::set<int64_t> pids;
  for (int i = 0; i < count; ++i) {
    int status = 0;
    pids.insert(
        spawn_wait("/bin/true", {"needle-syslog-test", marker, std::to_string(i)}, &status));
  }
  return pids;
}

// The test's own process.exec events from the file sink, by id.
std::map<std::string, json> own_execs(const std::string& file, const std::set<int64_t>& pids) {
  std::map<std::string, json> out;
  for (auto& ev : read_events(file)) {
    if (str_field(ev, "type") == "process.exec" && pids.count(int_field(ev, "process.pid"))) {
      out[str_field(ev, "id")] = ev;
    }
  }
  return out;
}

// rsyslog messages of one input and PRI whose MSG is one of `want`, by event id, counting
// duplicates.
std::map<std::string, std::vector<json>> received(const std::vector<json>& msgs,
                                                  const std::string& input, const std::string& pri,
                                                  const std::map<std::string, json>& want) {
  std::map<std::string, std::vector<json>> out;
  for (const json& m : msgs) {
    if (m.value("input", "") != input || m.value("pri", "") != pri) {
      continue;
    }
    json body = json::parse(m.value("msg", ""), nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      continue;
    }
    std::string id = body.value("id", "");
    if (want.count(id)) {
      out[id].push_back(m);
    }
  }
  return out;
}

// "2026-01-02T03:04:05.123456789Z" -> "2026-01-02T03:04:05.123456Z", as RFC 5424 allows.
std::string micros(const std::string& t) {
  return t.substr(0, 26) + "Z";
}

std::string z(const std::string& t) {
  if (t.size() > 6 && t.compare(t.size() - 6, 6, "+00:00") == 0) {
    return t.substr(0, t.size() - 6) + "Z";
  }
  return t;
}

// One parsed RFC 5424 message against the event needle wrote to the file sink.
void expect_rfc5424(const json& m, const json& ev, int pri, pid_t needle_pid,
                    const std::string& sd) {
  SCOPED_TRACE(m.dump());
  EXPECT_EQ(m.value("pri", ""), std::to_string(pri));
  EXPECT_EQ(m.value("version", ""), "1");
  EXPECT_EQ(z(m.value("timestamp", "")), micros(str_field(ev, "time")));
  EXPECT_EQ(m.value("hostname", ""), str_field(ev, "host.name"));
  EXPECT_EQ(m.value("app_name", ""), "needle");
  EXPECT_EQ(m.value("procid", ""), std::to_string(needle_pid));
  EXPECT_EQ(m.value("msgid", ""), "process.exec");
  EXPECT_EQ(m.value("sd", ""), sd);
  EXPECT_EQ(json::parse(m.value("msg", "")), ev);  // the whole event, as the file sink has it
}

std::string source_and_file(const TempDir& d) {
  return "[[source]]\nplugin = \"process\"\n[[sink]]\nplugin = \"file\"\npath = \"" +
         d.file("events.jsonl") + "\"\nevents = [\"process.exec\"]\n";
}

std::string syslog_sink(const std::string& id, const std::string& address,
                        const std::string& extra = "") {
  return "[[sink]]\nplugin = \"syslog\"\nid = \"" + id + "\"\naddress = \"" + address +
         "\"\nevents = [\"process.exec\"]\n" + extra;
}

TEST(SyslogSink, UdpTcpAndUnixMessagesCarryEveryEventFieldByField) {
  NEEDLE_REQUIRE_RSYSLOG();
  TempDir d;
  Rsyslog rs(d);
  ASSERT_TRUE(rs.start()) << rs.log();
  std::string udp = "udp://127.0.0.1:" + std::to_string(rs.udp_port());
  Needle n(d);
  NEEDLE_START_BPF(
      n, needle_section() + source_and_file(d) +
             syslog_sink("udp5424", udp, "structured_data = [\"test=udp\", \"q=a\\\"b\"]\n") +
             syslog_sink("tcp", "tcp://127.0.0.1:" + std::to_string(rs.tcp_port()),
                         "facility = \"auth\"\nseverity = \"notice\"\n") +
             syslog_sink("unix", "unix://" + rs.socket_path(), "facility = \"local3\"\n") +
             syslog_sink("udp3164", udp,
                         "rfc = \"3164\"\nfacility = \"local1\"\nseverity = \"warning\"\n"));
  auto pids = exec_marked(40, "syslog-fields");
  std::map<std::string, json> want;
  ASSERT_TRUE(eventually(
      [&] {
        want = own_execs(d.file("events.jsonl"), pids);
        return want.size() == pids.size() &&
               received(rs.messages(), "imuxsock", "158", want).size() == want.size() &&
               received(rs.messages(), "imtcp", "37", want).size() == want.size() &&
               received(rs.messages(), "imudp", "134", want).size() == want.size() &&
               received(rs.messages(), "imudp", "140", want).size() == want.size();
      },
      std::chrono::seconds(20)))
      << "file events " << want.size() << " of " << pids.size() << "\n"
      << n.err() << rs.log();
  ASSERT_EQ(n.stop(), 0) << n.err();

  auto msgs = rs.messages();
  auto udp5424 = received(msgs, "imudp", "134", want);        // local0.info (the defaults)
  auto tcp = received(msgs, "imtcp", "37", want);             // auth.notice
  auto unix_dgram = received(msgs, "imuxsock", "158", want);  // local3.info
  auto bsd = received(msgs, "imudp", "140", want);            // local1.warning, RFC 3164
  for (const auto& [id, ev] : want) {
    SCOPED_TRACE(id);
    ASSERT_EQ(udp5424[id].size(), 1u);
    ASSERT_EQ(tcp[id].size(), 1u);
    ASSERT_EQ(unix_dgram[id].size(), 1u);
    ASSERT_EQ(bsd[id].size(), 1u);
    expect_rfc5424(udp5424[id][0], ev, 134, n.pid(), R"([needle@32473 test="udp" q="a\"b"])");
    expect_rfc5424(tcp[id][0], ev, 37, n.pid(), "-");
    expect_rfc5424(unix_dgram[id][0], ev, 158, n.pid(), "-");
    // RFC 3164 has a second-resolution local-format time, a TAG and no MSGID.
    const json& b = bsd[id][0];
    EXPECT_EQ(b.value("app_name", ""), "needle") << b;
    EXPECT_EQ(b.value("procid", ""), std::to_string(n.pid())) << b;
    EXPECT_EQ(b.value("hostname", ""), str_field(ev, "host.name")) << b;
    EXPECT_EQ(json::parse(b.value("msg", "")), ev);
  }
  std::printf("[ measure ] %zu events, each over udp, tcp, unix and udp/3164\n", want.size());
}

TEST(SyslogSink, TlsWithClientCertificateDeliversEveryEvent) {
  NEEDLE_REQUIRE_RSYSLOG();
  TempDir d;
  Result pki = run({"/bin/bash", source_dir() + "/tests/peers/pki.sh", d.path(), "syslog.test"});
  ASSERT_EQ(pki.exit_code, 0) << pki.err;
  Rsyslog rs(d, Rsyslog::Tls{d.file("ca.pem"), d.file("server.pem"), d.file("server.key")});
  ASSERT_TRUE(rs.start()) << rs.log();
  std::string tls = "tls://127.0.0.1:" + std::to_string(rs.tcp_port());
  Needle n(d);
  NEEDLE_START_BPF(n, needle_section() + source_and_file(d) +
                          syslog_sink("tls", tls,
                                      "ca_file = \"ca.pem\"\ncert_file = \"client.pem\"\n"
                                      "key_file = \"client.key\"\n"
                                      "tls_server_name = \"syslog.test\"\n"));
  auto pids = exec_marked(30, "syslog-tls");
  std::map<std::string, json> want;
  ASSERT_TRUE(eventually(
      [&] {
        want = own_execs(d.file("events.jsonl"), pids);
        return want.size() == pids.size() &&
               received(rs.messages(), "imtcp", "134", want).size() == want.size();
      },
      std::chrono::seconds(20)))
      << n.err() << rs.log();
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto got = received(rs.messages(), "imtcp", "134", want);
  for (const auto& [id, ev] : want) {
    ASSERT_EQ(got[id].size(), 1u) << id;
    expect_rfc5424(got[id][0], ev, 134, n.pid(), "-");
  }
}

TEST(SyslogSink, CheckConnectRefusesAServerWhoseCertificateNamesAnotherHost) {
  NEEDLE_REQUIRE_RSYSLOG();
  TempDir d;
  Result pki = run({"/bin/bash", source_dir() + "/tests/peers/pki.sh", d.path(), "syslog.test"});
  ASSERT_EQ(pki.exit_code, 0) << pki.err;
  Rsyslog rs(d, Rsyslog::Tls{d.file("ca.pem"), d.file("server.pem"), d.file("server.key")});
  ASSERT_TRUE(rs.start()) << rs.log();
  std::string tls = "tls://127.0.0.1:" + std::to_string(rs.tcp_port());
  std::string base =
      "ca_file = \"ca.pem\"\ncert_file = \"client.pem\"\nkey_file = \"client.key\"\n";
  write_file(
      d.file("good.toml"),
      needle_section() + syslog_sink("tls", tls, base + "tls_server_name = \"syslog.test\"\n"));
  Result good = run({needle_bin(), "check", "--connect", "-c", d.file("good.toml")});
  EXPECT_EQ(good.exit_code, 0) << good.err;
  write_file(
      d.file("bad.toml"),
      needle_section() + syslog_sink("tls", tls, base + "tls_server_name = \"other.test\"\n"));
  Result bad = run({needle_bin(), "check", "--connect", "-c", d.file("bad.toml")});
  EXPECT_EQ(bad.exit_code, 1) << bad.err;
  EXPECT_NE(bad.err.find(tls), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("certificate"), std::string::npos) << bad.err;
}

TEST(SyslogSink, TcpServerRestartMidRunLosesNoEvent) {
  NEEDLE_REQUIRE_RSYSLOG();
  TempDir d;
  Rsyslog rs(d);
  ASSERT_TRUE(rs.start()) << rs.log();
  Needle n(d);
  NEEDLE_START_BPF(n, needle_section() + source_and_file(d) +
                          syslog_sink("tcp", "tcp://127.0.0.1:" + std::to_string(rs.tcp_port())));
  auto delivered = [&](const std::set<int64_t>& pids) {
    auto want = own_execs(d.file("events.jsonl"), pids);
    return want.size() == pids.size() &&
           received(rs.messages(), "imtcp", "134", want).size() == want.size();
  };
  auto before = exec_marked(20, "syslog-before");
  ASSERT_TRUE(eventually([&] { return delivered(before); })) << n.err();

  rs.stop();  // the server goes away: the sink sees the hang-up and retries
  auto during = exec_marked(20, "syslog-during");
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_TRUE(rs.start()) << rs.log();
  auto after = exec_marked(20, "syslog-after");

  std::set<int64_t> all = before;
  all.insert(during.begin(), during.end());
  all.insert(after.begin(), after.end());
  ASSERT_TRUE(eventually([&] { return delivered(all); }, std::chrono::seconds(30)))
      << n.err() << rs.log();
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto want = own_execs(d.file("events.jsonl"), all);
  auto got = received(rs.messages(), "imtcp", "134", want);
  size_t dups = 0;
  for (const auto& [id, ev] : want) {
    ASSERT_GE(got[id].size(), 1u) << id;
    dups += got[id].size() - 1;
    expect_rfc5424(got[id][0], ev, 134, n.pid(), "-");
  }
  EXPECT_EQ(dups, 0u) << "at-least-once delivery sent some events twice";
  EXPECT_NE(n.err().find("reconnected to tcp://127.0.0.1"), std::string::npos) << n.err();
}

TEST(SyslogSink, MalformedAddressOrNameFailsCheckWithLineAndKey) {
  TempDir d;
  auto check = [&](const std::string& sink) {
    write_file(d.file("c.toml"), needle_section() + "[[sink]]\nplugin = \"syslog\"\n" + sink);
    return run({needle_bin(), "check", "-c", d.file("c.toml")});
  };
  // [[sink]] is line 5 of these configs, so the sink's first key is line 7.
  Result r = check("address = \"tcp//127.0.0.1:514\"\n");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("c.toml:7: key 'address'"), std::string::npos) << r.err;
  r = check("address = \"udp://127.0.0.1:99999\"\n");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("key 'address'"), std::string::npos) << r.err;
  r = check("address = \"udp://127.0.0.1\"\nfacility = \"local9\"\n");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("c.toml:8: key 'facility'"), std::string::npos) << r.err;
  r = check("address = \"udp://127.0.0.1\"\nformat = \"msgpack\"\n");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("key 'format'"), std::string::npos) << r.err;
  r = check("address = \"udp://127.0.0.1\"\nca_file = \"/etc/hostname\"\n");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("key 'ca_file'"), std::string::npos) << r.err;
}

TEST(SyslogSink, CheckConnectNamesAnUnreachableEndpoint) {
  TempDir d;
  std::string addr = "tcp://127.0.0.1:" + std::to_string(free_port(SOCK_STREAM));
  write_file(d.file("c.toml"),
             needle_section() + "[[sink]]\nplugin = \"syslog\"\naddress = \"" + addr + "\"\n");
  Result plain = run({needle_bin(), "check", "-c", d.file("c.toml")});
  EXPECT_EQ(plain.exit_code, 0) << plain.err;  // no network I/O without --connect
  Result r = run({needle_bin(), "check", "--connect", "-c", d.file("c.toml")});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(addr), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("refused"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace needle::test
