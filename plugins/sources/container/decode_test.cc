// The container source's record decoder and its create/exit state machine on the cgroup event
// sequences runtimes really produce (podman/runc on a hybrid machine: every v1 hierarchy and the
// unified one; ctr reusing a name; a container's own nested cgroups), and the event it maps to.
#include "decode.h"

#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "container_record.h"
#include "container_source.h"
#include "encode.h"
#include "event.h"
#include "host.h"

namespace needle::container {
namespace {

const std::string kId(64, 'a');
const std::string kPodman = "/libpod_parent/libpod-" + kId;

std::vector<std::byte> raw_record(Kind kind, const std::string& path, uint32_t hierarchy = 0,
                                  uint64_t cgid = 44, uint32_t tgid = 100) {
  container_cgroup_record rec{};
  rec.hdr.kind = static_cast<uint16_t>(kind);
  rec.hdr.version = CONTAINER_RECORD_VERSION;
  rec.hdr.size = static_cast<uint32_t>(sizeof rec + path.size());
  rec.hdr.task.tgid = tgid;
  rec.hdr.task.pid = tgid;
  std::memcpy(rec.hdr.task.comm, "runc", 4);
  rec.cgroup_id = cgid;
  rec.hierarchy = hierarchy;
  rec.level = 2;
  rec.path_len = static_cast<uint32_t>(path.size());
  std::vector<std::byte> out(sizeof rec);
  std::memcpy(out.data(), &rec, sizeof rec);
  for (char c : path) {
    out.push_back(static_cast<std::byte>(c));
  }
  return out;
}

CgroupRecord rec_of(Kind kind, const std::string& path, uint32_t hierarchy = 0) {
  CgroupRecord r;
  r.kind = kind;
  r.path = path;
  r.hierarchy = hierarchy;
  return r;
}

Action feed(ContainerTracker& t, Kind kind, const std::string& path, uint32_t hierarchy = 0) {
  CgroupContainer c;
  return t.on(rec_of(kind, path, hierarchy), c);
}

TEST(ContainerTracker, PodmanOnTheUnifiedHierarchyCreatesThenExitsOnce) {
  ContainerTracker t;
  EXPECT_EQ(feed(t, Kind::kMkdir, "/libpod_parent"), Action::kNone);  // not a container
  EXPECT_EQ(feed(t, Kind::kMkdir, "/libpod_parent/conmon"), Action::kNone);
  CgroupContainer c;
  EXPECT_EQ(t.on(rec_of(Kind::kMkdir, kPodman), c), Action::kCreate);
  EXPECT_EQ(c.runtime, ContainerRuntime::kPodman);
  EXPECT_EQ(c.id, kId);
  EXPECT_EQ(feed(t, Kind::kEmptied, kPodman), Action::kExit);  // its last task is gone
  EXPECT_EQ(feed(t, Kind::kEmptied, "/libpod_parent"), Action::kNone);
  EXPECT_EQ(feed(t, Kind::kRmdir, kPodman), Action::kNone);  // cleanup: already reported
}

TEST(ContainerTracker, EveryV1HierarchyGivesOneCreateAndOneExit) {
  ContainerTracker t;
  int creates = 0;
  int exits = 0;
  auto count = [&](Action a) {
    creates += a == Action::kCreate;
    exits += a == Action::kExit;
  };
  for (uint32_t h = 1; h <= 9; ++h) {
    count(feed(t, Kind::kMkdir, kPodman, h));
  }
  count(feed(t, Kind::kMkdir, kPodman, 0));
  for (uint32_t h = 0; h <= 9; ++h) {
    count(feed(t, Kind::kEmptied, kPodman, h));
  }
  for (uint32_t h = 0; h <= 9; ++h) {
    count(feed(t, Kind::kRmdir, kPodman, h));
  }
  EXPECT_EQ(creates, 1);
  EXPECT_EQ(exits, 1);
}

TEST(ContainerTracker, ContainerThatNeverRanExitsAtRmdir) {
  ContainerTracker t;
  EXPECT_EQ(feed(t, Kind::kMkdir, kPodman), Action::kCreate);
  EXPECT_EQ(feed(t, Kind::kRmdir, kPodman, 0), Action::kExit);
  EXPECT_EQ(feed(t, Kind::kRmdir, kPodman, 3), Action::kNone);
}

TEST(ContainerTracker, ContainerOlderThanNeedleStillExitsOnce) {
  ContainerTracker t;
  EXPECT_EQ(feed(t, Kind::kEmptied, kPodman, 0), Action::kExit);
  EXPECT_EQ(feed(t, Kind::kEmptied, kPodman, 4), Action::kNone);
  EXPECT_EQ(feed(t, Kind::kRmdir, kPodman, 0), Action::kNone);
  ContainerTracker u;
  EXPECT_EQ(feed(u, Kind::kRmdir, kPodman, 0), Action::kExit);  // emptied not seen at all
  EXPECT_EQ(feed(u, Kind::kRmdir, kPodman, 1), Action::kNone);
}

TEST(ContainerTracker, CtrReusingANameIsANewContainer) {
  ContainerTracker t;
  const std::string path = "/default/needle-demo";
  EXPECT_EQ(feed(t, Kind::kMkdir, path), Action::kCreate);
  EXPECT_EQ(feed(t, Kind::kEmptied, path), Action::kExit);
  EXPECT_EQ(feed(t, Kind::kRmdir, path), Action::kNone);
  EXPECT_EQ(feed(t, Kind::kMkdir, path), Action::kCreate);
  EXPECT_EQ(feed(t, Kind::kEmptied, path), Action::kExit);
}

TEST(ContainerTracker, SameNameInTwoContainerdNamespacesAreTwoContainers) {
  ContainerTracker t(4096, {"default", "other"});
  EXPECT_EQ(feed(t, Kind::kMkdir, "/default/web"), Action::kCreate);
  EXPECT_EQ(feed(t, Kind::kMkdir, "/other/web"), Action::kCreate);
  EXPECT_EQ(feed(t, Kind::kMkdir, "/unlisted/web"), Action::kNone);  // namespace not listed
}

TEST(ContainerTracker, NestedCgroupsInsideAContainerAreNotContainers) {
  ContainerTracker t;
  EXPECT_EQ(feed(t, Kind::kMkdir, kPodman), Action::kCreate);
  EXPECT_EQ(feed(t, Kind::kMkdir, kPodman + "/init.scope"), Action::kNone);
  EXPECT_EQ(feed(t, Kind::kEmptied, kPodman + "/init.scope"), Action::kNone);
  EXPECT_EQ(feed(t, Kind::kEmptied, kPodman), Action::kExit);
}

TEST(ContainerTracker, EveryRuntimeLayoutIsRecognised) {
  const std::string hex(64, 'b');
  const std::string uid = "3f9c1a7e-0000-4000-8000-0000000000cc";
  const std::string uid_ = "3f9c1a7e_0000_4000_8000_0000000000cc";
  struct Case {
    std::string path;
    ContainerRuntime runtime;
    std::string pod;
  } cases[] = {
      {"/docker/" + hex, ContainerRuntime::kDocker, ""},
      {"/system.slice/docker-" + hex + ".scope", ContainerRuntime::kDocker, ""},
      {"/default/my-ctr", ContainerRuntime::kContainerd, ""},
      {"/k8s.io/" + hex, ContainerRuntime::kContainerd, ""},
      {"/kubepods/besteffort/pod" + uid + "/" + hex, ContainerRuntime::kContainerd, uid},
      {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid_ +
           ".slice/cri-containerd-" + hex + ".scope",
       ContainerRuntime::kContainerd, uid},
      {"/kubepods/burstable/pod" + uid + "/crio-" + hex, ContainerRuntime::kCrio, uid},
      {"/kubepods.slice/kubepods-pod" + uid_ + ".slice/crio-" + hex + ".scope",
       ContainerRuntime::kCrio, uid},
      {"/libpod_parent/libpod-" + hex, ContainerRuntime::kPodman, ""},
      {"/machine.slice/libpod-" + hex + ".scope", ContainerRuntime::kPodman, ""},
  };
  for (const Case& k : cases) {
    ContainerTracker t;
    CgroupContainer c;
    EXPECT_EQ(t.on(rec_of(Kind::kMkdir, k.path), c), Action::kCreate) << k.path;
    EXPECT_EQ(c.runtime, k.runtime) << k.path;
    EXPECT_EQ(c.pod_uid(), k.pod) << k.path;
  }
  ContainerTracker t;
  for (const std::string& p : std::vector<std::string>{
           "/user.slice/user-0.slice", "/system.slice/cron.service",
           "/machine.slice/libpod-conmon-" + hex + ".scope", "/kubepods/besteffort/pod" + uid}) {
    EXPECT_EQ(feed(t, Kind::kMkdir, p), Action::kNone) << p;
  }
}

TEST(ContainerTracker, ForgetsTheLeastRecentlySeenBeyondCapacity) {
  ContainerTracker t(16);
  for (int i = 0; i < 40; ++i) {
    EXPECT_EQ(feed(t, Kind::kMkdir, "/default/c" + std::to_string(i)), Action::kCreate);
  }
  EXPECT_EQ(t.size(), 16u);
  EXPECT_EQ(feed(t, Kind::kMkdir, "/default/c39", 3), Action::kNone);  // still known
}

TEST(ContainerDecode, RecordFieldsAndErrors) {
  auto raw = raw_record(Kind::kMkdir, kPodman, 0, 44);
  auto r = decode_record(raw);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->kind, Kind::kMkdir);
  EXPECT_EQ(r->path, kPodman);
  EXPECT_EQ(r->cgroup_id, 44u);
  EXPECT_EQ(r->hierarchy, 0u);
  EXPECT_EQ(r->task.tgid, 100u);

  auto short_raw = raw;
  short_raw.resize(50);
  EXPECT_FALSE(decode_record(short_raw).ok());
  auto bad_kind = raw;
  bad_kind[0] = std::byte{7};
  auto e = decode_record(bad_kind);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("unknown kind 7"), std::string::npos);
  auto cut = raw;
  cut.resize(raw.size() - 5);  // the path runs past the bytes the ring gave
  e = decode_record(cut);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("does not hold"), std::string::npos);
}

TEST(ContainerDecode, CreateEventCarriesIdRuntimeCgroupAndTheRuntimeProcess) {
  auto raw = raw_record(Kind::kMkdir, kPodman, 0, 44, 555);
  auto r = decode_record(raw);
  ASSERT_TRUE(r.ok());
  ContainerTracker t;
  CgroupContainer c;
  Action a = t.on(*r, c);
  ASSERT_EQ(a, Action::kCreate);
  core::Event ev;
  Event view(core::host_api(), core::as_abi(&ev));
  fill_event(core::host_api(), *r, c, a, view);
  std::string json;
  core::encode_json(ev, json);
  auto j = nlohmann::json::parse(json);
  EXPECT_EQ(j["type"], "container.create");
  EXPECT_EQ(j["container"]["id"], kId);
  EXPECT_EQ(j["container"]["runtime"], "podman");
  EXPECT_EQ(j["cgroup"]["path"], kPodman);
  EXPECT_EQ(j["cgroup"]["id"], 44);
  EXPECT_EQ(j["cgroup"]["hierarchy"], 0);
  EXPECT_EQ(j["process"]["pid"], 555);
  EXPECT_EQ(j["process"]["comm"], "runc");
  EXPECT_FALSE(j.contains("pod"));
}

TEST(ContainerDecode, MountinfoWithAndWithoutCgroup2) {
  EXPECT_TRUE(mountinfo_has_cgroup2(
      "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"));
  EXPECT_FALSE(mountinfo_has_cgroup2(
      "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"));
  EXPECT_FALSE(mountinfo_has_cgroup2(""));
}

}  // namespace
}  // namespace needle::container
