// sink/forward against real Forward receivers started by each test: FluentServer of the npm
// package @fluent-org/logger (or, when npm is unavailable, the project's python3-msgpack
// receiver), a receiver that drops connections mid-chunk, and an independent python3-msgpack
// decoder of the plain stream mode. Every test compares what arrived with a file sink fed by the
// same needle, so nothing is judged by "the only event".
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <map>
#include <set>

#include "harness.h"

namespace needle::test {
namespace {

using Env = std::map<std::string, std::string>;

// Runs argv with extra environment variables (the harness passes its own environment on).
Result run_env(const std::vector<std::string>& argv, const Env& env, int timeout_s = 180) {
  for (const auto& [k, v] : env) {
    setenv(k.c_str(), v.c_str(), 1);
  }
  Result r = run(argv, timeout_s);
  for (const auto& [k, v] : env) {
    unsetenv(k.c_str());
  }
  return r;
}

uint16_t free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// "2026-11-29T12:34:56.123456789Z" → (seconds, nanoseconds)
std::pair<int64_t, int64_t> rfc3339(const std::string& s) {
  std::tm tm{};
  strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  int64_t ns = 0;
  size_t dot = s.find('.');
  if (dot != std::string::npos) {
    std::string frac = s.substr(dot + 1, s.find('Z') - dot - 1);
    frac.resize(9, '0');
    ns = std::stoll(frac);
  }
  return {static_cast<int64_t>(timegm(&tm)), ns};
}

void exec_markers(const std::string& marker, int count) {
  for (int i = 0; i < count; ++i) {
    int status = 0;
    spawn_wait("/bin/true", {"true", marker, std::to_string(i)}, &status);
  }
}

class ForwardSink : public ::testing::Test {
 protected:
  void TearDown() override { run({"/bin/bash", script(), "down", peer()}); }
  std::string script() const { return source_dir() + "/tests/peers/forward-receiver.sh"; }
  std::string peer() const { return dir_.file("peer"); }

  /// Starts a receiver; returns its "impl=... where=..." line (the test fails when it cannot).
  std::string start_receiver(Env env) {
    env["NEEDLE_PEERS_CACHE"] = build_dir() + "/peers";
    Result r = run_env({"/bin/bash", script(), "up", peer()}, env);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    std::printf("[ peer    ] %s", r.out.c_str());
    return r.out;
  }
  std::string port_address() const { return "tcp://127.0.0.1:" + read_file(peer() + "/port"); }
  /// Stops the receiver, so its output is complete, and returns what it wrote.
  std::vector<nlohmann::json> received() {
    run({"/bin/bash", script(), "down", peer()});
    return read_events(peer() + "/events.jsonl");
  }
  std::string config(const std::string& forward_keys, const std::string& needle_extra = "") {
    return needle_section(needle_extra) + "[[source]]\nplugin = \"process\"\n" +
           "[[sink]]\nplugin = \"file\"\npath = \"" + dir_.file("events.jsonl") + "\"\n" +
           "[[sink]]\nplugin = \"forward\"\n" + forward_keys + "\n";
  }
  std::vector<nlohmann::json> file_events() { return read_events(dir_.file("events.jsonl")); }

  /// Every event of the file sink arrived (at least once) as a Forward entry tagged with its
  /// type and timed with its own time as EventTime.
  void expect_everything_arrived(const std::vector<nlohmann::json>& got,
                                 const std::string& marker) {
    std::map<std::string, const nlohmann::json*> by_id;
    for (const auto& e : got) {
      by_id[e["record"].value("id", std::string())] = &e;
    }
    auto sent = file_events();
    ASSERT_FALSE(sent.empty());
    size_t markers = 0;
    for (const auto& ev : sent) {
      std::string id = str_field(ev, "id");
      auto it = by_id.find(id);
      ASSERT_NE(it, by_id.end()) << "lost: " << ev.dump();
      const nlohmann::json& entry = *it->second;
      EXPECT_EQ(entry["tag"], "needle." + str_field(ev, "type"));
      auto [sec, ns] = rfc3339(str_field(ev, "time"));
      ASSERT_TRUE(entry["time"].is_object()) << "EventTime expected: " << entry.dump();
      EXPECT_EQ(entry["time"]["epoch"].get<int64_t>(), sec);
      EXPECT_EQ(entry["time"]["nano"].get<int64_t>(), ns);
      EXPECT_EQ(entry["record"], ev) << "the record is the event itself";
      const nlohmann::json* args = field(ev, "process.args");
      if (str_field(ev, "type") == "process.exec" && args && args->size() > 1 &&
          (*args)[1] == marker) {
        ++markers;
      }
    }
    EXPECT_EQ(markers, 40u) << "every exec of this test reached both sinks";
  }

  TempDir dir_;
};

TEST_F(ForwardSink, PackedModeDeliversEveryEventWithEventTimeAndTag) {
  std::string impl = start_receiver({});
  Needle n(dir_);
  NEEDLE_START_BPF(n, config("address = \"" + port_address() + "\"\nmode = \"packed\""));
  exec_markers("fwd-packed", 40);
  ASSERT_EQ(n.stop(), 0) << n.err();
  EXPECT_NE(n.err().find("connected to tcp://127.0.0.1:"), std::string::npos) << n.err();
  expect_everything_arrived(received(), "fwd-packed");
}

TEST_F(ForwardSink, CompressedModeOverAUnixSocketDeliversEveryEvent) {
  std::string sock = dir_.file("fwd.sock");
  start_receiver({{"FWD_SOCKET", sock}});
  Needle n(dir_);
  NEEDLE_START_BPF(n, config("address = \"unix://" + sock + "\"\nmode = \"compressed\""));
  exec_markers("fwd-gzip", 40);
  ASSERT_EQ(n.stop(), 0) << n.err();
  expect_everything_arrived(received(), "fwd-gzip");
}

TEST_F(ForwardSink, SharedKeyHandshakeLetsEventsThrough) {
  start_receiver({{"FWD_SHARED_KEY", "needle-test-key"}});
  Needle n(dir_);
  NEEDLE_START_BPF(n, config("address = \"" + port_address() +
                             "\"\nshared_key = \"needle-test-key\"\nself_hostname = \"sensor-a\""));
  exec_markers("fwd-auth", 40);
  ASSERT_EQ(n.stop(), 0) << n.err();
  expect_everything_arrived(received(), "fwd-auth");
}

TEST_F(ForwardSink, WrongSharedKeyIsRefusedWithAClearError) {
  start_receiver({{"FWD_SHARED_KEY", "the-right-key"}});
  std::string cfg = config("address = \"" + port_address() + "\"\nshared_key = \"a-wrong-key\"",
                           "shutdown_timeout = 2");
  // needle check --connect does the handshake and names why it failed.
  write_file(dir_.file("check.toml"), cfg);
  Result chk = run({needle_bin(), "check", "--connect", "-c", dir_.file("check.toml")});
  EXPECT_EQ(chk.exit_code, 1) << chk.err;
  EXPECT_NE(chk.err.find("shared key mismatch"), std::string::npos) << chk.err;
  EXPECT_NE(chk.err.find(port_address()), std::string::npos) << "names the endpoint: " << chk.err;
  // needle run keeps the events queued and says why nothing is delivered.
  Needle n(dir_);
  NEEDLE_START_BPF(n, cfg);
  exec_markers("fwd-wrong-key", 5);
  ASSERT_TRUE(eventually([&] { return n.err().find("shared key mismatch") != std::string::npos; }))
      << n.err();
  ASSERT_EQ(n.stop(), 0) << n.err();
  EXPECT_NE(n.err().find("refused the handshake"), std::string::npos) << n.err();
  for (const auto& e : received()) {
    ADD_FAILURE() << "an event passed a refused handshake: " << e.dump();
  }
}

TEST_F(ForwardSink, ReceiverDroppingTheConnectionMidChunkGetsTheChunkAgain) {
  // The first chunk is cut off after its first bytes; the next is stored but never acked. The
  // sink must send both again: duplicates are allowed, loss is not.
  start_receiver({{"FWD_DROP_FIRST", "1"}, {"FWD_NOACK_FIRST", "1"}});
  Needle n(dir_);
  NEEDLE_START_BPF(n, config("address = \"" + port_address() + "\"\nack_timeout_ms = 2000"));
  exec_markers("fwd-drop", 40);
  ASSERT_EQ(n.stop(), 0) << n.err();
  std::string log = read_file(peer() + "/receiver.log");
  EXPECT_NE(log.find("dropped the connection after"), std::string::npos) << log;
  EXPECT_NE(log.find("closed without its ack"), std::string::npos) << log;
  auto got = received();
  expect_everything_arrived(got, "fwd-drop");
  std::map<std::string, int> seen;
  int duplicates = 0;
  for (const auto& e : got) {
    duplicates += seen[e["record"].value("id", std::string())]++ > 0 ? 1 : 0;
  }
  EXPECT_GT(duplicates, 0) << "the unacked chunk was stored, so it must arrive twice";
  EXPECT_NE(n.err().find("the batch will be offered again"), std::string::npos) << n.err();
}

TEST_F(ForwardSink, StreamModeIsReadByAnIndependentMsgpackDecoder) {
  std::string sock = dir_.file("stream.sock");
  start_receiver({{"FWD_IMPL", "stream"}, {"FWD_SOCKET", sock}});
  Needle n(dir_);
  NEEDLE_START_BPF(n, config("address = \"unix://" + sock + "\"\nmode = \"stream\""));
  exec_markers("fwd-stream", 40);
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto got = received();
  std::map<std::string, nlohmann::json> by_id;
  for (const auto& e : got) {
    ASSERT_FALSE(e.contains("protocol_error")) << e.dump();
    by_id[str_field(e, "id")] = e;
  }
  auto sent = file_events();
  ASSERT_FALSE(sent.empty());
  size_t markers = 0;
  for (const auto& ev : sent) {
    auto it = by_id.find(str_field(ev, "id"));
    ASSERT_NE(it, by_id.end()) << "lost: " << ev.dump();
    EXPECT_EQ(it->second, ev) << "decoded msgpack equals the JSON of the same event";
    const nlohmann::json* args = field(ev, "process.args");
    markers += args && args->size() > 1 && (*args)[1] == "fwd-stream" &&
                       str_field(ev, "type") == "process.exec"
                   ? 1
                   : 0;
  }
  EXPECT_EQ(markers, 40u);
}

TEST_F(ForwardSink, TlsWithTheReceiversCaDeliversEveryEvent) {
  std::string cert = dir_.file("cert.pem");
  std::string key = dir_.file("key.pem");
  Result gen = run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  start_receiver({{"FWD_TLS_CERT", cert}, {"FWD_TLS_KEY", key}});
  std::string tls = "tls://127.0.0.1:" + read_file(peer() + "/port");
  Needle n(dir_);
  NEEDLE_START_BPF(n, config("address = \"" + tls + "\"\nca_file = \"" + cert + "\""));
  exec_markers("fwd-tls", 40);
  ASSERT_EQ(n.stop(), 0) << n.err();
  expect_everything_arrived(received(), "fwd-tls");
}

// Bad configuration, each refused by `needle check` (no root, no network) naming the key.
TEST(ForwardSinkConfig, BadValuesAreConfigErrorsNamingTheKey) {
  TempDir d;
  struct Case {
    std::string keys;
    std::string key;
    std::string says;
  } cases[] = {
      {"address = \"127.0.0.1:24224\"", "address", "expected tcp://HOST:PORT"},
      {"address = \"tcp://127.0.0.1:99999\"", "address", "1 to 65535"},
      {"address = \"unix://relative.sock\"", "address", "absolute"},
      {"address = \"tcp://127.0.0.1:24224\"\nformat = \"json\"", "format", "msgpack"},
      {"address = \"tcp://127.0.0.1:24224\"\nmode = \"message\"", "mode", "packed"},
      {"address = \"tcp://127.0.0.1:24224\"\ntag = \"needle.{host}\"", "tag", "{host}"},
      {"address = \"tcp://127.0.0.1:24224\"\nack_timeout_ms = 0", "ack_timeout_ms", "from 1"},
      {"address = \"tcp://127.0.0.1:24224\"\nca_file = \"/etc/hostname\"", "ca_file", "tls://"},
      {"address = \"tls://127.0.0.1:24224\"\nca_file = \"/nonexistent.pem\"", "ca_file",
       "no such file"},
      {"address = \"unix:///tmp/x.sock\"\nmode = \"stream\"\nshared_key = \"k\"", "shared_key",
       "no handshake"},
      {"address = \"tcp://127.0.0.1:24224\"\nusername = \"u\"\npassword = \"p\"", "password",
       "shared_key"},
      {"tag = \"x\"", "address", "missing required key"},
  };
  for (const auto& c : cases) {
    std::string cfg = needle_section() + "[[sink]]\nplugin = \"forward\"\n" + c.keys + "\n";
    write_file(d.file("bad.toml"), cfg);
    Result r = run({needle_bin(), "check", "-c", d.file("bad.toml")});
    EXPECT_EQ(r.exit_code, 2) << c.keys << "\n" << r.err;
    EXPECT_NE(r.err.find(c.key), std::string::npos) << c.keys << "\n" << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.keys << "\n" << r.err;
    EXPECT_NE(r.err.find("bad.toml"), std::string::npos) << "names the file: " << r.err;
  }
}

TEST(ForwardSinkConfig, CheckConnectNamesAnUnreachableEndpoint) {
  TempDir d;
  for (std::string addr : {"tcp://127.0.0.1:" + std::to_string(free_port()),
                           "unix://" + d.file("nobody-listens.sock")}) {
    write_file(d.file("c.toml"), needle_section() + "[[sink]]\nplugin = \"forward\"\naddress = \"" +
                                     addr + "\"\nconnect_timeout_ms = 1000\n");
    Result plain = run({needle_bin(), "check", "-c", d.file("c.toml")});
    EXPECT_EQ(plain.exit_code, 0) << "check without --connect does no network I/O: " << plain.err;
    Result r = run({needle_bin(), "check", "--connect", "-c", d.file("c.toml")});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("cannot connect to " + addr), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace needle::test
