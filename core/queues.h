// Bounded queues of the pipeline. Every queue is bounded; every drop is counted by its owner.
#ifndef NEEDLE_CORE_QUEUES_H
#define NEEDLE_CORE_QUEUES_H

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "event.h"

namespace needle::core {

/// Recycles events so that a warm pipeline allocates none. Any thread. At most kMaxFree
/// released events are kept: a burst's worth beyond it is freed, so memory returns to the
/// steady level after a storm.
class EventPool {
 public:
  ~EventPool();
  Event* acquire();
  void release(Event* ev);
  size_t allocated() const { return allocated_; }
  static constexpr size_t kMaxFree = 2048;

 private:
  std::mutex mu_;
  std::vector<Event*> free_;
  size_t allocated_ = 0;
};

/// A waiting consumer is woken once this many items wait, when a deferring producer ends its
/// burst (wake()), or at once for a producer that does not defer. Waking the consumer for each
/// item made the threads trade the CPU for every event: a third of needle's time went to futex
/// wakeups and context switches under an open storm.
constexpr size_t kWakeBatch = 128;

/// Ring thread to pipeline thread: a bounded FIFO of events; push blocks when full (the
/// kernel ring then fills and the kernel counts its drops, never blocking).
class EventQueue {
 public:
  explicit EventQueue(size_t capacity) : cap_(capacity) {}
  /// False when closed (the event is not taken). With `defer`, a waiting consumer is woken
  /// only once kWakeBatch events wait; the producer calls wake() when its burst ends.
  bool push(Event* ev, bool defer = false);
  /// Wakes a waiting consumer if anything waits for it.
  void wake();
  /// Waits until an event arrives, the queue closes, or `until`. nullptr when none.
  Event* pop(std::chrono::steady_clock::time_point until);
  /// Like pop, but takes up to `max` events at once into `out` (cleared first); the count.
  size_t pop_batch(std::vector<Event*>& out, size_t max,
                   std::chrono::steady_clock::time_point until);
  void close();
  bool closed_and_empty();
  size_t size();

 private:
  std::mutex mu_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<Event*> q_;
  size_t cap_;
  size_t consumers_waiting_ = 0;
  size_t producers_waiting_ = 0;
  bool closed_ = false;
};

enum class OnFull { kBlock, kDropOldest, kSpill };

/// A batch peeked from a SinkQueue: each event's bytes, valid until the queue's commit() or the
/// next peek. Events in memory are read where they are (a slot in flight keeps its buffer);
/// those read back from the spill, and short ones held inside a slot's string object (which
/// drop_one may move), are copied into `copies` first.
struct SinkBatch {
  std::vector<std::string_view> items;
  std::vector<std::string> copies;
  std::string_view operator[](size_t i) const { return items[i]; }
};

class DiskSpill;

/// Pipeline thread to one sink thread: encoded events in slots whose buffers are recycled. The
/// consumer peeks a batch and commits it once the sink acknowledged it, so a batch in flight is
/// never lost: on abandon (shutdown timeout) a spilling queue persists it with the rest.
class SinkQueue {
 public:
  /// `spill` (owned) is required for OnFull::kSpill.
  SinkQueue(size_t capacity, OnFull policy, DiskSpill* spill = nullptr);
  ~SinkQueue();
  SinkQueue(const SinkQueue&) = delete;
  SinkQueue& operator=(const SinkQueue&) = delete;

  /// Takes a copy of `data`. kBlock waits for room (until closed); kDropOldest drops the
  /// oldest event not in flight; kSpill appends to the disk spill once memory is full (and
  /// keeps appending there until the spill is drained, so order holds). False when the event
  /// was not kept (counted in dropped()). With `defer`, a waiting consumer is woken only once
  /// kWakeBatch events wait (or before the producer would block); the producer calls wake()
  /// when its burst ends.
  bool push(std::string_view data, bool defer = false);
  /// The same, taking `data`'s buffer instead of copying it when the event goes to memory:
  /// `data` is left holding another buffer (contents unspecified, capacity kept for reuse).
  bool push_take(std::string& data, bool defer = false);
  /// Wakes a waiting consumer if anything waits for it.
  void wake();
  /// Up to `max` events into `out` without removing them (see SinkBatch): from memory, or
  /// from the spill when memory is empty. Waits until one is there, the queue is closed, or
  /// `until`. Returns the count; one batch may be in flight at a time.
  size_t peek_batch(SinkBatch& out, size_t max, std::chrono::steady_clock::time_point until);
  /// Removes the batch peeked last (the sink acknowledged it, or failed it for good).
  void commit();
  /// No more input; the consumer drains what is left.
  void close_input();
  /// Shutdown timeout: a spilling queue persists what memory holds (in flight included) in
  /// front of its spill; any other queue discards it. Returns how many events were lost.
  size_t abandon();
  /// Drops counted since the last call (for needle.gap).
  uint64_t take_new_drops();
  uint64_t dropped() const;
  size_t depth();
  uint64_t spill_bytes();
  bool input_closed();
  bool drained();

 private:
  void drop_one();
  /// push and push_take: `store` puts the event into a free memory slot.
  template <typename Store>
  bool push_with(std::string_view data, bool defer, Store store);
  mutable std::mutex mu_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::vector<std::string> slots_;
  // Buffers of committed events, most recent last: a push takes one of these, still in the
  // cache from its last use, where a slot's own buffer was last written `capacity` events ago
  // (cold: writing an event into it stalled the producer on cache misses).
  std::vector<std::string> spare_;
  static constexpr size_t kMaxSpare = 1024;
  static constexpr size_t kMaxSpareBytes = 64 * 1024;   // larger buffers are freed
  size_t head_ = 0;
  size_t count_ = 0;
  size_t inflight_ = 0;          // peeked from memory, not yet committed
  size_t inflight_spill_ = 0;    // peeked from the spill, not yet committed
  size_t consumers_waiting_ = 0;
  OnFull policy_;
  DiskSpill* spill_ = nullptr;
  bool closed_ = false;
  bool abandoned_ = false;
  uint64_t dropped_ = 0;
  uint64_t reported_ = 0;
};

}  // namespace needle::core

#endif  // NEEDLE_CORE_QUEUES_H
