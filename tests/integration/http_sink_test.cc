// sink/http against a real HTTP(S) server the test starts (tests/peers/http_receiver.py, python3
// stdlib) on a free loopback port. The receiver stores every accepted body; the events in them
// are compared, by id and order, with what needle wrote to a file sink in the same run.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <msgpack.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "harness.h"

namespace needle::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A loopback TCP port nobody listens on right now.
int free_port() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

std::string python3() {
  for (const char* p : {"/usr/bin/python3", "/bin/python3"}) {
    if (access(p, X_OK) == 0) {
      return p;
    }
  }
  return "";
}

// The receiver process: started with its options, killed (and reaped) by the destructor.
class Receiver {
 public:
  Receiver(const TempDir& dir, std::vector<std::string> options, std::string name = "recv")
      : dir_(dir.file(name)), options_(std::move(options)) {
    fs::create_directories(dir_);
  }
  ~Receiver() { stop(); }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  bool start() {
    std::string py = python3();
    if (py.empty()) {
      return false;
    }
    fs::remove(dir_ + "/port");
    std::vector<std::string> argv{py,
                                  source_dir() + "/tests/peers/http_receiver.py",
                                  "--dir",
                                  dir_,
                                  "--port-file",
                                  dir_ + "/port"};
    argv.insert(argv.end(), options_.begin(), options_.end());
    std::string log = dir_ + "/receiver.log";
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // no orphan if the test process dies
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> args;
      for (auto& a : argv) {
        args.push_back(const_cast<char*>(a.c_str()));
      }
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    if (!eventually([&] { return fs::exists(dir_ + "/port"); }, std::chrono::seconds(10))) {
      return false;
    }
    port_ = std::stoi(read_file(dir_ + "/port"));
    return true;
  }

  void stop() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  std::string url(const std::string& scheme = "http", const std::string& path = "/ingest") const {
    return scheme + "://127.0.0.1:" + std::to_string(port_) + path;
  }

  /// One entry per request, in arrival order.
  std::vector<json> requests() const {
    std::vector<json> out;
    std::istringstream in(read_file(dir_ + "/requests.jsonl"));
    std::string line;
    while (std::getline(in, line)) {
      json j = json::parse(line, nullptr, false);
      if (!j.is_discarded()) {
        out.push_back(std::move(j));
      }
    }
    return out;
  }

  /// The events of every accepted body, in arrival order (NDJSON or msgpack bodies).
  std::vector<json> events(bool msgpack = false) const {
    std::vector<json> out;
    for (const json& r : requests()) {
      if (r.value("status", 0) / 100 != 2) {
        continue;
      }
      char name[32];
      std::snprintf(name, sizeof name, "/%06d.body", r.value("n", 0));
      std::string body = read_file(dir_ + name);
      if (msgpack) {
        size_t off = 0;
        while (off < body.size()) {
          msgpack::object_handle h = msgpack::unpack(body.data(), body.size(), off);
          std::stringstream ss;
          ss << h.get();  // msgpack-cxx prints objects as JSON
          out.push_back(json::parse(ss.str()));
        }
        continue;
      }
      std::istringstream in(body);
      std::string line;
      while (std::getline(in, line)) {
        out.push_back(json::parse(line));
      }
    }
    return out;
  }

  std::string log() const { return read_file(dir_ + "/receiver.log"); }

 private:
  std::string dir_;
  std::vector<std::string> options_;
  pid_t pid_ = -1;
  int port_ = 0;
};

#define NEEDLE_REQUIRE_PYTHON3()                                                      \
  do {                                                                                \
    if (python3().empty()) {                                                          \
      GTEST_SKIP() << "python3 is not installed (scripts/setup.sh test installs it)"; \
    }                                                                                 \
  } while (0)

std::set<int64_t> exec_marked(int count, const std::string& marker) {
  std::set<int64_t> pids;
  for (int i = 0; i < count; ++i) {
    int status = 0;
    pids.insert(spawn_wait("/bin/true", {"needle-http-test", marker, std::to_string(i)}, &status));
  }
  return pids;
}

bool own(const json& ev, const std::set<int64_t>& pids) {
  return str_field(ev, "type") == "process.exec" && pids.count(int_field(ev, "process.pid"));
}

// Ids of the test's own events, in the order of `events`.
std::vector<std::string> own_ids(const std::vector<json>& events, const std::set<int64_t>& pids) {
  std::vector<std::string> ids;
  for (const json& ev : events) {
    if (own(ev, pids)) {
      ids.push_back(str_field(ev, "id"));
    }
  }
  return ids;
}

std::string source_and_file(const TempDir& d) {
  return "[[source]]\nplugin = \"process\"\n[[sink]]\nplugin = \"file\"\npath = \"" +
         d.file("events.jsonl") + "\"\nevents = [\"process.exec\"]\n";
}

std::string http_sink(const std::string& id, const std::string& url,
                      const std::string& extra = "") {
  return "[[sink]]\nplugin = \"http\"\nid = \"" + id + "\"\nurl = \"" + url +
         "\"\nevents = [\"process.exec\"]\n" + extra;
}

// Waits until the receiver holds all of the file sink's own events, then stops needle and
// checks that each arrived exactly once and in the file sink's order.
void expect_exactly_once_in_order(Needle& n, const TempDir& d, const Receiver& r,
                                  const std::set<int64_t>& pids, bool msgpack = false,
                                  std::chrono::seconds wait = std::chrono::seconds(20)) {
  std::vector<std::string> want;
  bool all = eventually(
      [&] {
        want = own_ids(read_events(d.file("events.jsonl")), pids);
        return want.size() == pids.size() && own_ids(r.events(msgpack), pids).size() >= want.size();
      },
      wait);
  if (!all) {
    n.stop();  // for its summary
  }
  ASSERT_TRUE(all) << "file sink has " << want.size() << " of " << pids.size()
                   << " events, the receiver " << own_ids(r.events(msgpack), pids).size() << " in "
                   << r.requests().size() << " requests\n"
                   << n.err() << r.log();
  ASSERT_EQ(n.stop(), 0) << n.err();
  EXPECT_EQ(own_ids(r.events(msgpack), pids), want);
}

TEST(HttpSink, EveryEventArrivesExactlyOnceInOrderOverOneKeptAliveConnection) {
  NEEDLE_REQUIRE_PYTHON3();
  TempDir d;
  Receiver r(d, {});
  ASSERT_TRUE(r.start()) << r.log();
  write_file(d.file("token"), "s3cret-token\n");
  Needle n(d);
  NEEDLE_START_BPF(n, needle_section() + source_and_file(d) +
                          http_sink("http", r.url(),
                                    "headers = [\"X-Tenant: blue\"]\n"
                                    "bearer_token_file = \"token\"\nbatch_events = 7\n"));
  auto pids = exec_marked(60, "http-order");
  expect_exactly_once_in_order(n, d, r, pids);
  auto reqs = r.requests();
  ASSERT_FALSE(reqs.empty());
  std::set<int> ports;
  for (const json& q : reqs) {
    const json& h = q["headers"];
    EXPECT_EQ(q.value("path", ""), "/ingest");
    EXPECT_EQ(h.value("Content-Type", ""), "application/x-ndjson");
    EXPECT_EQ(h.value("X-Tenant", ""), "blue");
    EXPECT_EQ(h.value("Authorization", ""), "Bearer s3cret-token");
    ports.insert(q.value("peer_port", 0));
  }
  // batch_events = 7: the 60 events needed at least 9 requests, all on one connection.
  EXPECT_GE(reqs.size(), 9u);
  EXPECT_EQ(ports.size(), 1u) << "keep-alive: every request should reuse the connection";
  std::printf("[ measure ] %zu requests over %zu connection(s)\n", reqs.size(), ports.size());
}

TEST(HttpSink, ServiceUnavailableWithRetryAfterIsRetriedWithoutLossOrDuplicates) {
  NEEDLE_REQUIRE_PYTHON3();
  TempDir d;
  Receiver r(d, {"--fail-first", "3", "--retry-after", "1"});
  ASSERT_TRUE(r.start()) << r.log();
  Needle n(d);
  NEEDLE_START_BPF(n, needle_section() + source_and_file(d) + http_sink("http", r.url()));
  auto pids = exec_marked(30, "http-503");
  expect_exactly_once_in_order(n, d, r, pids, false, std::chrono::seconds(30));
  auto reqs = r.requests();
  ASSERT_GE(reqs.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(reqs[static_cast<size_t>(i)].value("status", 0), 503);
  }
  EXPECT_EQ(reqs[3].value("status", 0), 200);
  // Retry-After: 1 was honoured between the refused attempts.
  for (int i = 1; i < 4; ++i) {
    double gap = reqs[static_cast<size_t>(i)].value("time", 0.0) -
                 reqs[static_cast<size_t>(i) - 1].value("time", 0.0);
    EXPECT_GE(gap, 0.95) << "request " << i << " came " << gap << " s after the 503";
  }
}

TEST(HttpSink, SlowBackendGetsEveryEventInOrderInLargerBatches) {
  NEEDLE_REQUIRE_PYTHON3();
  TempDir d;
  Receiver r(d, {"--delay-ms", "400"});
  ASSERT_TRUE(r.start()) << r.log();
  Needle n(d);
  NEEDLE_START_BPF(
      n, needle_section() + source_and_file(d) + http_sink("http", r.url(), "timeout_ms = 5000\n"));
  auto pids = exec_marked(150, "http-slow");
  expect_exactly_once_in_order(n, d, r, pids, false, std::chrono::seconds(40));
  size_t biggest = 0;
  for (const json& q : r.requests()) {
    biggest = std::max(biggest, static_cast<size_t>(q.value("len", 0)));
  }
  // While one POST waits 400 ms, the queue fills and the next POST carries many events.
  auto reqs = r.requests();
  EXPECT_LT(reqs.size(), 150u) << "events were not batched while the backend was slow";
  std::printf("[ measure ] slow backend: %zu requests for 150+ events, largest body %zu bytes\n",
              reqs.size(), biggest);
}

TEST(HttpSink, GzipAndMsgpackBodiesDecodeToTheSameEvents) {
  NEEDLE_REQUIRE_PYTHON3();
  TempDir d;
  Receiver json_gz(d, {}, "json-gz");
  Receiver mp_gz(d, {}, "msgpack-gz");
  ASSERT_TRUE(json_gz.start()) << json_gz.log();
  ASSERT_TRUE(mp_gz.start()) << mp_gz.log();
  Needle n(d);
  NEEDLE_START_BPF(n,
                   needle_section() + source_and_file(d) +
                       http_sink("json-gz", json_gz.url(), "gzip = true\n") +
                       http_sink("msgpack-gz", mp_gz.url(), "gzip = true\nformat = \"msgpack\"\n"));
  auto pids = exec_marked(40, "http-gzip");
  std::vector<json> file;
  ASSERT_TRUE(eventually(
      [&] {
        file = read_events(d.file("events.jsonl"));
        size_t want = own_ids(file, pids).size();
        return want == pids.size() && own_ids(json_gz.events(), pids).size() >= want &&
               own_ids(mp_gz.events(true), pids).size() >= want;
      },
      std::chrono::seconds(20)))
      << n.err() << json_gz.log() << mp_gz.log();
  ASSERT_EQ(n.stop(), 0) << n.err();
  std::map<std::string, json> by_id;
  for (const json& ev : file) {
    if (own(ev, pids)) {
      by_id[str_field(ev, "id")] = ev;
    }
  }
  for (const json& q : json_gz.requests()) {
    EXPECT_EQ(q["headers"].value("Content-Encoding", ""), "gzip");
    EXPECT_LT(q.value("raw_len", 0), q.value("len", 0));
  }
  for (const json& q : mp_gz.requests()) {
    EXPECT_EQ(q["headers"].value("Content-Type", ""), "application/msgpack");
    EXPECT_EQ(q["headers"].value("Content-Encoding", ""), "gzip");
  }
  for (const std::vector<json>& events : {json_gz.events(), mp_gz.events(true)}) {
    size_t mine = 0;
    for (const json& ev : events) {
      if (own(ev, pids)) {
        ++mine;
        EXPECT_EQ(ev, by_id[str_field(ev, "id")]);  // every field, as the file sink has it
      }
    }
    EXPECT_EQ(mine, pids.size());
  }
}

TEST(HttpSink, HttpsWithClientCertificateDelivers) {
  NEEDLE_REQUIRE_PYTHON3();
  TempDir d;
  Result pki = run({"/bin/bash", source_dir() + "/tests/peers/pki.sh", d.path(), "http.test"});
  ASSERT_EQ(pki.exit_code, 0) << pki.err;
  Receiver r(d, {"--tls-cert", d.file("server.pem"), "--tls-key", d.file("server.key"), "--tls-ca",
                 d.file("ca.pem")});
  ASSERT_TRUE(r.start()) << r.log();
  Needle n(d);
  NEEDLE_START_BPF(n, needle_section() + source_and_file(d) +
                          http_sink("https", r.url("https"),
                                    "ca_file = \"ca.pem\"\ncert_file = \"client.pem\"\n"
                                    "key_file = \"client.key\"\n"));
  auto pids = exec_marked(30, "http-tls");
  expect_exactly_once_in_order(n, d, r, pids);
  for (const json& q : r.requests()) {
    EXPECT_EQ(q.value("client_cn", ""), "needle-test-client");
  }
}

TEST(HttpSink, PermanentRefusalIsCountedAndDoesNotStopDelivery) {
  NEEDLE_REQUIRE_PYTHON3();
  TempDir d;
  Receiver r(d, {"--status", "400"});
  ASSERT_TRUE(r.start()) << r.log();
  Needle n(d);
  NEEDLE_START_BPF(n, needle_section() + source_and_file(d) + http_sink("http", r.url()));
  auto pids = exec_marked(10, "http-400");
  ASSERT_TRUE(eventually([&] { return !r.requests().empty(); })) << n.err();
  ASSERT_EQ(n.stop(), 0) << n.err();
  for (const json& q : r.requests()) {
    EXPECT_EQ(q.value("status", 0), 400);
  }
  // 400 is not retried: each batch was posted once, then counted as failed and logged.
  EXPECT_NE(n.err().find("HTTP 400"), std::string::npos) << n.err();
  EXPECT_NE(n.err().find("events dropped"), std::string::npos) << n.err();
}

TEST(HttpSink, BackendDownAcrossANeedleRestartLosesNothingThanksToTheDiskSpill) {
  NEEDLE_REQUIRE_PYTHON3();
  TempDir d;
  int port = free_port();
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/ingest";
  // A small memory queue so that most events go to the disk spill while the backend is down;
  // a short shutdown_timeout so that the first needle gives up on it and persists the rest.
  std::string config =
      needle_section("state_dir = \"" + d.file("state") + "\"\nshutdown_timeout = 2") +
      source_and_file(d) +
      http_sink("http", url, "on_full = \"spill\"\nqueue_size = 16\nbuffer_max_mib = 4\n");
  std::set<int64_t> pids;
  {
    Needle first(d);
    NEEDLE_START_BPF(first, config);
    pids = exec_marked(100, "http-spill-down");
    ASSERT_TRUE(eventually([&] {
      return own_ids(read_events(d.file("events.jsonl")), pids).size() == pids.size();
    })) << first.err();
    ASSERT_EQ(first.stop(), 0) << first.err();
    EXPECT_NE(first.err().find("127.0.0.1:" + std::to_string(port)), std::string::npos)
        << "the sink should have logged the unreachable backend:\n"
        << first.err();
  }
  Receiver r(d, {"--port", std::to_string(port)});
  ASSERT_TRUE(r.start()) << r.log();
  // The harness looks for the readiness line in <dir>/needle.stderr, which still holds the
  // first run's until the new process truncates it.
  fs::remove(d.file("needle.stderr"));
  Needle second(d);
  NEEDLE_START_BPF(second, config);
  auto later = exec_marked(20, "http-spill-up");
  pids.insert(later.begin(), later.end());
  // Both runs' events, in the order the file sink wrote them, exactly once.
  expect_exactly_once_in_order(second, d, r, pids, false, std::chrono::seconds(30));
  std::printf("[ measure ] %zu events held across the restart and delivered in order\n",
              pids.size() - later.size());
}

TEST(HttpSink, MalformedUrlOrHeaderFailsCheckWithLineAndKey) {
  TempDir d;
  auto check = [&](const std::string& sink) {
    write_file(d.file("c.toml"), needle_section() + "[[sink]]\nplugin = \"http\"\n" + sink);
    return run({needle_bin(), "check", "-c", d.file("c.toml")});
  };
  // [[sink]] is line 5, so the sink's first key is line 7.
  Result r = check("url = \"127.0.0.1:8080/x\"\n");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("c.toml:7: key 'url'"), std::string::npos) << r.err;
  r = check("url = \"http://127.0.0.1:0/\"\n");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("key 'url'"), std::string::npos) << r.err;
  r = check("url = \"http://127.0.0.1/\"\nheaders = [\"Bad Header\"]\n");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("c.toml:8: key 'headers'"), std::string::npos) << r.err;
  r = check("url = \"http://127.0.0.1/\"\nbearer_token_file = \"/nonexistent/token\"\n");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("key 'bearer_token_file'"), std::string::npos) << r.err;
  r = check("\n");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("key 'url': missing required key"), std::string::npos) << r.err;
}

TEST(HttpSink, CheckConnectNamesAnUnreachableUrl) {
  NEEDLE_REQUIRE_PYTHON3();
  TempDir d;
  std::string url;
  {
    Receiver gone(d, {});  // a port that was free a moment ago
    ASSERT_TRUE(gone.start());
    url = gone.url();
  }
  write_file(d.file("c.toml"),
             needle_section() + "[[sink]]\nplugin = \"http\"\nurl = \"" + url + "\"\n");
  Result r = run({needle_bin(), "check", "--connect", "-c", d.file("c.toml")});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(url), std::string::npos) << r.err;
}

}  // namespace
}  // namespace needle::test
