#include "queues.h"

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
  std::lock_guard<std::mutex> lock(mu_);
  free_.push_back(ev);
}

bool EventQueue::push(Event* ev) {
  std::unique_lock<std::mutex> lock(mu_);
  not_full_.wait(lock, [&] { return closed_ || q_.size() < cap_; });
  if (closed_) {
    return false;
  }
  q_.push_back(ev);
  not_empty_.notify_one();
  return true;
}

Event* EventQueue::pop(std::chrono::steady_clock::time_point until) {
  std::unique_lock<std::mutex> lock(mu_);
  not_empty_.wait_until(lock, until, [&] { return closed_ || !q_.empty(); });
  if (q_.empty()) {
    return nullptr;
  }
  Event* e = q_.front();
  q_.pop_front();
  not_full_.notify_one();
  return e;
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

bool SinkQueue::push(std::string_view data) {
  std::unique_lock<std::mutex> lock(mu_);
  if (policy_ == OnFull::kBlock) {
    not_full_.wait(lock, [&] { return closed_ || count_ < slots_.size(); });
  }
  if (closed_) {
    ++dropped_;
    return false;
  }
  if (policy_ == OnFull::kSpill && (count_ == slots_.size() || !spill_->empty())) {
    if (!spill_->append(data)) {
      ++dropped_;   // the spill is at buffer_max_mib
      return false;
    }
    not_empty_.notify_one();
    return true;
  }
  if (count_ == slots_.size()) {
    if (inflight_ == count_) {
      ++dropped_;   // everything queued is in flight: the new event is the one to go
      return false;
    }
    drop_one();
  }
  slots_[(head_ + count_) % slots_.size()].assign(data.data(), data.size());
  ++count_;
  not_empty_.notify_one();
  return true;
}

size_t SinkQueue::peek_batch(std::vector<std::string>& out, size_t max,
                             std::chrono::steady_clock::time_point until) {
  std::unique_lock<std::mutex> lock(mu_);
  auto ready = [&] {
    return closed_ || count_ > inflight_ || (spill_ != nullptr && !spill_->empty());
  };
  not_empty_.wait_until(lock, until, ready);
  if (abandoned_ || inflight_ > 0 || inflight_spill_ > 0) {
    return 0;
  }
  if (out.size() < max) {
    out.resize(max);
  }
  if (count_ > 0) {
    size_t n = std::min(count_, max);
    for (size_t i = 0; i < n; ++i) {
      out[i].assign(slots_[(head_ + i) % slots_.size()]);
    }
    inflight_ = n;
    return n;
  }
  if (spill_ != nullptr && !spill_->empty()) {
    inflight_spill_ = spill_->peek(out, 0, max);
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
