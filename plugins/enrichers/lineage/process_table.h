// The lineage enricher's process table: what it knows of each process (by tgid), bounded in
// entries and in bytes per entry, with least-recently-used eviction and a grace period for
// processes that exited. Slots are preallocated lazily up to the bound and recycled with their
// string capacity, so a warm table allocates nothing per event. Pipeline thread only.
#ifndef NEEDLE_ENRICHERS_LINEAGE_PROCESS_TABLE_H
#define NEEDLE_ENRICHERS_LINEAGE_PROCESS_TABLE_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace needle::lineage {

struct ProcessInfo {
  uint32_t pid = 0;
  uint32_t ppid = 0;
  uint32_t uid = 0;
  bool has_uid = false;
  bool args_known = false;  // args came from an exec or snapshot (or a parent at fork)
  bool args_truncated = false;
  uint8_t comm_len = 0;
  char comm[16] = {};
  char entity_id[16] = {};  // as the process's own events carry it (needle::entity_id)
  bool has_entity = false;
  uint64_t exited_ns = 0;  // 0 while alive
  uint64_t version = 0;    // the enricher's count of changes at this entry's last one
  std::string exe;
  std::string args;  // NUL-separated, at most max_arg_bytes

  std::string_view comm_view() const { return {comm, comm_len}; }
  std::string_view entity_view() const { return {entity_id, has_entity ? 16u : 0u}; }
  void set_comm(std::string_view c);
  void set_entity(std::string_view e);
  /// Keeps at most `max_bytes` of the NUL-separated argument block `block`.
  void set_args(std::string_view block, size_t max_bytes, bool truncated);
};

struct TableLimits {
  size_t max_processes = 65536;
  uint64_t exit_grace_ns = 5'000'000'000ull;
  size_t max_arg_bytes = 1024;
};

class ProcessTable {
 public:
  explicit ProcessTable(TableLimits limits);

  /// The process, or nullptr. `touch` marks it most recently used.
  ProcessInfo* find(uint32_t pid, bool touch = true);
  /// The process's entry, created empty when absent (evicting the least recently used entry
  /// when the table is full; `evicted` says so). A new entry for a pid whose previous holder
  /// exited replaces it.
  ProcessInfo& upsert(uint32_t pid, bool& evicted);
  /// A new, empty entry for `pid`, dropping what was known of an earlier holder of the pid
  /// (a fork: the pid was reused).
  ProcessInfo& fresh(uint32_t pid, bool& evicted);
  /// The process exited at `now`: it stays findable until now + exit_grace.
  void exited(uint32_t pid, uint64_t now);
  /// Removes the exited processes whose grace has passed. Returns how many.
  size_t expire(uint64_t now);
  /// Whether exited processes wait for expire (else it has nothing to do at any time).
  bool exits_pending() const { return exit_count_ > 0; }

  size_t size() const { return live_; }
  size_t capacity() const { return limits_.max_processes; }
  const TableLimits& limits() const { return limits_; }
  /// Bytes held: slots, index, exit queue and every string's capacity.
  size_t memory_bytes() const;

 private:
  static constexpr uint32_t kNil = 0xffffffffu;
  struct Slot {
    ProcessInfo info;
    uint32_t prev = kNil;  // LRU list, head = most recent
    uint32_t next = kNil;
    uint32_t generation = 0;
    bool used = false;
  };
  struct Exit {
    uint32_t slot;
    uint32_t generation;
    uint64_t at;
  };

  uint32_t index_find(uint32_t pid) const;  // bucket of pid, or the empty bucket ending its run
  void index_erase(uint32_t pid);
  void lru_unlink(uint32_t s);
  void lru_push_front(uint32_t s);
  void release(uint32_t s);
  uint32_t take_slot(bool& evicted);

  TableLimits limits_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;
  std::vector<uint32_t> index_;  // open addressing: slot numbers, kNil = empty
  uint32_t mask_ = 0;
  uint32_t head_ = kNil;
  uint32_t tail_ = kNil;
  size_t live_ = 0;
  std::vector<Exit> exits_;  // ring, oldest at exit_head_
  size_t exit_head_ = 0;
  size_t exit_count_ = 0;
};

}  // namespace needle::lineage

#endif  // NEEDLE_ENRICHERS_LINEAGE_PROCESS_TABLE_H
