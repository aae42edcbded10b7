// User-space cost per event from a ring record to the file sink, in events/s per core, on records
// built byte for byte as the BPF programs write them (bpf/include/*_record.h). Nothing here needs
// root or a kernel: records enter at the decode entry point, where Runtime::on_ring_record hands
// them over. core/runtime.cc keeps its pipeline (prepare, decode_record, handle, route, sink_loop)
// in a private class that needs a loaded BPF object and its ring, so Pipeline below repeats those
// steps in the same order with the same core pieces (EventPool, EventQueue, SinkQueue, EventFilter,
// encode_json, format_boot_time, format_event_id) and the plugins' own code.
//
// What each measured path includes:
//  decode/<stream>       the source's decode() alone (the plugin's record parser and the field
//                        setting through the host API) into a cleared core event.
//  encode_{json,msgpack}/<type>
//                        one encoding of an event as it leaves the enrichers (with parent,
//                        ancestors, container and pod fields) into a reused string.
//  stages/<stream>/<s>   cumulative, on one thread; subtracting neighbours gives each stage:
//                        decode    pool acquire and release, routing by source index, the common
//                                  fields (id, time, source, host), the source's decode, the type
//                                  check (Runtime::on_ring_record, decode_record, prepare);
//                        +lineage  the lineage enricher from a warm table (parent, 4 ancestors);
//                        +cgroup   the cgroup enricher from a warm cache (container.id,
//                                  container.runtime, pod.uid);
//                        +json     the event type's sink filter and the JSON encoding (route).
//  pipeline/<stream>     all of the above plus the core's handoffs, in the batches the running
//                        core uses: decoded events pushed to the pipeline queue with the wakeup
//                        deferred to the end of a ring burst (256 records here), taken by the
//                        pipeline loop 256 at a time (pop_batch), enriched, encoded and pushed to
//                        the sink queue (one sink wakeup per batch); the sink loop's batches of up
//                        to 512 peeked (copied) out of the queue, written through the real file
//                        sink (sinks/file/plugin.cc through its plugin slot: FdWriter buffering,
//                        64 KiB write(2) calls to a file in /tmp) and committed. threads:2 runs
//                        two such pipelines, one per thread, each with its own plugins and file;
//                        items/s is their sum over wall time, per_core that sum per thread.
// Not included: libbpf's ring polling and the kernel side; the wakeups, cache-line transfers and
// contention between the core's three threads (ring, pipeline, sink), here serialised on one
// thread; the parking path (never taken with warm caches); the metrics counters (a few relaxed
// atomic adds per event); the sink's periodic flush. Sources and enrichers are compiled in and
// called by their C++ virtuals rather than through the plugin-slot trampolines (a try block and a
// two-pointer view per call). The file is truncated every 64 MiB outside the timed region.
//
// Streams rotate over 1,024 container processes (pid 20000 on) of one Kubernetes pod whose
// ancestry (systemd -> containerd-shim -> sh -> bash) and cgroup are known before timing starts,
// as on a host where needle has run for a while. `mix` is each process's life: fork, exec, six
// file opens, a DNS query and its answer, a connect and the exit. `file.flood` is the first
// process's opens alone, as under a flood of one program's file events.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cgroup/cgroup_enricher.h"
#include "clock.h"
#include "config.h"
#include "container/container_source.h"
#include "container_record.h"
#include "dns/dns_source.h"
#include "dns_record.h"
#include "encode.h"
#include "event.h"
#include "file/file_source.h"
#include "file_record.h"
#include "host.h"
#include "ipc/ipc_source.h"
#include "ipc_record.h"
#include "lineage/lineage_enricher.h"
#include "net_record.h"
#include "network/network_source.h"
#include "process/process_source.h"
#include "process_record.h"
#include "queues.h"
#include "runtime.h"
#include "test_host.h"

// The file sink's entry symbol (sinks/file/plugin.cc, compiled into this binary).
extern "C" const needle_plugin_descriptor* needle_plugin_entry(void);

namespace needle::bench {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;
using namespace std::string_view_literals;
using enrich::test::TestHost;
using Bytes = std::vector<std::byte>;
using Clock = std::chrono::steady_clock;

// As core/runtime.cc sizes them and a sink's default queue_size.
constexpr size_t kPipelineQueue = 4096;
constexpr size_t kPipelineBatch = 256;
constexpr size_t kSinkBatch = 512;
constexpr size_t kSinkQueue = 8192;
constexpr uint64_t kTruncateAt = 64ull << 20;

constexpr uint32_t kWorkers = 1024;
constexpr uint32_t kFirstWorker = 20000;
constexpr uint32_t kShim = 1100;
constexpr uint32_t kShell = 1300;
constexpr uint32_t kContainers = 64;  // container stream: distinct containers cycled through
const std::string kCid = "eebc65c5a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a7f0d";
const std::string kPodUid = "3f9c1a7e_0000_4000_8000_0000000000cc";  // systemd spelling

// Ring source indexes: the core numbers sources in configuration order (configs/needle.toml).
enum SourceIndex : uint32_t { kProcess, kFile, kIpc, kDns, kContainer, kNetwork, kSourceCount };
constexpr std::array<std::string_view, kSourceCount> kSourceIds = {
    "process", "file", "ipc", "dns", "container", "network"};

enum Stream : size_t {
  kExec,
  kFork,
  kExit,
  kFileOpen,
  kNetConnect,
  kIpcSignal,
  kDnsQuery,
  kDnsResponse,
  kContainerLife,
  kFileFlood,
  kMix,
  kStreamCount
};
constexpr std::array<std::string_view, kStreamCount> kStreamNames = {
    "process.exec", "process.fork", "process.exit", "file.open",  "net.connect",
    "ipc.signal",   "dns.query",    "dns.response", "container", "file.flood",
    "mix"};

enum class Stage { kDecode, kLineage, kCgroup, kJson, kFile };

// ---- Records, as the kernel side lays them out.

template <typename T>
void append(Bytes& out, const T& value) {
  const auto* p = reinterpret_cast<const std::byte*>(&value);
  out.insert(out.end(), p, p + sizeof value);
}

void append(Bytes& out, std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  out.insert(out.end(), p, p + s.size());
}

// A process of the workload: in the pod (pid namespace and cgroup of the container) or on the
// host. All records of one process carry one start time, hence one entity_id.
needle_task_ctx task_of(uint32_t pid, uint32_t ppid, uint64_t cgroup_id, bool in_pod,
                        uint64_t start_ns, std::string_view comm) {
  needle_task_ctx t{};
  t.tgid = pid;
  t.pid = pid;
  t.ppid = ppid;
  t.uid = in_pod ? 1000 : 0;
  t.gid = t.uid;
  t.euid = t.uid;
  t.vtgid = in_pod ? pid - kShell + 1 : pid;
  t.vpid = t.vtgid;
  t.cgroup_id = cgroup_id;
  t.start_ns = start_ns;
  std::memcpy(t.comm, comm.data(), std::min(comm.size(), sizeof t.comm - 1));
  return t;
}

needle_record_header header(uint32_t source, uint16_t kind, uint16_t version, size_t size,
                            const needle_task_ctx& task, uint64_t boot_ns) {
  needle_record_header h{};
  h.kind = kind;
  h.version = version;
  h.size = static_cast<uint32_t>(size);
  h.boot_ns = boot_ns;
  h.source = source;
  h.cpu = 1;
  h.task = task;
  return h;
}

Bytes exec_record(const needle_task_ctx& task, uint64_t boot_ns, std::string_view exe,
                  std::string_view cwd, std::string_view args) {
  process_exec_record rec{};
  rec.hdr = header(kProcess, PROCESS_KIND_EXEC, PROCESS_RECORD_VERSION,
                   sizeof rec + exe.size() + cwd.size() + args.size(), task, boot_ns);
  rec.exe_ino = 1318;
  rec.exe_dev = (8u << 20) | 1u;
  rec.flags = PROCESS_F_ARGS_PRESENT | PROCESS_F_CWD_PRESENT;
  rec.exe_len = static_cast<uint32_t>(exe.size());
  rec.cwd_len = static_cast<uint32_t>(cwd.size());
  rec.args_len = static_cast<uint32_t>(args.size());
  Bytes out;
  append(out, rec);
  append(out, exe);
  append(out, cwd);
  append(out, args);
  return out;
}

Bytes fork_record(const needle_task_ctx& task, uint64_t boot_ns, std::string_view exe) {
  process_fork_record rec{};
  rec.hdr = header(kProcess, PROCESS_KIND_FORK, PROCESS_RECORD_VERSION, sizeof rec + exe.size(),
                   task, boot_ns);
  rec.exe_ino = 1297;
  rec.exe_dev = (8u << 20) | 1u;
  rec.exe_len = static_cast<uint32_t>(exe.size());
  Bytes out;
  append(out, rec);
  append(out, exe);
  return out;
}

Bytes exit_record(const needle_task_ctx& task, uint64_t boot_ns) {
  process_exit_record rec{};
  rec.hdr = header(kProcess, PROCESS_KIND_EXIT, PROCESS_RECORD_VERSION, sizeof rec, task, boot_ns);
  Bytes out;
  append(out, rec);
  return out;
}

Bytes file_open_record(const needle_task_ctx& task, uint64_t boot_ns, std::string_view path,
                       uint64_t ino) {
  file_record rec{};
  rec.hdr =
      header(kFile, FILE_KIND_OPEN, FILE_RECORD_VERSION, sizeof rec + path.size(), task, boot_ns);
  rec.flags = FILE_F_HAS_INODE;
  rec.op_flags = O_RDONLY | O_CLOEXEC;
  rec.mode = 0100644;
  rec.path_len = static_cast<uint16_t>(path.size());
  rec.syscall = FILE_NR64_OPENAT;
  rec.ino = ino;
  rec.dev = (8u << 20) | 1u;
  Bytes out;
  append(out, rec);
  append(out, path);
  return out;
}

Bytes connect_record(const needle_task_ctx& task, uint64_t boot_ns, uint16_t local_port) {
  net_record rec{};
  rec.hdr = header(kNetwork, NET_KIND_CONNECT, NET_RECORD_VERSION, sizeof rec, task, boot_ns);
  rec.flags = NET_F_IN_PROGRESS;  // curl connects non-blocking
  rec.family = 2;
  rec.protocol = 6;
  rec.local_port = local_port;
  rec.remote_port = 8443;
  rec.syscall = NET_NR64_CONNECT;
  const uint8_t local[4] = {10, 244, 1, 17};
  const uint8_t remote[4] = {10, 96, 12, 34};
  std::memcpy(rec.local_addr, local, sizeof local);
  std::memcpy(rec.remote_addr, remote, sizeof remote);
  Bytes out;
  append(out, rec);
  return out;
}

Bytes signal_record(const needle_task_ctx& task, uint64_t boot_ns, uint32_t target) {
  ipc_record rec{};
  rec.hdr = header(kIpc, IPC_KIND_SIGNAL, IPC_RECORD_VERSION, sizeof rec, task, boot_ns);
  rec.flags = IPC_F_TARGET;
  rec.target_pid = static_cast<int32_t>(target);
  rec.arg = 15;  // SIGTERM
  rec.syscall = IPC_NR64_KILL;
  Bytes out;
  append(out, rec);
  return out;
}

// An A query for the service's name, or its answer (one A record, the name compressed).
Bytes dns_message(uint16_t id, bool response) {
  Bytes b;
  auto u8 = [&](unsigned v) { b.push_back(static_cast<std::byte>(v & 0xff)); };
  auto u16 = [&](unsigned v) {
    u8(v >> 8);
    u8(v);
  };
  u16(id);
  u16(response ? 0x8180 : 0x0100);
  u16(1);
  u16(response ? 1 : 0);
  u16(0);
  u16(0);
  for (std::string_view label : {"inventory"sv, "shop"sv, "svc"sv, "cluster"sv, "local"sv}) {
    u8(static_cast<unsigned>(label.size()));
    for (char c : label) {
      u8(static_cast<unsigned char>(c));
    }
  }
  u8(0);
  u16(1);  // A
  u16(1);  // IN
  if (response) {
    u16(0xc00c);
    u16(1);
    u16(1);
    u16(0);
    u16(30);
    u16(4);
    for (unsigned octet : {10u, 96u, 12u, 34u}) {
      u8(octet);
    }
  }
  return b;
}

Bytes dns_record(const needle_task_ctx& task, uint64_t boot_ns, bool response,
                 uint16_t client_port) {
  const Bytes msg = dns_message(static_cast<uint16_t>(client_port * 7), response);
  constexpr std::string_view exe = "/usr/bin/curl";
  dns_packet_record rec{};
  rec.hdr = header(kDns, DNS_KIND_PACKET, DNS_RECORD_VERSION, sizeof rec + exe.size() + msg.size(),
                   task, boot_ns);
  rec.cookie = 0x4000 + client_port;
  const uint8_t client[4] = {10, 244, 1, 17};
  const uint8_t server[4] = {10, 96, 0, 10};
  std::memcpy(response ? rec.daddr : rec.saddr, client, sizeof client);
  std::memcpy(response ? rec.saddr : rec.daddr, server, sizeof server);
  rec.sport = response ? 53 : client_port;
  rec.dport = response ? client_port : 53;
  rec.flags = DNS_F_PROCESS | (response ? 0 : DNS_F_EGRESS);
  rec.payload_len = static_cast<uint32_t>(msg.size());
  rec.exe_len = static_cast<uint16_t>(exe.size());
  rec.data_len = static_cast<uint16_t>(msg.size());
  Bytes out;
  append(out, rec);
  append(out, exe);
  out.insert(out.end(), msg.begin(), msg.end());
  return out;
}

Bytes cgroup_record(uint16_t kind, const needle_task_ctx& task, uint64_t boot_ns,
                    std::string_view path, uint64_t cgroup_id) {
  container_cgroup_record rec{};
  rec.hdr =
      header(kContainer, kind, CONTAINER_RECORD_VERSION, sizeof rec + path.size(), task, boot_ns);
  rec.cgroup_id = cgroup_id;
  rec.level = 4;
  rec.path_len = static_cast<uint32_t>(path.size());
  Bytes out;
  append(out, rec);
  append(out, path);
  return out;
}

std::string pod_cgroup_path(const std::string& cid) {
  return "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + kPodUid +
         ".slice/cri-containerd-" + cid + ".scope";
}

// The id of the container stream's container `j`.
std::string container_id(uint32_t j) {
  std::string cid = kCid;
  std::snprintf(cid.data() + cid.size() - 8, 9, "%08x", j);
  return cid;
}

// A cgroup2 tree in /tmp with the pod's containers (systemd driver layout): the workers' and the
// container stream's. The cgroup enricher resolves process.cgroup_id by walking it as it walks
// /sys/fs/cgroup.
struct CgroupTree {
  fs::path root =
      fs::temp_directory_path() / ("needle-bench-pipeline-cg-" + std::to_string(getpid()));
  uint64_t root_id = 0;
  uint64_t pod_id = 0;
  std::vector<uint64_t> container_ids;

  CgroupTree() {
    pod_id = make(pod_cgroup_path(kCid));
    for (uint32_t j = 0; j < kContainers; ++j) {
      container_ids.push_back(make(pod_cgroup_path(container_id(j))));
    }
    root_id = inode(root);
  }
  ~CgroupTree() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  CgroupTree(const CgroupTree&) = delete;
  CgroupTree& operator=(const CgroupTree&) = delete;

  uint64_t make(const std::string& path) const {
    const fs::path dir = root / path.substr(1);
    fs::create_directories(dir);
    return inode(dir);
  }
  static uint64_t inode(const fs::path& p) {
    struct stat st {};
    ::stat(p.c_str(), &st);
    return st.st_ino;
  }
};

const CgroupTree& tree() {
  static const CgroupTree t;
  return t;
}

struct Workload {
  // The ancestors' and the workers' execs, in start order, then each container's life once.
  std::vector<Bytes> warm;
  std::array<std::vector<Bytes>, kStreamCount> streams;
};

// A boot-clock instant about an hour after boot and 0.1 s into a wall-clock second (by the
// offset core::resample_clock_offset sampled): the workers start from there and all records
// follow within that second, as the events of short-lived processes do. (format_boot_time keeps
// one second per thread; the start time of a long-lived process formats in full each time.)
uint64_t workload_epoch() {
  constexpr int64_t kSecond = 1'000'000'000;
  timespec real{};
  timespec boot{};
  clock_gettime(CLOCK_REALTIME, &real);
  clock_gettime(CLOCK_BOOTTIME, &boot);
  const int64_t offset = ((real.tv_nsec - boot.tv_nsec) % kSecond + kSecond) % kSecond;
  return 3600 * kSecond + (kSecond - offset) % kSecond + kSecond / 10;
}

Workload build_workload() {
  const uint64_t host_cg = tree().root_id;
  const uint64_t pod_cg = tree().pod_id;
  const uint64_t epoch = workload_epoch();
  Workload w;
  uint64_t now = epoch + 1'000'000;
  auto tick = [&now] { return now += 1000; };
  // Ancestors started long ago (pid seconds after boot); worker i right at the epoch.
  auto start_of = [epoch](uint32_t pid) {
    return pid < kFirstWorker ? uint64_t{pid} * 1'000'000'000 : epoch + (pid - kFirstWorker) * 100;
  };

  struct Ancestor {
    uint32_t pid;
    uint32_t ppid;
    bool in_pod;
    std::string_view comm;
    std::string_view exe;
    std::string_view cwd;
    std::string_view args;
  };
  const std::string shim_args = "/usr/bin/containerd-shim-runc-v2\0-namespace\0k8s.io\0-id\0"s +
                                kCid + "\0-address\0/run/containerd/containerd.sock\0"s;
  const Ancestor chain[] = {
      {1, 0, false, "systemd", "/usr/lib/systemd/systemd", "/", "/sbin/init\0splash\0"sv},
      {kShim, 1, false, "containerd-shim", "/usr/bin/containerd-shim-runc-v2",
       "/run/containerd/io.containerd.runtime.v2.task/k8s.io", shim_args},
      {1200, kShim, true, "sh", "/bin/dash", "/app", "/bin/sh\0-c\0/app/run.sh\0"sv},
      {kShell, 1200, true, "bash", "/usr/bin/bash", "/app", "bash\0/app/run.sh\0"sv},
  };
  for (const Ancestor& a : chain) {
    const auto t =
        task_of(a.pid, a.ppid, a.in_pod ? pod_cg : host_cg, a.in_pod, start_of(a.pid), a.comm);
    w.warm.push_back(exec_record(t, tick(), a.exe, a.cwd, a.args));
  }

  constexpr std::string_view kCurlArgs =
      "curl\0-sS\0--max-time\0"
      "5\0-H\0Accept: application/json\0"
      "https://inventory.shop.svc.cluster.local:8443/v1/items?limit=50\0"sv;
  // What curl opens, in order.
  constexpr std::array<std::string_view, 6> kPaths = {"/etc/ld.so.cache",
                                                      "/lib/x86_64-linux-gnu/libcurl.so.4",
                                                      "/lib/x86_64-linux-gnu/libc.so.6",
                                                      "/etc/nsswitch.conf",
                                                      "/etc/resolv.conf",
                                                      "/etc/ssl/certs/ca-certificates.crt"};
  auto& s = w.streams;
  for (uint32_t i = 0; i < kWorkers; ++i) {
    const uint32_t pid = kFirstWorker + i;
    const auto curl = task_of(pid, kShell, pod_cg, true, start_of(pid), "curl");
    const auto forked = task_of(pid, kShell, pod_cg, true, start_of(pid), "bash");
    const auto port = static_cast<uint16_t>(40000 + i);
    Bytes exec = exec_record(curl, tick(), "/usr/bin/curl", "/app", kCurlArgs);
    w.warm.push_back(exec);
    s[kExec].push_back(exec);
    s[kFork].push_back(fork_record(forked, tick(), "/usr/bin/bash"));
    s[kExit].push_back(exit_record(curl, tick()));
    s[kFileOpen].push_back(file_open_record(curl, tick(), kPaths[i % kPaths.size()], 4000 + i));
    s[kNetConnect].push_back(connect_record(curl, tick(), port));
    s[kIpcSignal].push_back(signal_record(curl, tick(), kFirstWorker + (i + 1) % kWorkers));
    s[kDnsQuery].push_back(dns_record(curl, tick(), false, port));
    s[kDnsResponse].push_back(dns_record(curl, tick(), true, port));

    // One process opening file after file (a build, a scanner, a database): the others'
    // streams rotate over every worker, this one stays with the first.
    const auto first = task_of(kFirstWorker, kShell, pod_cg, true, start_of(kFirstWorker), "curl");
    s[kFileFlood].push_back(file_open_record(first, tick(), kPaths[i % kPaths.size()], 4000 + i));

    s[kMix].push_back(s[kFork].back());
    s[kMix].push_back(exec);
    for (size_t k = 0; k < kPaths.size(); ++k) {
      s[kMix].push_back(file_open_record(curl, tick(), kPaths[k], 4000 + k));
    }
    s[kMix].push_back(s[kDnsQuery].back());
    s[kMix].push_back(s[kDnsResponse].back());
    s[kMix].push_back(s[kNetConnect].back());
    s[kMix].push_back(s[kExit].back());
  }

  // Each container's life as the kernel reports it: the runtime makes its cgroup, its last task
  // leaves, the runtime removes it (no event); the next mkdir is a new incarnation.
  const auto shim = task_of(kShim, 1, host_cg, false, start_of(kShim), "containerd-shim");
  for (uint32_t j = 0; j < kContainers; ++j) {
    const std::string path = pod_cgroup_path(container_id(j));
    const uint64_t cgid = tree().container_ids[j];
    const auto last =
        task_of(kFirstWorker + j, kShell, cgid, true, start_of(kFirstWorker + j), "curl");
    s[kContainerLife].push_back(cgroup_record(CONTAINER_KIND_MKDIR, shim, tick(), path, cgid));
    s[kContainerLife].push_back(cgroup_record(CONTAINER_KIND_EMPTIED, last, tick(), path, cgid));
    s[kContainerLife].push_back(cgroup_record(CONTAINER_KIND_RMDIR, shim, tick(), path, cgid));
  }
  w.warm.insert(w.warm.end(), s[kContainerLife].begin(), s[kContainerLife].end());
  return w;
}

const Workload& workload() {
  static const Workload w = build_workload();
  return w;
}

uint32_t source_of(std::span<const std::byte> raw) {
  return reinterpret_cast<const needle_record_header*>(raw.data())->source;
}

Event view(core::Event* ev) {
  return Event(core::host_api(), core::as_abi(ev));
}

// ---- Plugin instances, each with its own host (counters, last error) as the core gives them.

template <typename P>
struct Instance {
  template <typename... Args>
  explicit Instance(const std::string& id, Args&&... args)
      : host(id), plugin(host.host(), std::forward<Args>(args)...) {}
  TestHost host;
  P plugin;
};

// The six sources with their default configuration, by ring source index.
class Sources {
 public:
  Source& at(uint32_t index) { return *by_index_[index]; }

 private:
  Instance<process::ProcessSource> process_{"process", process::ProcessOptions{}};
  Instance<file::FileSource> file_{"file", file::FileOptions{}};
  Instance<ipc::IpcSource> ipc_{"ipc", ipc::IpcOptions{}};
  Instance<dns::DnsSource> dns_{"dns", dns::DnsOptions{}};
  Instance<container::ContainerSource> container_{"container", container::ContainerOptions{}};
  Instance<network::NetworkSource> network_{"network"};
  const std::array<Source*, kSourceCount> by_index_ = {&process_.plugin,   &file_.plugin,
                                                       &ipc_.plugin,       &dns_.plugin,
                                                       &container_.plugin, &network_.plugin};
};

cgroup::CgroupOptions cgroup_options() {
  cgroup::CgroupOptions o;
  o.cgroup2_root = tree().root.string();
  o.detect_root = false;
  return o;
}

// One needle pipeline (sources, lineage and cgroup enrichers, one JSON file sink) run on the
// calling thread: see the top of the file for what it repeats of core/runtime.cc.
class Pipeline {
 public:
  explicit Pipeline(std::string sink_path)
      : sink_path_(std::move(sink_path)), start_ns_(core::boot_ns_now()) {
    if (!cgroup_.plugin.start()) {
      throw std::runtime_error("cgroup enricher did not start");
    }
    sink_cfg_.id = "file";
    sink_cfg_.values.emplace("path", core::Value(sink_path_));
    sink_cfg_.values.emplace("format", core::Value(std::string("json")));
    sink_cfg_.values.emplace("mode", core::Value(int64_t{0640}));
    sink_ = needle_plugin_entry()->vtable;
    if (sink_->create(core::host_api(), sink_host_.host().raw(), &sink_cfg_, &sink_self_) !=
            NEEDLE_OK ||
        sink_->start(sink_self_) != NEEDLE_OK) {
      throw std::runtime_error("file sink cannot open " + sink_path_);
    }
  }

  ~Pipeline() {
    finish();
    truncate_sink();  // nothing left for stop()'s fdatasync to write
    sink_->stop(sink_self_);
    sink_->destroy(sink_self_);
    std::error_code ec;
    fs::remove(sink_path_, ec);
  }

  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  /// What a running needle has done long before these events: the warm-up records went through
  /// the enrichers, every cgroup they name resolved (waiting for the cgroup worker instead of
  /// parking). False when a record failed or a worker's exec does not come out with its parent,
  /// ancestors and container.
  bool warm() {
    for (const Bytes& raw : workload().warm) {
      core::Event* ev = decode(raw);
      if (ev == nullptr) {
        continue;  // a container's rmdir (counted in failures() when an error)
      }
      for (Enricher* e : enrichers_) {
        Event v = view(ev);
        uint64_t deadline = 0;
        while (e->enrich(v, deadline) == NEEDLE_PENDING) {
          cgroup_.plugin.wait_idle();
        }
      }
      pool_.release(ev);
    }
    core::Event* ev = decode(workload().streams[kExec].front());
    const bool ok = ev != nullptr && enrich(ev, Stage::kCgroup) &&
                    ev->find(NEEDLE_ROOT, "ancestors") != core::Event::kNone &&
                    ev->find(NEEDLE_ROOT, "container.id") != core::Event::kNone;
    if (ev != nullptr) {
      pool_.release(ev);
    }
    return ok && failures() == 0;
  }

  /// One ring record through the stages up to `last`. Up to kJson the event goes through at
  /// once; kFile queues it as the ring thread does and runs the pipeline loop once a ring burst
  /// of kPipelineBatch records is in, the sink loop once the sink queue holds a batch (finish()
  /// takes what is left).
  void feed(std::span<const std::byte> raw, Stage last) {
    core::Event* ev = decode(raw);
    if (ev == nullptr) {
      return;
    }
    if (last == Stage::kFile) {
      // Runtime::decode_record: the pipeline's wakeup waits for the end of the ring burst.
      pipeline_in_.push(ev, true);
      if (++in_queue_ == kPipelineBatch) {
        pipeline_in_.wake();
        run_pipeline();
      }
      return;
    }
    if (!enrich(ev, last)) {
      ++parked_;
    } else {
      if (last == Stage::kJson) {
        route(ev, false);
      }
      ++emitted_;
    }
    pool_.release(ev);
  }

  /// Runs the pipeline and sink loops on what is still queued.
  void finish() {
    if (in_queue_ > 0) {
      run_pipeline();
    }
    drain();
  }

  /// Runtime::on_ring_record and decode_record: the header's checks, a pooled event with the
  /// common fields, the source's decode, the type check. nullptr for a skipped record (counted
  /// in failures() when it was an error).
  core::Event* decode(std::span<const std::byte> raw) {
    const auto* hdr = reinterpret_cast<const needle_record_header*>(raw.data());
    if (raw.size() < NEEDLE_RECORD_HEADER_SIZE || hdr->source >= kSourceCount ||
        hdr->size > raw.size()) {
      ++errors_;
      return nullptr;
    }
    std::lock_guard<std::mutex> lock(decode_mu_);
    core::Event* ev = pool_.acquire();
    prepare(ev, kSourceIds[hdr->source], hdr->boot_ns);
    ev->source_index = hdr->source;
    ev->cgroup_id = hdr->task.cgroup_id;
    Event v = view(ev);
    const needle_rc rc = sources_.at(hdr->source).decode(raw, v);
    if (rc != NEEDLE_OK || core::event_type(*ev).empty()) {
      errors_ += rc == NEEDLE_SKIP ? 0 : 1;
      pool_.release(ev);
      return nullptr;
    }
    return ev;
  }

  /// Runtime::run_enrichers up to `last`, in configuration order. False when one asked to park.
  bool enrich(core::Event* ev, Stage last) {
    const size_t n = last == Stage::kDecode ? 0 : last == Stage::kLineage ? 1 : 2;
    for (size_t i = 0; i < n; ++i) {
      Event v = view(ev);
      uint64_t deadline = 0;
      if (enrichers_[i]->enrich(v, deadline) == NEEDLE_PENDING) {
        return false;
      }
    }
    return true;
  }

  void release(core::Event* ev) { pool_.release(ev); }

  /// The sink thread (Runtime::sink_loop, write_batch): peek a batch, write it through the
  /// file sink's slot, commit; until the queue is empty.
  void drain() {
    while (queued_ > 0) {
      const size_t n = sink_queue_.peek_batch(batch_, kSinkBatch, Clock::now());
      if (n == 0) {
        break;
      }
      ptrs_.clear();
      lens_.clear();
      for (size_t i = 0; i < n; ++i) {
        ptrs_.push_back(batch_[i].data());
        lens_.push_back(batch_[i].size());
        sink_bytes_ += batch_[i].size() + 1;
      }
      if (sink_->write(sink_self_, ptrs_.data(), lens_.data(), n) != NEEDLE_OK) {
        sink_failures_ += n;
      }
      sink_queue_.commit();
      queued_ -= n;
    }
  }

  /// Empties the file (and so its dirty pages) so that long runs stay small.
  void truncate_sink() {
    if (sink_->flush(sink_self_) != NEEDLE_OK || ::truncate(sink_path_.c_str(), 0) != 0) {
      ++sink_failures_;
    }
    sink_bytes_ = 0;
  }

  /// Events through the last stage asked for (kFile: handed to the sink queue).
  uint64_t emitted() const { return emitted_; }
  uint64_t sink_bytes() const { return sink_bytes_; }
  uint64_t json_bytes() const { return json_bytes_; }
  uint64_t failures() const { return errors_ + parked_ + sink_failures_; }

 private:
  // Runtime::pipeline_loop and handle: a batch off the ring queue, each event through the
  // enrichers and routed to the sink queue, the sink woken once per batch; then the sink loop's
  // turn once it has a batch.
  void run_pipeline() {
    in_queue_ -= pipeline_in_.pop_batch(events_, kPipelineBatch, Clock::now());
    for (core::Event* ev : events_) {
      if (!enrich(ev, Stage::kCgroup)) {
        ++parked_;
      } else {
        route(ev, true);
        ++emitted_;
      }
      pool_.release(ev);
    }
    sink_queue_.wake();
    if (queued_ >= kSinkBatch) {
      drain();
    }
  }

  // Runtime::prepare: the fields every event has before its source's decode.
  void prepare(core::Event* ev, std::string_view source, uint64_t boot_ns) {
    core::stamp_event(*ev, start_ns_, seq_.fetch_add(1) + 1, boot_ns, source);
  }

  // Runtime::route with one JSON sink: the type filter, one encoding, the sink queue (its
  // consumer's wakeup deferred to the end of the pipeline batch).
  void route(core::Event* ev, bool to_sink) {
    if (!filter_.matches(core::event_type(*ev))) {
      return;
    }
    json_.clear();
    core::encode_json(*ev, json_);
    json_bytes_ += json_.size();
    if (!to_sink) {
      benchmark::DoNotOptimize(json_.data());
      benchmark::ClobberMemory();
      return;
    }
    if (sink_queue_.push_take(json_, true)) {
      ++queued_;
    } else {
      ++sink_failures_;
    }
  }

  std::string sink_path_;
  uint64_t start_ns_;
  std::atomic<uint64_t> seq_{0};
  std::mutex decode_mu_;
  core::EventPool pool_;
  core::EventQueue pipeline_in_{kPipelineQueue};
  core::SinkQueue sink_queue_{kSinkQueue, core::OnFull::kBlock};
  core::EventFilter filter_;
  Sources sources_;
  Instance<lineage::LineageEnricher> lineage_{"lineage", lineage::LineageOptions{}};
  Instance<cgroup::CgroupEnricher> cgroup_{"cgroup", cgroup_options()};
  const std::array<Enricher*, 2> enrichers_ = {&lineage_.plugin, &cgroup_.plugin};
  TestHost sink_host_{"file"};
  needle_config sink_cfg_;
  const needle_plugin_vtable* sink_ = nullptr;
  needle_plugin* sink_self_ = nullptr;
  std::vector<core::Event*> events_;
  size_t in_queue_ = 0;
  std::string json_;
  core::SinkBatch batch_;
  std::vector<const void*> ptrs_;
  std::vector<size_t> lens_;
  size_t queued_ = 0;
  uint64_t sink_bytes_ = 0;
  uint64_t json_bytes_ = 0;
  uint64_t emitted_ = 0;
  uint64_t errors_ = 0;
  uint64_t parked_ = 0;
  uint64_t sink_failures_ = 0;
};

std::string sink_path(const benchmark::State& state) {
  return (fs::temp_directory_path() / ("needle-bench-pipeline-" + std::to_string(getpid()) + "-" +
                                       std::to_string(state.thread_index()) + ".jsonl"))
      .string();
}

size_t next(size_t i, size_t n) {
  return i + 1 == n ? 0 : i + 1;
}

// ---- Benchmarks. Items are events (the container stream emits 2 per 3 records).

void BM_Decode(benchmark::State& state, Stream stream) {
  const std::vector<Bytes>& records = workload().streams[stream];
  Sources sources;
  core::Event ev;
  uint64_t events = 0;
  uint64_t errors = 0;
  size_t i = 0;
  for (auto _ : state) {
    const Bytes& raw = records[i];
    ev.clear();
    Event v = view(&ev);
    const needle_rc rc = sources.at(source_of(raw)).decode(raw, v);
    events += rc == NEEDLE_OK ? 1 : 0;
    errors += rc == NEEDLE_ERROR ? 1 : 0;
    benchmark::DoNotOptimize(ev.node(0));
    i = next(i, records.size());
  }
  if (errors != 0) {
    state.SkipWithError("a record did not decode");
  }
  state.SetItemsProcessed(static_cast<int64_t>(events));
}

void BM_Encode(benchmark::State& state, Stream stream, uint32_t format) {
  Pipeline p(sink_path(state));
  core::Event* ev = p.warm() ? p.decode(workload().streams[stream].front()) : nullptr;
  if (ev == nullptr || !p.enrich(ev, Stage::kCgroup)) {
    state.SkipWithError("no enriched event to encode");
    return;
  }
  std::string out;
  for (auto _ : state) {
    out.clear();
    if (format == NEEDLE_FORMAT_JSON) {
      core::encode_json(*ev, out);
    } else {
      core::encode_msgpack(*ev, out);
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  p.release(ev);
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(out.size()));
  state.counters["bytes/event"] = static_cast<double>(out.size());
}

void BM_Pipeline(benchmark::State& state, Stream stream, Stage last) {
  const std::vector<Bytes>& records = workload().streams[stream];
  Pipeline p(sink_path(state));
  if (!p.warm()) {
    state.SkipWithError("warm-up did not resolve the ancestry and the pod's cgroup");
    return;
  }
  size_t i = 0;
  for (auto _ : state) {
    p.feed(records[i], last);
    i = next(i, records.size());
    if (p.sink_bytes() >= kTruncateAt) {
      state.PauseTiming();
      p.truncate_sink();
      state.ResumeTiming();
    }
  }
  // Events still in the pipeline queue are not counted; those in the sink queue (under one
  // batch) are written untimed.
  const uint64_t events = p.emitted();
  const uint64_t json_bytes = p.json_bytes();
  p.finish();
  if (p.failures() != 0) {
    state.SkipWithError("records failed, events parked or sink writes failed");
  }
  state.SetItemsProcessed(static_cast<int64_t>(events));
  if (last >= Stage::kJson && events != 0) {
    state.counters["json_bytes/event"] = benchmark::Counter(
        static_cast<double>(json_bytes) / events, benchmark::Counter::kAvgThreads);
  }
  if (last == Stage::kFile) {
    state.counters["per_core"] = benchmark::Counter(
        static_cast<double>(events), benchmark::Counter::kIsRate | benchmark::Counter::kAvgThreads);
  }
}

void register_benchmarks() {
  for (size_t s = 0; s < kStreamCount; ++s) {
    if (s != kMix) {
      benchmark::RegisterBenchmark(("decode/" + std::string(kStreamNames[s])).c_str(), &BM_Decode,
                                   static_cast<Stream>(s));
    }
  }
  for (const auto& [prefix, format] : {std::pair{"encode_json/", NEEDLE_FORMAT_JSON},
                                       std::pair{"encode_msgpack/", NEEDLE_FORMAT_MSGPACK}}) {
    for (Stream s : {kExec, kFileOpen, kNetConnect}) {
      benchmark::RegisterBenchmark((prefix + std::string(kStreamNames[s])).c_str(), &BM_Encode, s,
                                   format);
    }
  }
  constexpr std::array<std::pair<std::string_view, Stage>, 4> kStages = {
      {{"decode", Stage::kDecode},
       {"+lineage", Stage::kLineage},
       {"+cgroup", Stage::kCgroup},
       {"+json", Stage::kJson}}};
  for (size_t s = 0; s < kStreamCount; ++s) {
    for (const auto& [name, stage] : kStages) {
      benchmark::RegisterBenchmark(
          ("stages/" + std::string(kStreamNames[s]) + "/" + std::string(name)).c_str(),
          &BM_Pipeline, static_cast<Stream>(s), stage);
    }
  }
  for (size_t s = 0; s < kStreamCount; ++s) {
    benchmark::RegisterBenchmark(("pipeline/" + std::string(kStreamNames[s])).c_str(), &BM_Pipeline,
                                 static_cast<Stream>(s), Stage::kFile)
        ->UseRealTime()
        ->Threads(1)
        ->Threads(2);
  }
}

}  // namespace
}  // namespace needle::bench

int main(int argc, char** argv) {
  // As `needle run` starts: warnings and errors on stderr (the plugins log their start at info),
  // the boot-to-wall clock offset sampled, the host's name and id read once.
  needle::core::setup_logging("warn");
  needle::core::resample_clock_offset();
  (void)needle::core::host_name();
  (void)needle::core::host_id();
  needle::bench::register_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
