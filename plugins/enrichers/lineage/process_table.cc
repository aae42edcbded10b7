#include "process_table.h"

#include <algorithm>
#include <cstring>

namespace needle::lineage {

namespace {

uint32_t hash_pid(uint32_t pid) {
  // Fibonacci hashing spreads consecutive pids over the buckets.
  return static_cast<uint32_t>((static_cast<uint64_t>(pid) * 0x9e3779b97f4a7c15ull) >> 32);
}

}  // namespace

void ProcessInfo::set_comm(std::string_view c) {
  comm_len = static_cast<uint8_t>(std::min(c.size(), sizeof comm));
  std::memcpy(comm, c.data(), comm_len);
}

void ProcessInfo::set_entity(std::string_view e) {
  has_entity = e.size() == sizeof entity_id;
  if (has_entity) {
    std::memcpy(entity_id, e.data(), sizeof entity_id);
  }
}

void ProcessInfo::set_args(std::string_view block, size_t max_bytes, bool truncated) {
  args_known = true;
  args_truncated = truncated;
  if (block.size() > max_bytes) {
    block = block.substr(0, max_bytes);
    args_truncated = true;
  }
  args.assign(block.data(), block.size());
}

ProcessTable::ProcessTable(TableLimits limits) : limits_(limits) {
  if (limits_.max_processes == 0) {
    limits_.max_processes = 1;
  }
  size_t buckets = 16;
  while (buckets < limits_.max_processes * 2) {
    buckets <<= 1;
  }
  index_.assign(buckets, kNil);
  mask_ = static_cast<uint32_t>(buckets - 1);
  slots_.reserve(limits_.max_processes);
  exits_.resize(limits_.max_processes);
}

uint32_t ProcessTable::index_find(uint32_t pid) const {
  uint32_t b = hash_pid(pid) & mask_;
  while (index_[b] != kNil && slots_[index_[b]].info.pid != pid) {
    b = (b + 1) & mask_;
  }
  return b;
}

void ProcessTable::index_erase(uint32_t pid) {
  uint32_t b = index_find(pid);
  if (index_[b] == kNil) {
    return;
  }
  // Backward-shift deletion keeps every probe run unbroken without tombstones.
  uint32_t hole = b;
  uint32_t j = b;
  while (true) {
    j = (j + 1) & mask_;
    if (index_[j] == kNil) {
      break;
    }
    uint32_t home = hash_pid(slots_[index_[j]].info.pid) & mask_;
    bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
    if (movable) {
      index_[hole] = index_[j];
      hole = j;
    }
  }
  index_[hole] = kNil;
}

void ProcessTable::lru_unlink(uint32_t s) {
  Slot& x = slots_[s];
  if (x.prev != kNil) {
    slots_[x.prev].next = x.next;
  } else {
    head_ = x.next;
  }
  if (x.next != kNil) {
    slots_[x.next].prev = x.prev;
  } else {
    tail_ = x.prev;
  }
  x.prev = x.next = kNil;
}

void ProcessTable::lru_push_front(uint32_t s) {
  Slot& x = slots_[s];
  x.prev = kNil;
  x.next = head_;
  if (head_ != kNil) {
    slots_[head_].prev = s;
  }
  head_ = s;
  if (tail_ == kNil) {
    tail_ = s;
  }
}

ProcessInfo* ProcessTable::find(uint32_t pid, bool touch) {
  uint32_t b = index_find(pid);
  if (index_[b] == kNil) {
    return nullptr;
  }
  uint32_t s = index_[b];
  if (touch && head_ != s) {
    lru_unlink(s);
    lru_push_front(s);
  }
  return &slots_[s].info;
}

void ProcessTable::release(uint32_t s) {
  Slot& x = slots_[s];
  index_erase(x.info.pid);
  lru_unlink(s);
  x.used = false;
  x.generation++;
  free_.push_back(s);
  --live_;
}

uint32_t ProcessTable::take_slot(bool& evicted) {
  if (!free_.empty()) {
    uint32_t s = free_.back();
    free_.pop_back();
    return s;
  }
  if (slots_.size() < limits_.max_processes) {
    slots_.emplace_back();
    return static_cast<uint32_t>(slots_.size() - 1);
  }
  // Full: the least recently used process goes (an exited one, or one idle for longest).
  uint32_t victim = tail_;
  release(victim);
  evicted = true;
  free_.pop_back();
  return victim;
}

ProcessInfo& ProcessTable::upsert(uint32_t pid, bool& evicted) {
  evicted = false;
  uint32_t b = index_find(pid);
  if (index_[b] != kNil) {
    uint32_t s = index_[b];
    Slot& x = slots_[s];
    if (head_ != s) {
      lru_unlink(s);
      lru_push_front(s);
    }
    return x.info;
  }
  uint32_t s = take_slot(evicted);
  Slot& x = slots_[s];
  x.used = true;
  // Reset the fields but keep the strings' capacity.
  std::string exe = std::move(x.info.exe);
  std::string args = std::move(x.info.args);
  exe.clear();
  args.clear();
  x.info = ProcessInfo{};
  x.info.exe = std::move(exe);
  x.info.args = std::move(args);
  x.info.pid = pid;
  lru_push_front(s);
  // Eviction may have shifted the index: look the bucket up again.
  index_[index_find(pid)] = s;
  ++live_;
  return x.info;
}

ProcessInfo& ProcessTable::fresh(uint32_t pid, bool& evicted) {
  uint32_t b = index_find(pid);
  if (index_[b] != kNil) {
    release(index_[b]);
  }
  return upsert(pid, evicted);
}

void ProcessTable::exited(uint32_t pid, uint64_t now) {
  uint32_t b = index_find(pid);
  if (index_[b] == kNil) {
    return;
  }
  uint32_t s = index_[b];
  Slot& x = slots_[s];
  if (x.info.exited_ns != 0) {
    return;
  }
  x.info.exited_ns = now == 0 ? 1 : now;
  if (exit_count_ == exits_.size()) {
    // The queue is as long as the table: its oldest exit goes now, before its grace ends.
    const Exit& old = exits_[exit_head_];
    if (slots_[old.slot].used && slots_[old.slot].generation == old.generation) {
      release(old.slot);
    }
    exit_head_ = (exit_head_ + 1) % exits_.size();
    --exit_count_;
  }
  exits_[(exit_head_ + exit_count_) % exits_.size()] = Exit{s, x.generation, now};
  ++exit_count_;
}

size_t ProcessTable::expire(uint64_t now) {
  size_t n = 0;
  while (exit_count_ > 0) {
    const Exit& e = exits_[exit_head_];
    if (e.at + limits_.exit_grace_ns > now) {
      break;
    }
    if (slots_[e.slot].used && slots_[e.slot].generation == e.generation) {
      release(e.slot);
      ++n;
    }
    exit_head_ = (exit_head_ + 1) % exits_.size();
    --exit_count_;
  }
  return n;
}

size_t ProcessTable::memory_bytes() const {
  // Slots are reserved up front but a page is resident only once a slot on it is used: count
  // the used ones.
  size_t bytes = sizeof(*this) + slots_.size() * sizeof(Slot) +
                 index_.capacity() * sizeof(uint32_t) + free_.capacity() * sizeof(uint32_t) +
                 exits_.capacity() * sizeof(Exit);
  for (const Slot& s : slots_) {
    // Strings beyond the small-string buffer hold a heap block of capacity + 1.
    if (s.info.exe.capacity() > 15) {
      bytes += s.info.exe.capacity() + 1;
    }
    if (s.info.args.capacity() > 15) {
      bytes += s.info.args.capacity() + 1;
    }
  }
  return bytes;
}

}  // namespace needle::lineage
