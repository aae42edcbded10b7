// enricher/cri: container.name, image, image_digest, labels and pod.uid, name, namespace from
// the CRI runtime (containerd or CRI-O) of each event's container (container.id, as the cgroup
// enricher sets it: put `cgroup` before `cri` in the config).
//
// Threads: enrich() runs on the pipeline thread and only reads a cache; a miss queues a lookup
// for the plugin's worker thread (gRPC on a unix socket, each call bounded by rpc_timeout_ms)
// and parks the event at most `timeout_ms`. While no runtime answers, events are not parked:
// they go on at once with the CRI fields listed under `incomplete` (counted) and the worker
// dials again with backoff (100 ms doubling to 5 s).
#ifndef NEEDLE_ENRICHERS_CRI_ENRICHER_H
#define NEEDLE_ENRICHERS_CRI_ENRICHER_H

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "cri_client.h"
#include "lru_cache.h"
#include "needle/plugin.h"
#include "pending.h"

namespace needle::cri {

struct CriOptions {
  std::vector<std::string> endpoints;  // normalized ("unix:///...")
  uint64_t timeout_ms = 500;
  uint64_t rpc_timeout_ms = 2000;
  size_t cache_entries = 4096;
  uint64_t unknown_ttl_ms = 5000;  // a container the runtime does not know is asked again
  static constexpr size_t kQueueLimit = 1024;
  static constexpr uint64_t kMinBackoffMs = 100;
  static constexpr uint64_t kMaxBackoffMs = 5000;
};

class CriEnricher : public Enricher {
 public:
  CriEnricher(Host host, CriOptions options);
  ~CriEnricher() override;

  Result<void> start() override;
  void stop() override;
  Result<void> check_connect() override;
  needle_rc enrich(Event& ev, uint64_t& deadline_ns) override;

  /// Tests: true once a runtime answered and none failed since.
  bool connected() const { return state_.load() == State::kUp; }

 private:
  enum class State { kUnknown, kUp, kDown };
  struct Entry {
    std::string id;
    bool known = false;       // false: the runtime said it has no such container
    uint64_t expires_ns = 0;  // unknown entries only
    ContainerInfo info;
  };
  struct Request {
    uint64_t key;
    std::string id;
  };

  void fill(Event& ev, const Entry& e);
  void mark_missing(Event& ev);
  void unmark_missing(Event& ev);
  bool probe();
  void worker();
  void wait_for(uint64_t ms);

  CriOptions options_;
  std::vector<std::unique_ptr<CriClient>> clients_;
  CriClient* active_ = nullptr;  // worker thread only
  std::atomic<State> state_{State::kUnknown};

  std::mutex mu_;
  std::condition_variable cv_;
  enrich::LruCache<uint64_t, Entry> cache_;
  std::deque<Request> queue_;
  std::unordered_set<uint64_t> in_flight_;
  bool stopping_ = false;
  std::thread thread_;

  enrich::PendingDeadlines pending_{api()};  // pipeline thread only

  uint32_t c_lookups_;
  uint32_t c_unknown_;
  uint32_t c_errors_;
  uint32_t c_timeouts_;
  uint32_t c_runtime_down_;
  uint32_t c_reconnects_;
  uint32_t c_queue_full_;
};

}  // namespace needle::cri

#endif  // NEEDLE_ENRICHERS_CRI_ENRICHER_H
