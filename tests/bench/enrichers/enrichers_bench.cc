// Per-event cost of each enricher once its cache is warm, on events shaped like the process
// source's, and the memory of the lineage table holding 50,000 processes (synthetic records:
// this machine's pid_max is 32768). Each benchmark builds its event afresh every iteration;
// BM_BuildEventOnly is that cost alone, to subtract.
#include <benchmark/benchmark.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "cgroup/cgroup_enricher.h"
#include "cri/cri_enricher.h"
#include "cri_api.grpc.pb.h"
#include "hash/hash_enricher.h"
#include "lineage/lineage_enricher.h"
#include "test_host.h"

namespace needle::bench {
namespace {

namespace fs = std::filesystem;
using enrich::test::TestHost;

constexpr char kCid[] = "eebc65c5a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a7f0d";

// One reusable core event (its vectors keep their capacity, as the core's pool does).
struct Bench {
  core::Event ev;
  Event view() { return Event(core::host_api(), core::as_abi(&ev)); }
};

void build_exec(Event e, uint32_t pid, uint32_t ppid, uint64_t cgroup_id, const char* exe) {
  e.set("id", "0000000000000001-1");
  e.set("time", "2026-11-29T03:42:23.351874211Z");
  e.set("type", "process.exec");
  e.set("source", "process");
  e.set("host.name", "vm");
  e.set("host.id", "3d1219c7c4c5404aaa1f6d2a48adfda4");
  Event p = e.object("process");
  p.set("pid", pid);
  p.set("tid", pid);
  p.set("ppid", ppid);
  p.set("uid", uint32_t{0});
  p.set("gid", uint32_t{0});
  p.set("euid", uint32_t{0});
  p.set("comm", "true");
  p.set("cgroup_id", cgroup_id);
  p.set("start_time", "2026-11-29T03:42:23.345681866Z");
  char entity[17];
  std::snprintf(entity, sizeof entity, "%016x", pid);
  p.set("entity_id", entity);
  p.set("exe", exe);
  Event a = p.array("args");
  a.push("true");
  a.push("--flag");
  a.push("value");
  p.set("cwd", "/root");
}

void BM_BuildEventOnly(benchmark::State& state) {
  Bench b;
  for (auto _ : state) {
    b.ev.clear();
    build_exec(b.view(), 1000, 999, 1, "/usr/bin/true");
    benchmark::DoNotOptimize(b.ev.node(0));
  }
}
BENCHMARK(BM_BuildEventOnly);

// A chain of 10 processes (pid 1 to 10): each event is an exec of a child of pid 10, so the
// parent and 8 ancestors are found in the table.
void warm_lineage(lineage::LineageEnricher& en) {
  Bench b;
  for (uint32_t pid = 1; pid <= 10; ++pid) {
    b.ev.clear();
    build_exec(b.view(), pid, pid - 1, 1, "/usr/bin/bash");
    Event e = b.view();
    uint64_t d = 0;
    en.enrich(e, d);
  }
}

void BM_LineageExec(benchmark::State& state) {
  TestHost th("lineage");
  lineage::LineageEnricher en(th.host(), lineage::LineageOptions{});
  warm_lineage(en);
  Bench b;
  for (auto _ : state) {
    b.ev.clear();
    build_exec(b.view(), 11, 10, 1, "/usr/bin/true");
    Event e = b.view();
    uint64_t d = 0;
    en.enrich(e, d);
  }
}
BENCHMARK(BM_LineageExec);

void BM_LineageOtherSourceEvent(benchmark::State& state) {
  TestHost th("lineage");
  lineage::LineageEnricher en(th.host(), lineage::LineageOptions{});
  warm_lineage(en);
  Bench b;
  for (auto _ : state) {
    b.ev.clear();
    Event e = b.view();
    e.set("type", "file.open");
    e.set("process.pid", uint32_t{10});
    e.set("process.entity_id", "000000000000000a");
    e.set("file.path", "/etc/passwd");
    uint64_t d = 0;
    en.enrich(e, d);
  }
}
BENCHMARK(BM_LineageOtherSourceEvent);

// A fake cgroup2 tree in /tmp with one docker container folder.
struct CgroupTree {
  fs::path root = fs::temp_directory_path() / ("needle-bench-cg-" + std::to_string(getpid()));
  uint64_t container_id = 0;
  CgroupTree() {
    fs::create_directories(root / "docker" / kCid);
    struct stat st {};
    ::stat((root / "docker" / kCid).c_str(), &st);
    container_id = st.st_ino;
  }
  ~CgroupTree() { fs::remove_all(root); }
};

void BM_CgroupHostProcess(benchmark::State& state) {
  CgroupTree tree;
  TestHost th("cgroup");
  cgroup::CgroupOptions o;
  o.cgroup2_root = tree.root.string();
  o.detect_root = false;
  cgroup::CgroupEnricher en(th.host(), o);
  (void)en.start();
  struct stat st {};
  ::stat(tree.root.c_str(), &st);
  Bench b;
  for (auto _ : state) {
    b.ev.clear();
    build_exec(b.view(), 1000, 999, st.st_ino, "/usr/bin/true");
    Event e = b.view();
    uint64_t d = 0;
    en.enrich(e, d);
  }
  en.stop();
}
BENCHMARK(BM_CgroupHostProcess);

void BM_CgroupContainerCached(benchmark::State& state) {
  CgroupTree tree;
  TestHost th("cgroup");
  cgroup::CgroupOptions o;
  o.cgroup2_root = tree.root.string();
  o.detect_root = false;
  cgroup::CgroupEnricher en(th.host(), o);
  (void)en.start();
  Bench b;
  {
    build_exec(b.view(), 1000, 999, tree.container_id, "/usr/bin/true");
    Event e = b.view();
    uint64_t d = 0;
    while (en.enrich(e, d) == NEEDLE_PENDING) {
      en.wait_idle();
    }
  }
  for (auto _ : state) {
    b.ev.clear();
    build_exec(b.view(), 1000, 999, tree.container_id, "/usr/bin/true");
    Event e = b.view();
    uint64_t d = 0;
    en.enrich(e, d);
  }
  en.stop();
}
BENCHMARK(BM_CgroupContainerCached);

void BM_HashCached(benchmark::State& state) {
  TestHost th("hash");
  hash::HashEnricher en(th.host(), hash::HashOptions{});
  (void)en.start();
  Bench b;
  auto build = [&] {
    b.ev.clear();
    build_exec(b.view(), 0, 0, 1, "/usr/bin/true");
    Event e = b.view();
    e.set("parent.pid", uint32_t{0});
    e.set("parent.exe", "/usr/bin/bash");
    e.set("parent.entity_id", "00000000000000ff");
  };
  {
    build();
    Event e = b.view();
    uint64_t d = 0;
    while (en.enrich(e, d) == NEEDLE_PENDING) {
      en.wait_idle();
    }
  }
  for (auto _ : state) {
    build();
    Event e = b.view();
    uint64_t d = 0;
    en.enrich(e, d);
  }
  en.stop();
}
BENCHMARK(BM_HashCached);

class FakeRuntime final : public runtime::v1::RuntimeService::Service {
 public:
  grpc::Status Version(grpc::ServerContext*, const runtime::v1::VersionRequest*,
                       runtime::v1::VersionResponse* rs) override {
    rs->set_runtime_name("fake");
    return grpc::Status::OK;
  }
  grpc::Status ContainerStatus(grpc::ServerContext*, const runtime::v1::ContainerStatusRequest*,
                               runtime::v1::ContainerStatusResponse* rs) override {
    auto* s = rs->mutable_status();
    s->mutable_metadata()->set_name("web");
    s->mutable_image()->set_image("docker.io/library/nginx:1.25");
    s->set_image_ref("docker.io/library/nginx@sha256:feedface");
    (*s->mutable_labels())["io.kubernetes.container.name"] = "web";
    (*s->mutable_labels())["io.kubernetes.pod.name"] = "frontend-7d4b9";
    return grpc::Status::OK;
  }
  grpc::Status ListContainers(grpc::ServerContext*, const runtime::v1::ListContainersRequest*,
                              runtime::v1::ListContainersResponse* rs) override {
    rs->add_containers()->set_pod_sandbox_id("sandbox-1");
    return grpc::Status::OK;
  }
  grpc::Status PodSandboxStatus(grpc::ServerContext*, const runtime::v1::PodSandboxStatusRequest*,
                                runtime::v1::PodSandboxStatusResponse* rs) override {
    auto* m = rs->mutable_status()->mutable_metadata();
    m->set_name("frontend-7d4b9");
    m->set_namespace_("shop");
    m->set_uid("3f9c1a7e-0000-4000-8000-0000000000cc");
    return grpc::Status::OK;
  }
};

void BM_CriCached(benchmark::State& state) {
  std::string sock = "/tmp/needle-bench-cri-" + std::to_string(getpid()) + ".sock";
  FakeRuntime fake;
  grpc::ServerBuilder sb;
  sb.AddListeningPort("unix://" + sock, grpc::InsecureServerCredentials());
  sb.RegisterService(&fake);
  auto server = sb.BuildAndStart();
  TestHost th("cri");
  cri::CriOptions o;
  o.endpoints = {"unix://" + sock};
  cri::CriEnricher en(th.host(), o);
  (void)en.start();
  Bench b;
  auto build = [&] {
    b.ev.clear();
    build_exec(b.view(), 1000, 999, 5, "/usr/bin/true");
    Event e = b.view();
    e.set("container.id", kCid);
    e.set("container.runtime", "containerd");
  };
  {
    build();
    Event e = b.view();
    uint64_t d = 0;
    while (en.enrich(e, d) == NEEDLE_PENDING) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  for (auto _ : state) {
    build();
    Event e = b.view();
    uint64_t d = 0;
    en.enrich(e, d);
  }
  en.stop();
  server->Shutdown();
  fs::remove(sock);
}
BENCHMARK(BM_CriCached);

long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stol(line.substr(6));
    }
  }
  return 0;
}

// 50,000 processes through the real event path (fork, then exec with three arguments), each
// the child of the previous one modulo 100 (so parents resolve); reports the table's own
// account of its bytes and the process's resident-set growth.
void BM_LineageTable50k(benchmark::State& state) {
  for (auto _ : state) {
    TestHost th("lineage");
    long before = rss_kib();
    auto en = std::make_unique<lineage::LineageEnricher>(th.host(), lineage::LineageOptions{});
    Bench b;
    char exe[64];
    for (uint32_t i = 0; i < 50000; ++i) {
      const uint32_t pid = 100000 + i;
      std::snprintf(exe, sizeof exe, "/usr/lib/needle-bench/program-%u", i % 500);
      b.ev.clear();
      build_exec(b.view(), pid, i < 100 ? 1 : pid - 100, 1, exe);
      Event e = b.view();
      uint64_t d = 0;
      en->enrich(e, d);
    }
    long after = rss_kib();
    state.counters["processes"] = static_cast<double>(en->table().size());
    state.counters["table_bytes"] = static_cast<double>(en->table().memory_bytes());
    state.counters["bytes_per_process"] =
        static_cast<double>(en->table().memory_bytes()) / en->table().size();
    state.counters["rss_growth_kib"] = static_cast<double>(after - before);
  }
}
BENCHMARK(BM_LineageTable50k)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace needle::bench

BENCHMARK_MAIN();
