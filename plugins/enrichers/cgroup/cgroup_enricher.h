// enricher/cgroup: process.cgroup_id -> cgroup path -> container.id, container.runtime, pod.uid.
//
// Threads: enrich() runs on the pipeline thread and only reads a cache; a miss queues a lookup
// for the plugin's worker thread (which reads /proc and walks the cgroup tree) and parks the
// event at most `timeout_ms`. The cache is guarded by one mutex, held only for a map lookup
// and the copy of two short strings into the event.
#ifndef NEEDLE_ENRICHERS_CGROUP_ENRICHER_H
#define NEEDLE_ENRICHERS_CGROUP_ENRICHER_H

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cgroup_resolver.h"
#include "lru_cache.h"
#include "needle/plugin.h"
#include "pending.h"

namespace needle::cgroup {

struct CgroupOptions {
  std::string cgroup2_root;  // "" = found in /proc/self/mountinfo at start
  bool detect_root = true;   // false: cgroup2_root is final ("" = v1-only)
  std::vector<std::string> containerd_namespaces{"default", "k8s.io"};
  uint64_t timeout_ms = 500;
  size_t cache_entries = 8192;
  uint64_t retry_unresolved_ms = 5000;  // an unresolved cgroup is looked up again after
  std::string proc_root = "/proc";
  static constexpr size_t kQueueLimit = 1024;
};

class CgroupEnricher : public Enricher {
 public:
  CgroupEnricher(Host host, CgroupOptions options);
  ~CgroupEnricher() override;

  Result<void> start() override;
  void stop() override;
  needle_rc enrich(Event& ev, uint64_t& deadline_ns) override;

  /// Tests: waits until the worker has no queued lookup.
  void wait_idle();

 private:
  struct Entry {
    CgroupInfo info;
    uint64_t retry_at_ns = 0;  // unresolved entries only
  };
  struct Request {
    uint64_t key;
    uint64_t cgid;
    uint32_t pid;
  };

  bool key_of(const Event& ev, uint64_t cgid, uint64_t& key) const;
  void fill(Event& ev, uint64_t key, const CgroupInfo& info);
  void set_fields(Event& ev, const CgroupInfo& info);
  bool request(uint64_t key, uint64_t cgid, uint32_t pid);
  void worker();

  // The fields read and written on every event, resolved once.
  struct Fields {
    explicit Fields(const needle_host_api* api)
        : cgroup_id(api, "process.cgroup_id"), entity_id(api, "process.entity_id"),
          pid(api, "process.pid"), container_id(api, "container.id"),
          container_runtime(api, "container.runtime"), pod_uid(api, "pod.uid"),
          container(api, "container"), pod(api, "pod"), incomplete(api, "incomplete") {}
    Field cgroup_id, entity_id, pid, container_id, container_runtime, pod_uid, container, pod,
        incomplete;
  };

  // A container's fields built once into a template event (the host's event_new, never
  // submitted) on its second event and copied into the next ones, which from then on share
  // them with the core (one subtree, encoded once). The template is checked against the info
  // it was built from, so a re-resolved cgroup gets a new one.
  struct Template {
    TemplateEvent tmpl;
    bool seen = false;   // one event filled directly; the next builds the template
    std::string id;
    ContainerRuntime runtime = ContainerRuntime::kNone;
    std::string pod_uid;
  };
  static constexpr size_t kMaxTemplates = 1024;
  std::unordered_map<uint64_t, Template> templates_;   // pipeline thread only

  CgroupOptions options_;
  Fields f_;
  std::unique_ptr<CgroupResolver> resolver_;
  bool v2_ = true;
  uint64_t root_id_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  enrich::LruCache<uint64_t, Entry> cache_;
  std::deque<Request> queue_;
  std::unordered_set<uint64_t> in_flight_;
  bool busy_ = false;
  bool stopping_ = false;
  std::thread thread_;

  enrich::PendingDeadlines pending_{api()};  // pipeline thread only

  uint32_t c_lookups_;
  uint32_t c_unresolved_;
  uint32_t c_timeouts_;
  uint32_t c_queue_full_;
  uint32_t c_evictions_;
  uint32_t c_containers_;
};

}  // namespace needle::cgroup

#endif  // NEEDLE_ENRICHERS_CGROUP_ENRICHER_H
