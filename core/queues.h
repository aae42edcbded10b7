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

/// Recycles events so that a warm pipeline allocates none. Any thread.
class EventPool {
 public:
  ~EventPool();
  Event* acquire();
  void release(Event* ev);
  size_t allocated() const { return allocated_; }

 private:
  std::mutex mu_;
  std::vector<Event*> free_;
  size_t allocated_ = 0;
};

/// Ring thread to pipeline thread: a bounded FIFO of events; push blocks when full (the
/// kernel ring then fills and the kernel counts its drops, never blocking).
class EventQueue {
 public:
  explicit EventQueue(size_t capacity) : cap_(capacity) {}
  /// False when closed (the event is not taken).
  bool push(Event* ev);
  /// Waits until an event arrives, the queue closes, or `until`. nullptr when none.
  Event* pop(std::chrono::steady_clock::time_point until);
  void close();
  bool closed_and_empty();
  size_t size();

 private:
  std::mutex mu_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<Event*> q_;
  size_t cap_;
  bool closed_ = false;
};

enum class OnFull { kBlock, kDropOldest, kSpill };

/// Pipeline thread to one sink thread: encoded events in slots that keep their capacity.
class SinkQueue {
 public:
  SinkQueue(size_t capacity, OnFull policy);
  /// Copies `data` in. With kBlock waits for room (until closed); with kDropOldest drops the
  /// oldest, counted in dropped(). False when the queue is closed (counted as dropped too).
  bool push(std::string_view data);
  /// Moves up to `max` events into `out` (reusing its strings); waits until one arrives, the
  /// queue is closed, or `until`. Returns the count.
  size_t pop_batch(std::vector<std::string>& out, size_t max,
                   std::chrono::steady_clock::time_point until);
  /// No more input; pop_batch drains what is left.
  void close_input();
  /// Discards what is left (counted as dropped) and wakes everyone.
  size_t abandon();
  /// Drops counted since the last call (for needle.gap).
  uint64_t take_new_drops();
  uint64_t dropped() const;
  size_t depth();
  bool input_closed();

 private:
  std::mutex mu_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::vector<std::string> slots_;
  size_t head_ = 0;
  size_t count_ = 0;
  OnFull policy_;
  bool closed_ = false;
  uint64_t dropped_ = 0;
  uint64_t reported_ = 0;
};

}  // namespace needle::core

#endif  // NEEDLE_CORE_QUEUES_H
