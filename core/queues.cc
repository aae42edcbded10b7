#include "queues.h"

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

SinkQueue::SinkQueue(size_t capacity, OnFull policy) : slots_(capacity), policy_(policy) {}

bool SinkQueue::push(std::string_view data) {
  std::unique_lock<std::mutex> lock(mu_);
  if (policy_ == OnFull::kBlock) {
    not_full_.wait(lock, [&] { return closed_ || count_ < slots_.size(); });
  }
  if (closed_) {
    ++dropped_;
    return false;
  }
  if (count_ == slots_.size()) {
    // drop_oldest (spill is handled by the caller before it gets here)
    head_ = (head_ + 1) % slots_.size();
    --count_;
    ++dropped_;
  }
  std::string& slot = slots_[(head_ + count_) % slots_.size()];
  slot.assign(data.data(), data.size());
  ++count_;
  not_empty_.notify_one();
  return true;
}

size_t SinkQueue::pop_batch(std::vector<std::string>& out, size_t max,
                            std::chrono::steady_clock::time_point until) {
  std::unique_lock<std::mutex> lock(mu_);
  not_empty_.wait_until(lock, until, [&] { return closed_ || count_ > 0; });
  size_t n = 0;
  if (out.size() < max) {
    out.resize(max);
  }
  while (count_ > 0 && n < max) {
    out[n].swap(slots_[head_]);   // the slot keeps the consumer's old buffer: no allocation
    head_ = (head_ + 1) % slots_.size();
    --count_;
    ++n;
  }
  if (n > 0) {
    not_full_.notify_all();
  }
  return n;
}

void SinkQueue::close_input() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  not_empty_.notify_all();
  not_full_.notify_all();
}

size_t SinkQueue::abandon() {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = count_;
  dropped_ += count_;
  count_ = 0;
  closed_ = true;
  not_empty_.notify_all();
  not_full_.notify_all();
  return n;
}

uint64_t SinkQueue::take_new_drops() {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t d = dropped_ - reported_;
  reported_ = dropped_;
  return d;
}

uint64_t SinkQueue::dropped() const {
  auto* self = const_cast<SinkQueue*>(this);
  std::lock_guard<std::mutex> lock(self->mu_);
  return dropped_;
}

size_t SinkQueue::depth() {
  std::lock_guard<std::mutex> lock(mu_);
  return count_;
}

bool SinkQueue::input_closed() {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

}  // namespace needle::core
