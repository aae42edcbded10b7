// The pipeline around the sources: readiness, bounded shutdown with a stuck sink, ring-buffer
// overflow signalled as needle.gap, queue drops, SIGHUP reopening, msgpack output and the
// metrics endpoint.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <msgpack.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "harness.h"

namespace needle::test {
namespace {

namespace fs = std::filesystem;

void exec_storm(int count) {
  for (int i = 0; i < count; ++i) {
    int status = 0;
    spawn_wait("/bin/true", {"true"}, &status);
  }
}

std::string file_sink(const std::string& path, const std::string& extra = "") {
  return "[[sink]]\nplugin = \"file\"\npath = \"" + path + "\"\n" + extra + "\n";
}

TEST(Pipeline, ReadinessIsOneLineAndNothingBeforeItClaimsToRun) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, needle_section() + "[[source]]\nplugin = \"process\"\n" +
                          file_sink(d.file("e.jsonl")));
  ASSERT_EQ(n.stop(), 0);
  std::istringstream err(n.err());
  std::string line;
  int ready = 0;
  bool before = true;
  while (std::getline(err, line)) {
    if (line.find("needle running: 1 sources attached") != std::string::npos) {
      ++ready;
      before = false;
      continue;
    }
    if (before) {
      for (const char* w : {"running", "attached", "started"}) {
        EXPECT_EQ(line.find(w), std::string::npos) << "early line claims '" << w << "': " << line;
      }
    }
  }
  EXPECT_EQ(ready, 1) << n.err();
  EXPECT_LT(n.ready_seconds(), 5.0);
  std::printf("[ measure ] start to readiness: %.3f s\n", n.ready_seconds());
  EXPECT_NE(n.err().find("needle summary (clean)"), std::string::npos) << n.err();
}

TEST(Pipeline, VerifierRejectionExits4NamingTheProgramAndTheLog) {
  if (geteuid() != 0) {
    NEEDLE_SKIP_OR_FAIL("loading BPF needs root");
  }
  TempDir d;
  Needle n(d);
  ASSERT_FALSE(n.start(needle_section() + "[[source]]\nplugin = \"badprog\"\n" +
                       file_sink(d.file("e.jsonl"))));
  EXPECT_EQ(n.exit_code(), 4);
  std::string err = n.err();
  EXPECT_NE(err.find("needle-source-badprog.so (source 'badprog')"), std::string::npos) << err;
  EXPECT_NE(err.find("refused program(s) needle_bad_read"), std::string::npos) << err;
  EXPECT_NE(err.find("invalid access to map value"), std::string::npos) << err;   // the verifier
  EXPECT_EQ(err.find("needle running"), std::string::npos);
}

// A syscall hook whose typed rung the kernel refuses (as Linux 6.1 refuses bpf_rdonly_cast)
// falls back to the plain rung on the same dispatcher rung, logs why, and runs there.
TEST(Pipeline, RefusedTypedRungFallsBackToThePlainOne) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, needle_section() + "[[source]]\nplugin = \"typedfallback\"\n" +
                          file_sink(d.file("e.jsonl")));
  const std::string err = n.err();
  EXPECT_NE(err.find("hook yield cannot use rung tp_btf+typed here; trying the next one"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("hook yield runs on rung tp_btf\n"), std::string::npos) << err;
  for (int i = 0; i < 5; ++i) {
    sched_yield();
  }
  ASSERT_EQ(n.stop(), 0) << n.err();
  size_t yields = 0;
  for (const auto& e : read_events(d.file("e.jsonl"))) {
    if (str_field(e, "type") == "test.yield" && int_field(e, "process.pid") == getpid()) {
      ++yields;
    }
  }
  EXPECT_GE(yields, 5u) << "the plain program runs for this process's sched_yield calls";
}

// A source with an enter handler: the core attaches the dispatcher's sys_enter too, and the exit
// handler finds the arguments, the enter time and the word the enter handler left in the
// thread's slot (no built-in source has enter handlers, so only this test plugin covers them).
TEST(Pipeline, EnterHandlerHandsItsExitHandlerTheEnterTimeAndItsWord) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, needle_section() + "[[source]]\nplugin = \"sysargs\"\n" +
                          file_sink(d.file("e.jsonl")));
  EXPECT_NE(n.err().find("the syscall dispatcher also runs sys_enter"), std::string::npos)
      << n.err();
  for (int i = 0; i < 5; ++i) {
    getpgid(0);
  }
  ASSERT_EQ(n.stop(), 0) << n.err();
  size_t seen = 0;
  for (const auto& e : read_events(d.file("e.jsonl"))) {
    if (str_field(e, "type") != "test.pgid" || int_field(e, "process.pid") != getpid()) {
      continue;
    }
    ++seen;
    EXPECT_EQ(int_field(e, "test.arg0"), 0) << e.dump();
    EXPECT_GT(int_field(e, "test.enter_ns"), 0) << e.dump();
    EXPECT_EQ(int_field(e, "test.word"), 0x5a5a) << e.dump();
    EXPECT_EQ(int_field(e, "test.ret"), getpgid(0)) << e.dump();
  }
  EXPECT_GE(seen, 5u);
}

TEST(Pipeline, StuckSinkDoesNotHoldShutdownPastTheTimeout) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, needle_section("shutdown_timeout = 2") +
                          "[[source]]\nplugin = \"process\"\n[[sink]]\nplugin = \"stall\"\n"
                          "stall_ms = -1\nqueue_size = 16\n" +
                          file_sink(d.file("e.jsonl")));
  exec_storm(200);
  ASSERT_EQ(n.stop(SIGTERM, std::chrono::seconds(15)), 0) << n.err();
  EXPECT_LT(n.stop_seconds(), 4.0) << "shutdown took " << n.stop_seconds() << " s";
  EXPECT_NE(n.err().find("needle summary (timed out)"), std::string::npos) << n.err();
  EXPECT_NE(n.err().find("shutdown_timeout reached"), std::string::npos) << n.err();
}

TEST(Pipeline, FullRingIsCountedSignalledAndNeverBlocksTheKernel) {
  TempDir d;
  Needle n(d);
  // A tiny ring behind a slow sink that blocks the pipeline: the kernel must drop, count, and
  // needle must tell every sink how many records it did not get.
  NEEDLE_START_BPF(n, needle_section("ring_kib = 16\nshutdown_timeout = 60") +
                          "[[source]]\nplugin = \"process\"\n[[sink]]\nplugin = \"stall\"\n"
                          "stall_ms = 1000\nqueue_size = 512\n" +
                          file_sink(d.file("e.jsonl")));
  exec_storm(3000);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(n.stop(SIGTERM, std::chrono::seconds(60)), 0) << n.err();
  std::smatch m;
  std::string err = n.err();
  ASSERT_TRUE(std::regex_search(err, m, std::regex("source process +decoded \\d+, decode errors "
                                                   "\\d+, kernel drops (\\d+)")))
      << err;
  uint64_t drops = std::stoull(m[1]);
  EXPECT_GT(drops, 0u) << err;
  uint64_t signalled = 0;
  for (auto& e : read_events(d.file("e.jsonl"))) {
    if (str_field(e, "type") == "needle.gap" && str_field(e, "gap.stage") == "kernel") {
      EXPECT_EQ(str_field(e, "gap.source"), "process");
      signalled += static_cast<uint64_t>(int_field(e, "gap.count"));
    }
  }
  EXPECT_EQ(signalled, drops) << "every kernel drop must reach the file sink as needle.gap";
}

// At shutdown the core sends parked events on at once and tells each enricher so (deadline
// 1): every enricher of the pass must finish, not only the one the event waited for. Two
// enrichers that never finish by themselves: each must have written its field on every event.
TEST(Pipeline, AForcedPassReachesEveryEnricher) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, needle_section("shutdown_timeout = 20") +
                          "[[source]]\nplugin = \"process\"\n"
                          "[[enricher]]\nplugin = \"park\"\nid = \"first\"\n"
                          "field = \"park.first\"\n"
                          "[[enricher]]\nplugin = \"park\"\nid = \"second\"\n"
                          "field = \"park.second\"\n" +
                          file_sink(d.file("e.jsonl")));
  exec_storm(5);
  ASSERT_EQ(n.stop(SIGTERM, std::chrono::seconds(30)), 0) << n.err();
  size_t events = 0;
  for (auto& e : read_events(d.file("e.jsonl"))) {
    if (str_field(e, "type").rfind("process.", 0) != 0) {
      continue;
    }
    ++events;
    EXPECT_EQ(str_field(e, "park.first"), "forced") << e.dump();
    EXPECT_EQ(str_field(e, "park.second"), "forced") << e.dump();
  }
  EXPECT_GE(events, 10u) << n.err();   // five execs, their forks and exits, and the snapshot
  std::printf("[ measure ] events sent on by the forced pass: %zu\n", events);
}

TEST(Pipeline, DropOldestQueueSignalsItsOwnGap) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, needle_section() + "[[source]]\nplugin = \"process\"\n" +
                          file_sink(d.file("fast.jsonl")) + "[[sink]]\nplugin = \"stall\"\n"
                          "stall_ms = 200\nqueue_size = 4\non_full = \"drop_oldest\"\n" +
                          "[[sink]]\nplugin = \"file\"\nid = \"slowcopy\"\npath = \"" +
                          d.file("slow.jsonl") + "\"\n");
  exec_storm(300);
  ASSERT_EQ(n.stop(SIGTERM, std::chrono::seconds(30)), 0) << n.err();
  std::smatch m;
  std::string err = n.err();
  ASSERT_TRUE(std::regex_search(err, m, std::regex("sink +stall +queued \\d+, sent \\d+, failed "
                                                   "\\d+, retries \\d+, queue drops (\\d+)")))
      << err;
  EXPECT_GT(std::stoull(m[1]), 0u);
  // The file sinks were never blocked by the stalled one: nothing lost there.
  for (auto& e : read_events(d.file("fast.jsonl"))) {
    EXPECT_NE(str_field(e, "type"), "needle.gap") << e.dump();
  }
}

TEST(Pipeline, SighupReopensTheFileForLogrotate) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, needle_section() + "[[source]]\nplugin = \"process\"\n" +
                          file_sink(d.file("e.jsonl")));
  int status = 0;
  pid_t before = spawn_wait("/bin/true", {"true", "before-rotate"}, &status);
  ASSERT_TRUE(eventually([&] { return fs::exists(d.file("e.jsonl")) &&
                                      read_file(d.file("e.jsonl")).find("before-rotate") !=
                                          std::string::npos; }));
  fs::rename(d.file("e.jsonl"), d.file("e.jsonl.1"));
  kill(n.pid(), SIGHUP);
  ASSERT_TRUE(eventually([&] { return n.err().find("SIGHUP") != std::string::npos; }));
  pid_t after = 0;
  ASSERT_TRUE(eventually([&] {
    after = spawn_wait("/bin/true", {"true", "after-rotate"}, &status);
    return fs::exists(d.file("e.jsonl")) &&
           read_file(d.file("e.jsonl")).find("after-rotate") != std::string::npos;
  }));
  ASSERT_EQ(n.stop(), 0);
  EXPECT_NE(read_file(d.file("e.jsonl.1")).find("before-rotate"), std::string::npos);
  EXPECT_EQ(read_file(d.file("e.jsonl.1")).find("after-rotate"), std::string::npos);
  (void)before;
  (void)after;
}

TEST(Pipeline, MsgpackFileCarriesTheSameEvents) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, needle_section() + "[[source]]\nplugin = \"process\"\n" +
                          file_sink(d.file("e.mp"), "format = \"msgpack\"") +
                          file_sink(d.file("e.jsonl"), "id = \"json\""));
  int status = 0;
  pid_t pid = spawn_wait("/bin/true", {"true", "msgpack-marker"}, &status);
  ASSERT_EQ(n.stop(), 0);
  std::string data = read_file(d.file("e.mp"));
  size_t off = 0;
  size_t count = 0;
  bool found = false;
  while (off < data.size()) {
    msgpack::object_handle oh = msgpack::unpack(data.data(), data.size(), off);
    auto m = oh.get().as<std::map<std::string, msgpack::object>>();
    ++count;
    if (m.at("type").as<std::string>() == "process.exec") {
      auto p = m.at("process").as<std::map<std::string, msgpack::object>>();
      if (p.at("pid").as<int64_t>() == pid) {
        found = true;
        EXPECT_EQ(p.at("args").as<std::vector<std::string>>()[1], "msgpack-marker");
      }
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(count, read_events(d.file("e.jsonl")).size());
}

TEST(Pipeline, SpilledEventsSurviveARestartAndArriveInOrder) {
  TempDir d;
  std::string down = d.file("backend-down");
  write_file(down, "");
  std::string cfg = needle_section("shutdown_timeout = 1\nstate_dir = \"" + d.file("state") +
                                   "\"") +
                    "[[source]]\nplugin = \"process\"\n" + file_sink(d.file("reference.jsonl")) +
                    "[[sink]]\nplugin = \"flaky\"\npath = \"" + d.file("delivered.jsonl") +
                    "\"\ndown_file = \"" + down +
                    "\"\non_full = \"spill\"\nqueue_size = 16\nbuffer_max_mib = 64\n";
  std::vector<pid_t> pids;
  {
    Needle first(d);
    NEEDLE_START_BPF(first, cfg);
    for (int i = 0; i < 100; ++i) {
      int status = 0;
      pids.push_back(spawn_wait("/bin/true", {"true", "spill-" + std::to_string(i)}, &status));
    }
    ASSERT_EQ(first.stop(), 0) << first.err();
    EXPECT_NE(first.err().find("needle summary (timed out)"), std::string::npos) << first.err();
    EXPECT_NE(first.err().find("queue drops 0"), std::string::npos) << first.err();
  }
  EXPECT_FALSE(fs::exists(d.file("delivered.jsonl")));
  fs::remove(down);   // the backend is back
  {
    TempDir d2;
    Needle second(d2);
    NEEDLE_START_BPF(second, cfg);
    EXPECT_NE(second.err().find("left by an earlier run will be delivered first"),
              std::string::npos)
        << second.err();
    ASSERT_TRUE(eventually([&] {
      return read_file(d.file("delivered.jsonl")).find("spill-99") != std::string::npos;
    }, std::chrono::seconds(20)));
    ASSERT_EQ(second.stop(), 0) << second.err();
  }
  // Every exec of the first run arrived, once, in the order it happened.
  auto delivered = read_events(d.file("delivered.jsonl"));
  std::vector<pid_t> order;
  for (auto& e : delivered) {
    if (str_field(e, "type") == "process.exec" && field(e, "process.args") != nullptr &&
        e["process"]["args"].size() == 2 &&
        e["process"]["args"][1].get<std::string>().rfind("spill-", 0) == 0) {
      order.push_back(static_cast<pid_t>(int_field(e, "process.pid")));
    }
  }
  EXPECT_EQ(order, pids);
}

std::string http_get(uint16_t port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return {};
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  (void)write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) {
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

TEST(Pipeline, MetricsEndpointReportsRungsCountersAndMemory) {
  TempDir d;
  // Pick a free port.
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  uint16_t port = ntohs(a.sin_port);
  close(s);
  Needle n(d);
  NEEDLE_START_BPF(n, needle_section("metrics_listen = \"127.0.0.1:" + std::to_string(port) +
                                     "\"") +
                          "[[source]]\nplugin = \"process\"\n" + file_sink(d.file("e.jsonl")));
  int status = 0;
  spawn_wait("/bin/true", {"true"}, &status);
  std::string body;
  ASSERT_TRUE(eventually([&] {
    body = http_get(port, "/metrics");
    return body.find("needle_events_total{stage=\"decode\",source=\"process\",type=\"process."
                     "exec\"}") != std::string::npos;
  })) << body;
  EXPECT_NE(body.find("HTTP/1.1 200"), std::string::npos);
  EXPECT_NE(body.find("needle_hook_rung{source=\"process\",hook=\"exec\",rung=\"tp_btf+typed\"} 1"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("needle_rss_bytes{kind=\"anon\"}"), std::string::npos);
  EXPECT_NE(body.find("needle_ring_fill_bytes "), std::string::npos);
  EXPECT_NE(body.find("needle_ring_bytes 8388608"), std::string::npos);
  EXPECT_NE(body.find("needle_sink_queue_depth{sink=\"file\"}"), std::string::npos);
  EXPECT_NE(body.find("needle_dropped_total{stage=\"kernel\",source=\"process\"} 0"),
            std::string::npos);
  EXPECT_NE(http_get(port, "/nope").find("404"), std::string::npos);
  ASSERT_EQ(n.stop(), 0);
}

}  // namespace
}  // namespace needle::test
