#include "queues.h"

#include <algorithm>
#include <cstddef>

#include "spill.h"

namespace needle::core {

EventPool::~EventPool() {
  for (Event* e : free_) {
    delete e;
  }
}

Event* EventPool::acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!free_.empty()) {
      Event* e = free_.back();
      free_.pop_back();
      return e;
    }
    ++allocated_;
  }
  return new Event();
}

void EventPool::release(Event* ev) {
  ev->clear();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.size() < kMaxFree) {
      free_.push_back(ev);
      return;
    }
    --allocated_;
  }
  delete ev;
}

bool EventQueue::push(Event* ev, bool defer) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!closed_ && q_.size() >= cap_) {
    if (consumers_waiting_ > 0) {
      not_empty_.notify_one();   // a deferred burst filled the queue: the consumer must run
    }
    ++producers_waiting_;
    not_full_.wait(lock, [&] { return closed_ || q_.size() < cap_; });
    --producers_waiting_;
  }
  if (closed_) {
    return false;
  }
  q_.push_back(ev);
  if (consumers_waiting_ > 0 && (!defer || q_.size() >= kWakeBatch)) {
    not_empty_.notify_one();
  }
  return true;
}

void EventQueue::wake() {
  std::lock_guard<std::mutex> lock(mu_);
  if (consumers_waiting_ > 0 && !q_.empty()) {
    not_empty_.notify_one();
  }
}

Event* EventQueue::pop(std::chrono::steady_clock::time_point until) {
  std::vector<Event*> one;
  return pop_batch(one, 1, until) == 1 ? one.front() : nullptr;
}

size_t EventQueue::pop_batch(std::vector<Event*>& out, size_t max,
                             std::chrono::steady_clock::time_point until) {
  out.clear();
  std::unique_lock<std::mutex> lock(mu_);
  if (q_.empty() && !closed_) {
    ++consumers_waiting_;
    not_empty_.wait_until(lock, until, [&] { return closed_ || !q_.empty(); });
    --consumers_waiting_;
  }
  size_t n = std::min(max, q_.size());
  out.assign(q_.begin(), q_.begin() + static_cast<std::ptrdiff_t>(n));
  q_.erase(q_.begin(), q_.begin() + static_cast<std::ptrdiff_t>(n));
  if (n > 0 && producers_waiting_ > 0) {
    not_full_.notify_all();
  }
  return n;
}

void EventQueue::close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  not_empty_.notify_all();
  not_full_.notify_all();
}

bool EventQueue::closed_and_empty() {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_ && q_.empty();
}

size_t EventQueue::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return q_.size();
}

SinkQueue::SinkQueue(size_t capacity, OnFull policy, DiskSpill* spill)
    : slots_(capacity), policy_(policy), spill_(spill) {}

SinkQueue::~SinkQueue() { delete spill_; }

void SinkQueue::drop_one() {
  // Drop the oldest event that is not in flight: shift the in-flight ones over it.
  size_t cap = slots_.size();
  for (size_t i = inflight_; i > 0; --i) {
    slots_[(head_ + i) % cap].swap(slots_[(head_ + i - 1) % cap]);
  }
  head_ = (head_ + 1) % cap;
  --count_;
  ++dropped_;
}

bool SinkQueue::push(std::string_view data, bool defer) {
  return push_with(data, defer, [&](std::string& slot) {
    if (slot.capacity() < data.size() && !spare_.empty()) {
      slot.swap(spare_.back());
      spare_.pop_back();
    }
    slot.assign(data.data(), data.size());
  });
}

bool SinkQueue::push_take(std::string& data, bool defer) {
  return push_with(data, defer, [&](std::string& slot) {
    slot.swap(data);
    if (!spare_.empty()) {
      data.swap(spare_.back());   // the caller's next event goes into a warm buffer
      spare_.pop_back();
    }
  });
}

template <typename Store>
bool SinkQueue::push_with(std::string_view data, bool defer, Store store) {
  std::unique_lock<std::mutex> lock(mu_);
  if (policy_ == OnFull::kBlock && !closed_ && count_ == slots_.size()) {
    if (consumers_waiting_ > 0) {
      not_empty_.notify_one();   // a deferred burst filled the queue: the consumer must run
    }
    not_full_.wait(lock, [&] { return closed_ || count_ < slots_.size(); });
  }
  // Wake a waiting consumer for this event unless the producer defers and few wait.
  auto notify = [&](size_t waiting) {
    if (consumers_waiting_ > 0 && (!defer || waiting >= kWakeBatch)) {
      not_empty_.notify_one();
    }
  };
  if (closed_) {
    ++dropped_;
    return false;
  }
  if (policy_ == OnFull::kSpill && (count_ == slots_.size() || !spill_->empty())) {
    if (!spill_->append(data)) {
      ++dropped_;   // the spill is at buffer_max_mib
      return false;
    }
    notify(count_ + static_cast<size_t>(spill_->count()));
    return true;
  }
  if (count_ == slots_.size()) {
    if (inflight_ == count_) {
      ++dropped_;   // everything queued is in flight: the new event is the one to go
      return false;
    }
    drop_one();
  }
  store(slots_[(head_ + count_) % slots_.size()]);
  ++count_;
  notify(count_ - inflight_);
  return true;
}

void SinkQueue::wake() {
  std::lock_guard<std::mutex> lock(mu_);
  if (consumers_waiting_ > 0 && (count_ > inflight_ || (spill_ != nullptr && !spill_->empty()))) {
    not_empty_.notify_one();
  }
}

size_t SinkQueue::peek_batch(SinkBatch& out, size_t max,
                             std::chrono::steady_clock::time_point until) {
  std::unique_lock<std::mutex> lock(mu_);
  auto ready = [&] {
    return closed_ || count_ > inflight_ || (spill_ != nullptr && !spill_->empty());
  };
  if (!ready()) {
    ++consumers_waiting_;
    not_empty_.wait_until(lock, until, ready);
    --consumers_waiting_;
  }
  if (abandoned_ || inflight_ > 0 || inflight_spill_ > 0) {
    return 0;
  }
  out.items.clear();
  if (out.copies.size() < max) {
    out.copies.resize(max);   // before any view of a copy is taken: they must not move
  }
  if (count_ > 0) {
    size_t n = std::min(count_, max);
    for (size_t i = 0; i < n; ++i) {
      const std::string& slot = slots_[(head_ + i) % slots_.size()];
      const auto at = reinterpret_cast<uintptr_t>(slot.data());
      const auto self = reinterpret_cast<uintptr_t>(&slot);
      if (at >= self && at < self + sizeof slot) {
        out.copies[i].assign(slot);   // kept inside the string object: drop_one may move it
        out.items.emplace_back(out.copies[i]);
      } else {
        out.items.emplace_back(slot);   // a buffer of its own, untouched until commit
      }
    }
    inflight_ = n;
    return n;
  }
  if (spill_ != nullptr && !spill_->empty()) {
    inflight_spill_ = spill_->peek(out.copies, 0, max);
    for (size_t i = 0; i < inflight_spill_; ++i) {
      out.items.emplace_back(out.copies[i]);
    }
    return inflight_spill_;
  }
  return 0;
}

void SinkQueue::commit() {
  std::lock_guard<std::mutex> lock(mu_);
  if (abandoned_) {
    return;
  }
  if (inflight_ > 0) {
    for (size_t i = 0; i < inflight_; ++i) {
      std::string& slot = slots_[(head_ + i) % slots_.size()];
      if (spare_.size() < kMaxSpare && slot.capacity() <= kMaxSpareBytes) {
        spare_.push_back(std::move(slot));
      }
    }
    head_ = (head_ + inflight_) % slots_.size();
    count_ -= inflight_;
    inflight_ = 0;
    not_full_.notify_all();
  } else if (inflight_spill_ > 0) {
    spill_->commit(inflight_spill_);
    inflight_spill_ = 0;
  }
}

void SinkQueue::close_input() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  not_empty_.notify_all();
  not_full_.notify_all();
}

size_t SinkQueue::abandon() {
  std::lock_guard<std::mutex> lock(mu_);
  size_t lost = count_;
  if (spill_ != nullptr && count_ > 0) {
    std::vector<const std::string*> items;
    for (size_t i = 0; i < count_; ++i) {
      items.push_back(&slots_[(head_ + i) % slots_.size()]);
    }
    lost -= spill_->prepend(items);
  }
  dropped_ += lost;
  count_ = 0;
  inflight_ = 0;
  inflight_spill_ = 0;   // never committed: still in the spill
  closed_ = true;
  abandoned_ = true;
  not_empty_.notify_all();
  not_full_.notify_all();
  return lost;
}

uint64_t SinkQueue::take_new_drops() {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t d = dropped_ - reported_;
  reported_ = dropped_;
  return d;
}

uint64_t SinkQueue::dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

size_t SinkQueue::depth() {
  std::lock_guard<std::mutex> lock(mu_);
  return count_ + (spill_ != nullptr ? static_cast<size_t>(spill_->count()) : 0);
}

uint64_t SinkQueue::spill_bytes() {
  std::lock_guard<std::mutex> lock(mu_);
  return spill_ != nullptr ? spill_->bytes() : 0;
}

bool SinkQueue::input_closed() {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

bool SinkQueue::drained() {
  std::lock_guard<std::mutex> lock(mu_);
  return count_ == 0 && (spill_ == nullptr || spill_->empty());
}

}  // namespace needle::core
