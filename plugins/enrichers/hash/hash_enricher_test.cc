// enricher/hash on real files: digests computed off the event path and cached by file identity,
// the program a live process runs read through /proc/<pid>/exe (a path swapped after exec does
// not fool it), size and time bounds that end in `incomplete`, and the read pacing.
#include "hash_enricher.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "test_host.h"

namespace needle::hash {
namespace {

namespace fs = std::filesystem;
using enrich::test::TestEvent;
using enrich::test::TestHost;

class HashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("needle-hash-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& content) {
    std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary | std::ios::trunc) << content;
    return p;
  }
  static std::string slurp(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static void exec_event(TestEvent& t, uint32_t pid, const std::string& exe,
                         const std::string& entity) {
    Event e = t.view();
    e.set("type", "process.exec");
    e.set("process.pid", pid);
    e.set("process.exe", exe);
    e.set("process.entity_id", entity);
  }
  // An exec event parked by an enricher with `o` and no worker (the digest never comes), then
  // called back with again(its deadline, the clock then): it must finish, marked incomplete,
  // one timeout counted.
  template <typename Again>
  void expect_gives_up(const HashOptions& o, Again again) {
    TestHost th("hash");
    HashEnricher en(th.host(), o);
    ASSERT_TRUE(en.start().ok());
    en.stop();
    TestEvent t;
    exec_event(t, 0, write("slow", "x"), "0000000000000201");
    Event ev = t.view();
    uint64_t d = 0;
    ASSERT_EQ(en.enrich(ev, d), NEEDLE_PENDING);
    d = again(d, th.host().now_boot_ns());
    ASSERT_EQ(en.enrich(ev, d), NEEDLE_OK);
    EXPECT_NE(t.json().find("\"incomplete\":[\"process.exe_sha256\"]"), std::string::npos);
    EXPECT_EQ(th.counter("timeouts"), 1u);
  }
  // enrich until done, letting the worker run between calls.
  static needle_rc settle(HashEnricher& en, Event& ev) {
    uint64_t d = 0;
    needle_rc rc = en.enrich(ev, d);
    if (rc == NEEDLE_PENDING) {
      en.wait_idle();
      rc = en.enrich(ev, d);
    }
    return rc;
  }
  fs::path dir_;
};

TEST_F(HashTest, ExecEventIsParkedThenCarriesTheDigest) {
  TestHost th("hash");
  HashEnricher en(th.host(), HashOptions{});
  ASSERT_TRUE(en.start().ok());
  std::string p = write("prog", "hello");
  TestEvent t;
  exec_event(t, 0, p, "00000000000000a1");
  Event ev = t.view();
  uint64_t d = 0;
  ASSERT_EQ(en.enrich(ev, d), NEEDLE_PENDING);
  EXPECT_GT(d, th.host().now_boot_ns());
  en.wait_idle();
  ASSERT_EQ(en.enrich(ev, d), NEEDLE_OK);
  EXPECT_EQ(ev.get_str("process.exe_sha256").value_or(""),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  en.stop();
}

// The cache is indexed by a 64-bit hash of the program's entity, pid and path, which a chosen
// path could collide with: with every key colliding, each program still gets its own digest
// (read again when another program's entry holds the key), never another's.
TEST_F(HashTest, CollidingKeysNeverGiveAnotherProgramsDigest) {
  TestHost th("hash");
  HashEnricher en(th.host(), HashOptions{.key_mask = 0});
  ASSERT_TRUE(en.start().ok());
  const std::string a = write("a", "aaa");
  const std::string b = write("b", "bbb");
  struct Case {
    const std::string& exe;
    const char* entity;
    const char* content;
  };
  for (const Case& c : {Case{a, "00000000000000a1", "aaa"}, Case{b, "00000000000000b1", "bbb"},
                        Case{a, "00000000000000a1", "aaa"}, Case{a, "00000000000000a2", "aaa"},
                        Case{b, "00000000000000b1", "bbb"}}) {
    TestEvent t;
    exec_event(t, 0, c.exe, c.entity);
    Event ev = t.view();
    ASSERT_EQ(settle(en, ev), NEEDLE_OK);
    EXPECT_EQ(ev.get_str("process.exe_sha256").value_or(""), sha256_hex(c.content)) << c.exe;
  }
  en.stop();
}

TEST_F(HashTest, ParentDigestIsFilledToo) {
  TestHost th("hash");
  HashEnricher en(th.host(), HashOptions{});
  ASSERT_TRUE(en.start().ok());
  std::string child = write("child", "child");
  std::string parent = write("parent", "parent");
  TestEvent t;
  exec_event(t, 0, child, "00000000000000b1");
  Event ev = t.view();
  ev.set("parent.pid", uint32_t{0});
  ev.set("parent.exe", parent);
  ev.set("parent.entity_id", "00000000000000b0");
  ASSERT_EQ(settle(en, ev), NEEDLE_OK);
  EXPECT_EQ(ev.get_str("process.exe_sha256").value_or(""), sha256_hex("child"));
  EXPECT_EQ(ev.get_str("parent.exe_sha256").value_or(""), sha256_hex("parent"));
  en.stop();
}

TEST_F(HashTest, PathSwappedAfterExecStillGivesTheRunningProgram) {
  TestHost th("hash");
  HashEnricher en(th.host(), HashOptions{});
  ASSERT_TRUE(en.start().ok());
  std::string p = (dir_ / "sleeper").string();
  fs::copy_file("/bin/sleep", p);
  fs::permissions(p, fs::perms(0755));
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    execl(p.c_str(), "sleeper", "30", static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait for the exec, then swap another file in at the same path.
  for (int i = 0; i < 200; ++i) {
    std::error_code ec;
    if (fs::read_symlink("/proc/" + std::to_string(child) + "/exe", ec).string() == p) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::string decoy = write("decoy", "not the program");
  fs::rename(decoy, p);
  TestEvent t;
  exec_event(t, static_cast<uint32_t>(child), p, "00000000000000c1");
  Event ev = t.view();
  needle_rc rc = settle(en, ev);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  ASSERT_EQ(rc, NEEDLE_OK);
  EXPECT_EQ(ev.get_str("process.exe_sha256").value_or(""), sha256_hex(slurp("/bin/sleep")));
  en.stop();
}

TEST_F(HashTest, OneFileIsReadOnceForManyProcesses) {
  TestHost th("hash");
  HashEnricher en(th.host(), HashOptions{});
  ASSERT_TRUE(en.start().ok());
  std::string p = write("shared", "shared program");
  for (int i = 0; i < 5; ++i) {
    TestEvent t;
    exec_event(t, 0, p, "00000000000001d" + std::to_string(i));
    Event ev = t.view();
    ASSERT_EQ(settle(en, ev), NEEDLE_OK);
    EXPECT_EQ(ev.get_str("process.exe_sha256").value_or(""), sha256_hex("shared program"));
  }
  EXPECT_EQ(th.counter("files_hashed"), 1u);
  en.stop();
}

TEST_F(HashTest, ForkedChildSharesItsParentsDigestWithoutALookup) {
  TestHost th("hash");
  HashEnricher en(th.host(), HashOptions{});
  ASSERT_TRUE(en.start().ok());
  std::string p = write("forking", "forking program");
  {
    TestEvent t;
    exec_event(t, 0, p, "00000000000002a0");
    Event ev = t.view();
    ASSERT_EQ(settle(en, ev), NEEDLE_OK);
  }
  en.stop();  // no worker from here: only the cache can answer
  TestEvent t;
  Event ev = t.view();
  ev.set("type", "process.fork");
  ev.set("process.pid", uint32_t{0});
  ev.set("process.exe", p);
  ev.set("process.entity_id", "00000000000002a1");
  ev.set("parent.pid", uint32_t{0});
  ev.set("parent.exe", p);
  ev.set("parent.entity_id", "00000000000002a0");
  uint64_t d = 0;
  ASSERT_EQ(en.enrich(ev, d), NEEDLE_OK);
  EXPECT_EQ(ev.get_str("process.exe_sha256").value_or(""), sha256_hex("forking program"));
  EXPECT_EQ(ev.get_str("parent.exe_sha256").value_or(""), sha256_hex("forking program"));
  EXPECT_EQ(t.json().find("incomplete"), std::string::npos) << t.json();
}

TEST_F(HashTest, ParkedEventListsItsDigestIncompleteUntilFilled) {
  TestHost th("hash");
  HashEnricher en(th.host(), HashOptions{});
  ASSERT_TRUE(en.start().ok());
  TestEvent t;
  exec_event(t, 0, write("listed", "listed"), "00000000000002b0");
  Event ev = t.view();
  uint64_t d = 0;
  ASSERT_EQ(en.enrich(ev, d), NEEDLE_PENDING);
  // Were the core to send it on now (shutdown), it would say what it lacks.
  EXPECT_NE(t.json().find("\"incomplete\":[\"process.exe_sha256\"]"), std::string::npos);
  en.wait_idle();
  ASSERT_EQ(en.enrich(ev, d), NEEDLE_OK);
  EXPECT_EQ(t.json().find("incomplete"), std::string::npos) << t.json();
  en.stop();
}

TEST_F(HashTest, RewrittenFileGetsItsNewDigest) {
  TestHost th("hash");
  HashEnricher en(th.host(), HashOptions{});
  ASSERT_TRUE(en.start().ok());
  std::string p = write("changing", "version 1");
  {
    TestEvent t;
    exec_event(t, 0, p, "00000000000000e1");
    Event ev = t.view();
    ASSERT_EQ(settle(en, ev), NEEDLE_OK);
    EXPECT_EQ(ev.get_str("process.exe_sha256").value_or(""), sha256_hex("version 1"));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(10));  // a distinct change time
  write("changing", "version 2");
  TestEvent t;
  exec_event(t, 0, p, "00000000000000e2");
  Event ev = t.view();
  ASSERT_EQ(settle(en, ev), NEEDLE_OK);
  EXPECT_EQ(ev.get_str("process.exe_sha256").value_or(""), sha256_hex("version 2"));
  en.stop();
}

TEST_F(HashTest, FileOverTheSizeBoundGoesOnIncomplete) {
  TestHost th("hash");
  HashOptions o;
  o.max_file_bytes = 4;
  HashEnricher en(th.host(), o);
  ASSERT_TRUE(en.start().ok());
  std::string p = write("big", "more than four bytes");
  TestEvent t;
  exec_event(t, 0, p, "00000000000000f1");
  Event ev = t.view();
  ASSERT_EQ(settle(en, ev), NEEDLE_OK);
  EXPECT_FALSE(ev.find("process.exe_sha256").valid());
  EXPECT_NE(t.json().find("\"incomplete\":[\"process.exe_sha256\"]"), std::string::npos)
      << t.json();
  EXPECT_EQ(th.counter("too_large"), 1u);
  en.stop();
}

TEST_F(HashTest, MissingFileGoesOnIncompleteAndIsCounted) {
  TestHost th("hash");
  HashEnricher en(th.host(), HashOptions{});
  ASSERT_TRUE(en.start().ok());
  TestEvent t;
  exec_event(t, 0, (dir_ / "absent").string(), "0000000000000101");
  Event ev = t.view();
  ASSERT_EQ(settle(en, ev), NEEDLE_OK);
  EXPECT_NE(t.json().find("\"incomplete\":[\"process.exe_sha256\"]"), std::string::npos);
  EXPECT_EQ(th.counter("unreadable"), 1u);
  en.stop();
}

TEST_F(HashTest, DeadlinePassedMarksIncompleteAndCounts) {
  HashOptions o;
  o.timeout_ms = 1;
  expect_gives_up(o, [](uint64_t d, uint64_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    return d;   // called back with its own deadline, now passed
  });
}

// The core calls back with 1 when it must send a parked event on at once (shutdown, too many
// parked): the enricher finishes then, long before its own deadline, instead of asking to be
// parked again (which left its entry behind, scanned by every later event).
TEST_F(HashTest, AForcedCallFinishesAtOnce) {
  expect_gives_up(HashOptions{}, [](uint64_t d, uint64_t now) {   // timeout 1 s or more
    EXPECT_GT(d, now);   // its own deadline is far off
    return uint64_t{1};
  });
}

TEST_F(HashTest, EventsWithoutAnExecutableAreLeftAlone) {
  TestHost th("hash");
  HashEnricher en(th.host(), HashOptions{});
  TestEvent t;
  Event ev = t.view();
  ev.set("type", "process.exit");
  ev.set("process.pid", uint32_t{5});
  uint64_t d = 0;
  EXPECT_EQ(en.enrich(ev, d), NEEDLE_OK);
  EXPECT_EQ(t.json().find("incomplete"), std::string::npos);
}

TEST(RateLimiter, ReadsBeyondTheBurstWaitForTheirShare) {
  std::atomic<bool> stop{false};
  RateLimiter rl(1 << 20);  // 1 MiB/s, 1 MiB burst
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(rl.acquire(1 << 20, stop));
  ASSERT_TRUE(rl.acquire(256 << 10, stop));
  auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, std::chrono::milliseconds(200));
  stop = true;
  EXPECT_FALSE(rl.acquire(1 << 20, stop));  // a stop ends the wait
}

}  // namespace
}  // namespace needle::hash
