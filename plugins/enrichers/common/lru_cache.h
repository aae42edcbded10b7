// A bounded map with least-recently-used eviction, for the enrichers' lookup caches. Not
// thread-safe: the owner guards it. find() allocates nothing (a hit moves a list node);
// put() allocates one node per new key, evicting the least recently used one when full.
#ifndef NEEDLE_ENRICHERS_COMMON_LRU_CACHE_H
#define NEEDLE_ENRICHERS_COMMON_LRU_CACHE_H

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <unordered_map>
#include <utility>

namespace needle::enrich {

template <typename K, typename V, typename Hash = std::hash<K>>
class LruCache {
 public:
  explicit LruCache(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {
    index_.reserve(capacity_);
  }

  /// The value for `key`, marked most recently used; nullptr when absent. The pointer is valid
  /// until the next put() or erase().
  V* find(const K& key) {
    auto it = index_.find(key);
    if (it == index_.end()) {
      return nullptr;
    }
    order_.splice(order_.begin(), order_, it->second);
    return &it->second->second;
  }

  /// Inserts or replaces; returns true when an older entry was evicted to make room.
  bool put(const K& key, V value) {
    auto it = index_.find(key);
    if (it != index_.end()) {
      it->second->second = std::move(value);
      order_.splice(order_.begin(), order_, it->second);
      return false;
    }
    bool evicted = false;
    if (index_.size() >= capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
      evicted = true;
    }
    order_.emplace_front(key, std::move(value));
    index_.emplace(key, order_.begin());
    return evicted;
  }

  void erase(const K& key) {
    auto it = index_.find(key);
    if (it != index_.end()) {
      order_.erase(it->second);
      index_.erase(it);
    }
  }

  size_t size() const { return index_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  using Entry = std::pair<K, V>;
  size_t capacity_;
  std::list<Entry> order_;
  std::unordered_map<K, typename std::list<Entry>::iterator, Hash> index_;
};

}  // namespace needle::enrich

#endif  // NEEDLE_ENRICHERS_COMMON_LRU_CACHE_H
