// enricher/cgroup on a fake cgroup2 tree and a fake /proc (folders made by the test; their
// inodes are the cgroup ids): lookups happen off the event path, the event is parked until the
// answer is cached, and what cannot be resolved in time is listed under `incomplete`.
#include "cgroup_enricher.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "test_host.h"

namespace needle::cgroup {
namespace {

namespace fs = std::filesystem;
using enrich::test::TestEvent;
using enrich::test::TestHost;

constexpr std::string_view kId = "eebc65c5a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a7f0d";
constexpr std::string_view kUid = "3f9c1a7e-0000-4000-8000-0000000000cc";

class FakeHost : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("needle-cgroup-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(root() / "docker" / std::string(kId));
    fs::create_directories(root() / "kubepods/besteffort" / ("pod" + std::string(kUid)) /
                           std::string(kId));
    fs::create_directories(root() / "user.slice");
    fs::create_directories(proc());
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path root() const { return dir_ / "cgroup2"; }
  fs::path proc() const { return dir_ / "proc"; }
  static uint64_t inode(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_ino;
  }
  void fake_process(uint32_t pid, const std::string& cgroup_text) {
    fs::create_directories(proc() / std::to_string(pid));
    std::ofstream(proc() / std::to_string(pid) / "cgroup") << cgroup_text;
  }
  CgroupOptions options(bool v2 = true) {
    CgroupOptions o;
    o.cgroup2_root = v2 ? root().string() : "";
    o.detect_root = false;
    o.proc_root = proc().string();
    o.timeout_ms = 2000;
    return o;
  }
  static void process_event(TestEvent& t, uint64_t cgid, uint32_t pid,
                            std::string_view entity = "00000000000000aa") {
    Event e = t.view();
    e.set("type", "process.exec");
    e.set("process.pid", pid);
    e.set("process.cgroup_id", cgid);
    e.set("process.entity_id", entity);
  }

  fs::path dir_;
};

TEST_F(FakeHost, ContainerEventIsParkedThenCarriesIdFromProc) {
  TestHost th("cgroup");
  CgroupEnricher en(th.host(), options());
  ASSERT_TRUE(en.start().ok());
  fake_process(4242,
               "4:memory:/docker/" + std::string(kId) + "\n0::/docker/" + std::string(kId) + "\n");
  TestEvent t;
  process_event(t, inode(root() / "docker" / std::string(kId)), 4242);
  Event ev = t.view();
  uint64_t deadline = 0;
  ASSERT_EQ(en.enrich(ev, deadline), NEEDLE_PENDING);
  EXPECT_GT(deadline, th.host().now_boot_ns());
  en.wait_idle();
  ASSERT_EQ(en.enrich(ev, deadline), NEEDLE_OK);
  EXPECT_EQ(ev.get_str("container.id").value_or(""), kId);
  EXPECT_EQ(ev.get_str("container.runtime").value_or(""), "docker");
  EXPECT_FALSE(ev.find("pod").valid());
  EXPECT_FALSE(ev.find("incomplete").valid()) << t.json();
  en.stop();
}

TEST_F(FakeHost, ExitedProcessIsResolvedByWalkingTheTreeWithPodUid) {
  TestHost th("cgroup");
  CgroupEnricher en(th.host(), options());
  ASSERT_TRUE(en.start().ok());
  TestEvent t;
  process_event(
      t, inode(root() / "kubepods/besteffort" / ("pod" + std::string(kUid)) / std::string(kId)),
      9999);  // no /proc entry: the process is gone
  Event ev = t.view();
  uint64_t deadline = 0;
  ASSERT_EQ(en.enrich(ev, deadline), NEEDLE_PENDING);
  en.wait_idle();
  ASSERT_EQ(en.enrich(ev, deadline), NEEDLE_OK);
  EXPECT_EQ(ev.get_str("container.id").value_or(""), kId);
  EXPECT_EQ(ev.get_str("container.runtime").value_or(""), "containerd");
  EXPECT_EQ(ev.get_str("pod.uid").value_or(""), kUid);
  en.stop();
}

// The container's fields come from a template from its second event on (shared with the core
// from the third): every event carries the same fields; an event that already has container
// fields keeps them, with these set among them; the templates go back to the host.
TEST_F(FakeHost, RepeatedEventsOfAContainerCarryTheSameFieldsFromATemplate) {
  TestHost th("cgroup");
  {
    CgroupEnricher en(th.host(), options());
    ASSERT_TRUE(en.start().ok());
    const uint64_t cgid =
        inode(root() / "kubepods/besteffort" / ("pod" + std::string(kUid)) / std::string(kId));
    auto enriched = [&](bool with_name) {
      TestEvent t;
      process_event(t, cgid, 9999);
      Event ev = t.view();
      if (with_name) {
        ev.set("container.name", "web");
      }
      uint64_t deadline = 0;
      if (en.enrich(ev, deadline) == NEEDLE_PENDING) {
        en.wait_idle();
        EXPECT_EQ(en.enrich(ev, deadline), NEEDLE_OK);
      }
      std::string j = t.json();
      return j.substr(j.find("\"container\""));
    };
    const std::string want = R"("container":{"id":")" + std::string(kId) +
                             R"(","runtime":"containerd"},"pod":{"uid":")" + std::string(kUid) +
                             R"("}})";
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(enriched(false), want) << i;
    }
    EXPECT_EQ(enriched(true), R"("container":{"name":"web","id":")" + std::string(kId) +
                                  R"(","runtime":"containerd"},"pod":{"uid":")" +
                                  std::string(kUid) + R"("}})");
    EXPECT_EQ(enriched(false), want);
    en.stop();
  }
  EXPECT_EQ(th.intake().live(), 0);   // every template discarded
}

TEST_F(FakeHost, ProcOfAReusedPidIsNotTrustedForAnotherCgroup) {
  TestHost th("cgroup");
  CgroupEnricher en(th.host(), options());
  ASSERT_TRUE(en.start().ok());
  // pid 4243 now lives in user.slice, but the event came from the docker cgroup.
  fake_process(4243, "0::/user.slice\n");
  TestEvent t;
  process_event(t, inode(root() / "docker" / std::string(kId)), 4243);
  Event ev = t.view();
  uint64_t deadline = 0;
  ASSERT_EQ(en.enrich(ev, deadline), NEEDLE_PENDING);
  en.wait_idle();
  ASSERT_EQ(en.enrich(ev, deadline), NEEDLE_OK);
  EXPECT_EQ(ev.get_str("container.id").value_or(""), kId);
  en.stop();
}

TEST_F(FakeHost, RootCgroupPassesAtOnceWithoutLookup) {
  TestHost th("cgroup");
  CgroupEnricher en(th.host(), options());
  ASSERT_TRUE(en.start().ok());
  TestEvent t;
  process_event(t, inode(root()), 1);
  Event ev = t.view();
  uint64_t deadline = 0;
  EXPECT_EQ(en.enrich(ev, deadline), NEEDLE_OK);
  EXPECT_FALSE(ev.find("container").valid());
  EXPECT_EQ(th.counter("lookups"), 0u);
  en.stop();
}

TEST_F(FakeHost, HostCgroupIsLookedUpOnceThenCached) {
  TestHost th("cgroup");
  CgroupEnricher en(th.host(), options());
  ASSERT_TRUE(en.start().ok());
  const uint64_t cg = inode(root() / "user.slice");
  for (int i = 0; i < 3; ++i) {
    TestEvent t;
    process_event(t, cg, 77);
    Event ev = t.view();
    uint64_t deadline = 0;
    needle_rc rc = en.enrich(ev, deadline);
    if (rc == NEEDLE_PENDING) {
      en.wait_idle();
      rc = en.enrich(ev, deadline);
    }
    ASSERT_EQ(rc, NEEDLE_OK);
    EXPECT_FALSE(ev.find("container").valid());
    EXPECT_FALSE(ev.find("incomplete").valid());
  }
  EXPECT_EQ(th.counter("lookups"), 1u);
  en.stop();
}

TEST_F(FakeHost, UnknownCgroupGoesOnIncompleteAndIsNotLookedUpForEveryEvent) {
  TestHost th("cgroup");
  CgroupEnricher en(th.host(), options());
  ASSERT_TRUE(en.start().ok());
  for (int i = 0; i < 2; ++i) {
    TestEvent t;
    process_event(t, 0x7fff'ffff'0000ull, 9998);
    Event ev = t.view();
    uint64_t deadline = 0;
    needle_rc rc = en.enrich(ev, deadline);
    if (rc == NEEDLE_PENDING) {
      en.wait_idle();
      rc = en.enrich(ev, deadline);
    }
    ASSERT_EQ(rc, NEEDLE_OK);
    EXPECT_FALSE(ev.find("container.id").valid());
    EXPECT_NE(t.json().find("\"incomplete\":[\"container.id\"]"), std::string::npos) << t.json();
  }
  EXPECT_EQ(th.counter("lookups"), 1u);
  EXPECT_EQ(th.counter("unresolved"), 1u);
  en.stop();
}

TEST_F(FakeHost, DeadlinePassedWithoutAnswerMarksIncompleteAndCounts) {
  TestHost th("cgroup");
  CgroupOptions o = options();
  o.timeout_ms = 1;
  CgroupEnricher en(th.host(), o);
  ASSERT_TRUE(en.start().ok());
  en.stop();  // no worker: the lookup never answers
  TestEvent t;
  process_event(t, inode(root() / "docker" / std::string(kId)), 4242);
  Event ev = t.view();
  uint64_t deadline = 0;
  ASSERT_EQ(en.enrich(ev, deadline), NEEDLE_PENDING);
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  ASSERT_EQ(en.enrich(ev, deadline), NEEDLE_OK);
  EXPECT_NE(t.json().find("\"incomplete\":[\"container.id\"]"), std::string::npos) << t.json();
  EXPECT_EQ(th.counter("timeouts"), 1u);
}

TEST_F(FakeHost, V1OnlyMachineResolvesEachProcessFromItsHierarchyLines) {
  TestHost th("cgroup");
  CgroupEnricher en(th.host(), options(/*v2=*/false));
  ASSERT_TRUE(en.start().ok());
  fake_process(5151, "12:pids:/libpod_parent/libpod-" + std::string(kId) +
                         "\n1:name=systemd:/libpod_parent/libpod-" + std::string(kId) + "\n");
  TestEvent t;
  process_event(t, 1, 5151, "0123456789abcdef");
  Event ev = t.view();
  uint64_t deadline = 0;
  ASSERT_EQ(en.enrich(ev, deadline), NEEDLE_PENDING);
  en.wait_idle();
  ASSERT_EQ(en.enrich(ev, deadline), NEEDLE_OK);
  EXPECT_EQ(ev.get_str("container.id").value_or(""), kId);
  EXPECT_EQ(ev.get_str("container.runtime").value_or(""), "podman");
  en.stop();
}

TEST_F(FakeHost, CacheStaysWithinItsBoundAndCountsEvictions) {
  TestHost th("cgroup");
  CgroupOptions o = options();
  o.cache_entries = 16;
  CgroupEnricher en(th.host(), o);
  ASSERT_TRUE(en.start().ok());
  for (int i = 0; i < 20; ++i) {
    fs::create_directories(root() / ("n" + std::to_string(i)));
    TestEvent t;
    process_event(t, inode(root() / ("n" + std::to_string(i))), 0);
    Event ev = t.view();
    uint64_t deadline = 0;
    if (en.enrich(ev, deadline) == NEEDLE_PENDING) {
      en.wait_idle();
      ASSERT_EQ(en.enrich(ev, deadline), NEEDLE_OK);
    }
  }
  EXPECT_EQ(th.counter("evictions"), 4u);
  en.stop();
}

TEST_F(FakeHost, CgroupMadeJustAfterATreeScanIsStillFound) {
  CgroupResolver r(root().string(), {"default", "k8s.io"}, proc().string());
  ASSERT_TRUE(r.path_of(inode(root() / "user.slice")).has_value());
  EXPECT_EQ(r.scans(), 1u);
  fs::create_directories(root() / "docker" / "late");
  auto p = r.path_of(inode(root() / "docker" / "late"));  // within min_rescan of the scan
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(*p, "/docker/late");
  EXPECT_EQ(r.scans(), 2u);
}

TEST(Cgroup2Mount, FoundInMountinfoOfAHybridMachine) {
  // Recorded on the test machine (hybrid: v1 controllers, cgroup2 without controllers).
  const char* text =
      "30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
      "31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 "
      "cgroup2 rw\n"
      "32 30 0:28 / /sys/fs/cgroup/memory rw,relatime shared:11 - cgroup cgroup rw,memory\n";
  EXPECT_EQ(cgroup2_mount_of(text), "/sys/fs/cgroup/unified");
  EXPECT_EQ(cgroup2_mount_of("32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw\n"), "");
}

}  // namespace
}  // namespace needle::cgroup
