// enricher/hash: `process.exe_sha256` and `parent.exe_sha256`.
//
// Threads: enrich() runs on the pipeline thread and only reads a cache keyed by (process
// entity, executable path); a miss queues the file for the plugin's worker thread (SHA-256 with
// libcrypto, paced to max_mib_per_s) and parks the event at most `timeout_ms`. After that the
// event goes on with the missing digest listed under `incomplete`; the worker still finishes,
// so later events of the same program find it cached.
#ifndef NEEDLE_ENRICHERS_HASH_ENRICHER_H
#define NEEDLE_ENRICHERS_HASH_ENRICHER_H

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>

#include "file_hasher.h"
#include "lru_cache.h"
#include "needle/plugin.h"
#include "pending.h"

namespace needle::hash {

struct HashOptions {
  uint64_t max_file_bytes = 64ull << 20;
  uint64_t bytes_per_s = 64ull << 20;
  uint64_t timeout_ms = 500;
  size_t cache_entries = 8192;
  std::string proc_root = "/proc";
  /// Tests: the bits of the cache's keys kept (0 makes every key collide, as chosen paths
  /// could: a digest must still go only to its own program).
  uint64_t key_mask = ~uint64_t{0};
  static constexpr size_t kQueueLimit = 1024;
};

class HashEnricher : public Enricher {
 public:
  HashEnricher(Host host, HashOptions options);
  ~HashEnricher() override;

  Result<void> start() override;
  void stop() override;
  needle_rc enrich(Event& ev, uint64_t& deadline_ns) override;

  /// Tests: waits until the worker has no queued file.
  void wait_idle();

 private:
  // Whose program a digest is: a cached digest is given only to the process it was made for
  // (the 64-bit key only indexes the cache, and a chosen path could collide with another's).
  struct Owner {
    std::string entity;
    uint32_t pid = 0;
    std::string exe;
    bool is(std::string_view e, uint32_t p, std::string_view x) const {
      return pid == p && entity == e && exe == x;
    }
  };
  struct Cached {
    Owner owner;
    HashResult result;
  };
  struct Request {
    uint64_t key;
    Owner owner;
  };
  /// What enrich() does for one of `process` and `parent`.
  enum class Step { kNone, kFilled, kMissing, kQueued };

  uint64_t key_of(std::string_view entity, uint32_t pid, std::string_view exe) const;
  /// The cached digest under `key` when it is of this program (entity, pid and exe).
  const HashResult* cached(uint64_t key, std::string_view entity, uint32_t pid,
                           std::string_view exe);
  /// `fork_parent`: on a fork, the parent object, whose digest the child shares.
  Step one(Event& ev, Event obj, std::string_view field, Event fork_parent);
  void worker();

  // The fields read and written on every event, resolved once.
  struct Fields {
    explicit Fields(const needle_host_api* api)
        : type(api, "type"), process(api, "process"), parent(api, "parent"), exe(api, "exe"),
          exe_sha256(api, "exe_sha256"), pid(api, "pid"), entity_id(api, "entity_id") {}
    Field type, process, parent, exe, exe_sha256, pid, entity_id;
  };

  HashOptions options_;
  Fields f_;
  FileHasher hasher_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  enrich::LruCache<uint64_t, Cached> results_;
  std::deque<Request> queue_;
  std::unordered_set<uint64_t> in_flight_;
  bool busy_ = false;
  std::atomic<bool> stopping_{false};
  std::thread thread_;

  enrich::PendingDeadlines pending_{api()};  // pipeline thread only

  uint32_t c_hashed_;
  uint32_t c_bytes_;
  uint32_t c_too_large_;
  uint32_t c_unreadable_;
  uint32_t c_timeouts_;
  uint32_t c_queue_full_;
};

}  // namespace needle::hash

#endif  // NEEDLE_ENRICHERS_HASH_ENRICHER_H
