// Deadlines of the events an enricher has parked. The core calls enrich() again for a parked
// event without telling it the deadline it asked for, so an enricher that parks remembers each
// event's deadline itself, keyed by the event handle and a hash of its `id` (handles are pooled
// and reused; the id is unique per boot). Pipeline thread only.
#ifndef NEEDLE_ENRICHERS_COMMON_PENDING_H
#define NEEDLE_ENRICHERS_COMMON_PENDING_H

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "needle/event.h"

namespace needle::enrich {

/// A 64-bit hash of `s` for in-memory indexes, eight bytes at a time (FNV-1a's byte loop is a
/// chain of multiplies, slow for paths): not collision-resistant against chosen input, so an
/// index keyed by it must compare what it found with what it looked for.
inline uint64_t hash64(std::string_view s, uint64_t seed = 0) {
  constexpr uint64_t kMul = 0x9e3779b97f4a7c15ull;
  const auto avalanche = [](uint64_t h) {   // MurmurHash3's fmix64
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
  };
  uint64_t h = avalanche(seed ^ (s.size() * kMul));   // the seed mixed before any byte
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w = 0;
    std::memcpy(&w, s.data() + i, sizeof w);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  uint64_t tail = 0;
  if (i < s.size()) {
    std::memcpy(&tail, s.data() + i, s.size() - i);
  }
  return avalanche((h ^ tail) * kMul);
}

inline uint64_t fnv1a(std::string_view s, uint64_t h = 14695981039346656037ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

/// unmark_incomplete on the list itself (`list`: the event's `incomplete`, or not valid).
inline void unmark_incomplete_in(Event list, std::string_view field) {
  if (list.type() != NEEDLE_NODE_ARRAY) {
    return;
  }
  for (size_t i = 0; i < list.size(); ++i) {
    Event item = list.child(i);
    if (item.str() == field) {
      item.remove();
      break;
    }
  }
  if (list.size() == 0) {
    list.remove();
  }
}

/// Takes `field` off the event's `incomplete` list (and drops the list when it empties). An
/// enricher that parks an event lists the fields it waits for as incomplete at once, so that an
/// event the core sends on without asking again (shutdown, too many parked) says what it lacks;
/// it takes them off when it fills them.
inline void unmark_incomplete(Event& ev, std::string_view field) {
  unmark_incomplete_in(ev.find("incomplete"), field);
}
/// The same with the list's field resolved once (`incomplete`: the field "incomplete"), for a
/// call on every event.
inline void unmark_incomplete(Event& ev, const Field& incomplete, std::string_view field) {
  unmark_incomplete_in(ev.find(incomplete), field);
}

class PendingDeadlines {
 public:
  /// `api`: the host's (each event's id is read by field, once per call).
  explicit PendingDeadlines(const needle_host_api* api) : id_(api, "id") {}

  /// Entries this much older than their deadline are dropped: the core gave up on the event
  /// (shutdown, or too many parked) without calling again.
  static constexpr uint64_t kForgetAfterNs = 30'000'000'000ull;

  /// The event's deadline: the one registered earlier, or `now + timeout` registered now.
  /// `given` is the deadline the core called enrich with: when it has passed (1 when the core
  /// must send the event on at once: shutdown, too many parked), it is the answer, so that the
  /// caller finishes now and calls done(), which drops the entry. An enricher that answered
  /// with its own later deadline instead stayed pending; the core went on without it, and the
  /// entry stayed for kForgetAfterNs, to be scanned by every done() meanwhile.
  uint64_t deadline(const Event& ev, uint64_t now, uint64_t timeout_ns, uint64_t given) {
    if (given != 0 && given <= now) {
      return given;
    }
    const uint64_t key = key_of(ev);
    for (const Entry& e : entries_) {
      if (e.ev == ev.raw() && e.key == key) {
        return e.deadline;
      }
    }
    forget_stale(now);
    entries_.push_back(Entry{ev.raw(), key, now + timeout_ns});
    return now + timeout_ns;
  }

  /// The event is done with this enricher.
  void done(const Event& ev) {
    if (entries_.empty()) {
      return;
    }
    // The event's id is read (a host call and a hash) only when an entry names its pointer:
    // most events were never parked.
    uint64_t key = 0;
    bool have_key = false;
    for (size_t i = 0; i < entries_.size(); ++i) {
      if (entries_[i].ev != ev.raw()) {
        continue;
      }
      if (!have_key) {
        key = key_of(ev);
        have_key = true;
      }
      if (entries_[i].key == key) {
        entries_[i] = entries_.back();
        entries_.pop_back();
        return;
      }
    }
  }

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    const void* ev;
    uint64_t key;
    uint64_t deadline;
  };

  uint64_t key_of(const Event& ev) const { return hash64(ev.get_str(id_).value_or("")); }

  void forget_stale(uint64_t now) {
    for (size_t i = 0; i < entries_.size();) {
      if (entries_[i].deadline + kForgetAfterNs < now) {
        entries_[i] = entries_.back();
        entries_.pop_back();
      } else {
        ++i;
      }
    }
  }

  Field id_;
  std::vector<Entry> entries_;
};

}  // namespace needle::enrich

#endif  // NEEDLE_ENRICHERS_COMMON_PENDING_H
