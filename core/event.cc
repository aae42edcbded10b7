#include "event.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "clock.h"
#include "encode.h"

namespace needle::core {

namespace {

bool utf8_step(const unsigned char* p, size_t n, size_t& len) {
  unsigned char c = p[0];
  if (c < 0x80) {
    len = 1;
    return true;
  }
  uint32_t cp = 0;
  uint32_t min = 0;
  if ((c & 0xe0) == 0xc0) {
    len = 2;
    cp = c & 0x1f;
    min = 0x80;
  } else if ((c & 0xf0) == 0xe0) {
    len = 3;
    cp = c & 0x0f;
    min = 0x800;
  } else if ((c & 0xf8) == 0xf0) {
    len = 4;
    cp = c & 0x07;
    min = 0x10000;
  } else {
    len = 1;
    return false;
  }
  if (len > n) {
    len = 1;
    return false;
  }
  for (size_t i = 1; i < len; ++i) {
    if ((p[i] & 0xc0) != 0x80) {
      len = 1;
      return false;
    }
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
    len = 1;
    return false;
  }
  return true;
}

// The intern table: open addressing over kSlots published pointers, filled to a quarter at most
// so that probes stay short. Readers never lock; writers take the mutex and publish a complete
// entry with a release store.
constexpr size_t kSlotBits = 14;
constexpr size_t kSlots = size_t{1} << kSlotBits;
static_assert(kSlots >= kMaxKeys * 4);

struct KeyTable {
  // Slot i is empty while hashes[i] is 0. A writer stores the key before its hash, so a reader
  // that sees the hash sees the key.
  std::array<std::atomic<uint64_t>, kSlots> hashes{};
  std::array<std::atomic<const Key*>, kSlots> keys{};
  std::mutex mu;
  std::deque<Key> store;   // never moves an entry
};

KeyTable& key_table() {
  static KeyTable* table = new KeyTable();   // lives as long as the process: no exit-order race
  return *table;
}

uint64_t load_bytes(const char* p, size_t n) {
  uint64_t v = 0;
  std::memcpy(&v, p, n);
  return v;
}

// Keys are short: words, then the last bytes through overlapping loads of fixed size (which
// cover every byte, so equal-length keys that differ hash apart), no byte loop.
uint64_t key_hash(std::string_view k) {
  const char* p = k.data();
  const size_t n = k.size();
  uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
  uint64_t last = 0;
  if (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8) {
      h = (h ^ load_bytes(p + i, 8)) * 0xff51afd7ed558ccdull;
      h ^= h >> 32;
    }
    last = load_bytes(p + n - 8, 8);
  } else if (n >= 4) {
    last = load_bytes(p, 4) | load_bytes(p + n - 4, 4) << 32;
  } else if (n >= 2) {
    last = load_bytes(p, 2) | load_bytes(p + n - 2, 2) << 16;
  } else if (n == 1) {
    last = static_cast<unsigned char>(p[0]);
  }
  return ((h ^ last) * 0xc4ceb9fe1a85ec53ull) | 1;   // never 0, the empty mark
}

// Byte equality of two keys of length n, inline: keys are short, where a memcmp call costs more
// than the comparison.
bool same_bytes(const char* a, const char* b, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x;
    uint64_t y;
    std::memcpy(&x, a + i, sizeof x);
    std::memcpy(&y, b + i, sizeof y);
    if (x != y) {
      return false;
    }
  }
  for (; i < n; ++i) {
    if (a[i] != b[i]) {
      return false;
    }
  }
  return true;
}

// The index of the slot holding `k` (hash h), or of the empty slot where it would go.
size_t key_slot(const KeyTable& t, std::string_view k, uint64_t h) {
  size_t i = h >> (64 - kSlotBits);   // a multiplicative hash's best bits
  while (true) {
    uint64_t sh = t.hashes[i].load(std::memory_order_acquire);
    if (sh == 0) {
      return i;
    }
    if (sh == h) {
      const Key* e = t.keys[i].load(std::memory_order_relaxed);
      if (e->name.size() == k.size() && same_bytes(e->name.data(), k.data(), k.size())) {
        return i;
      }
    }
    i = (i + 1) & (kSlots - 1);
  }
}

// The first component of a dotted path and whether it is the last one. A loop: the keys are
// a few bytes long, where memchr's setup costs more than the search.
std::string_view first_part(std::string_view path, bool& last) {
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '.') {
      last = false;
      return path.substr(0, i);
    }
  }
  last = true;
  return path;
}

}  // namespace

namespace {

// Plugins name fields with string literals, so a name comes back at the same address event after
// event: a per-thread cache by address answers most lookups with one comparison of the bytes
// (which keeps it right when an address is reused for other bytes), where the table costs a hash
// and a probe. Zero-initialised POD: no guard on each thread-local access.
struct AddressEntry {
  const char* ptr;
  size_t len;
  const Key* key;
};
constexpr size_t kAddressBits = 9;
thread_local AddressEntry tl_by_address[size_t{1} << kAddressBits];

AddressEntry& address_entry(std::string_view name) {
  auto a = reinterpret_cast<uintptr_t>(name.data()) ^ (uintptr_t{name.size()} << 56);
  return tl_by_address[(a * 0x9e3779b97f4a7c15ull) >> (64 - kAddressBits)];
}

const Key* by_address(const AddressEntry& e, std::string_view name) {
  if (e.ptr == name.data() && e.len == name.size() &&
      same_bytes(e.key->name.data(), name.data(), name.size())) {
    return e.key;
  }
  return nullptr;
}

const Key* table_lookup(std::string_view name, uint64_t h, size_t& slot) {
  const KeyTable& t = key_table();
  slot = key_slot(t, name, h);
  return t.hashes[slot].load(std::memory_order_acquire) == 0
             ? nullptr
             : t.keys[slot].load(std::memory_order_relaxed);
}

}  // namespace

const Key* find_key(std::string_view name) {
  if (name.empty() || name.size() > kMaxInternedKey) {
    return nullptr;
  }
  AddressEntry& e = address_entry(name);
  if (const Key* k = by_address(e, name)) {
    return k;
  }
  size_t slot = 0;
  const Key* k = table_lookup(name, key_hash(name), slot);
  if (k != nullptr) {
    e = AddressEntry{name.data(), name.size(), k};
  }
  return k;
}

const Key* intern_key(std::string_view name) {
  if (const Key* k = find_key(name)) {
    return k;
  }
  if (name.empty() || name.size() > kMaxInternedKey) {
    return nullptr;
  }
  // A new name (or one another thread is adding): hash again and add it under the lock.
  const uint64_t h = key_hash(name);
  KeyTable& t = key_table();
  std::lock_guard<std::mutex> lock(t.mu);
  const size_t i = key_slot(t, name, h);   // again: another writer may have won
  if (t.hashes[i].load(std::memory_order_acquire) != 0) {
    return t.keys[i].load(std::memory_order_relaxed);
  }
  if (t.store.size() >= kMaxKeys) {
    return nullptr;
  }
  Key& k = t.store.emplace_back();
  k.name.assign(name);
  k.bit = uint32_t{1} << ((t.store.size() - 1) % 32);
  json_string(name, k.json);
  k.json.push_back(':');
  if (k.json.size() <= sizeof k.json32) {
    std::memcpy(k.json32, k.json.data(), k.json.size());
    k.json_short = true;
  }
  // msgpack str: fixstr up to 31 bytes, else str8 (kMaxInternedKey < 256).
  if (name.size() < 32) {
    k.msgpack.push_back(static_cast<char>(0xa0 | name.size()));
  } else {
    k.msgpack.push_back(static_cast<char>(0xd9));
    k.msgpack.push_back(static_cast<char>(name.size()));
  }
  k.msgpack.append(name);
  t.keys[i].store(&k, std::memory_order_relaxed);
  t.hashes[i].store(h, std::memory_order_release);
  address_entry(name) = AddressEntry{name.data(), name.size(), &k};
  return &k;
}

const Field* make_field(std::string_view path) {
  if (path.empty()) {
    return nullptr;
  }
  struct Registry {
    std::mutex mu;
    std::unordered_map<std::string, std::unique_ptr<Field>> by_path;
  };
  static Registry* reg = new Registry();   // lives as long as the process, like its fields
  std::lock_guard<std::mutex> lock(reg->mu);
  auto it = reg->by_path.find(std::string(path));
  if (it != reg->by_path.end()) {
    return it->second.get();
  }
  if (reg->by_path.size() >= kMaxFields) {
    return nullptr;
  }
  auto f = std::make_unique<Field>();
  f->path.assign(path);
  std::string_view rest = path;
  while (true) {
    bool last = true;
    std::string_view part = first_part(rest, last);
    const Key* k = intern_key(part);
    if (k == nullptr) {
      f->parts.clear();   // a name kept in arenas: the field resolves by its path
      break;
    }
    f->parts.push_back(k);
    if (last) {
      break;
    }
    rest = rest.substr(part.size() + 1);
  }
  const Field* out = f.get();
  reg->by_path.emplace(f->path, std::move(f));
  return out;
}

namespace {

// True when every byte of `s` is ASCII: words at a time, the tail through overlapping loads
// (most values are short ASCII names and paths, where valid_utf8's loop costs more).
[[gnu::always_inline]] inline bool all_ascii(std::string_view s) {
  const char* p = s.data();
  const size_t n = s.size();
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  if (n >= 8) {
    uint64_t acc = load_bytes(p + n - 8, 8);
    for (size_t i = 0; i + 8 < n; i += 8) {
      acc |= load_bytes(p + i, 8);
    }
    return (acc & kHigh) == 0;
  }
  if (n >= 4) {
    return ((load_bytes(p, 4) | load_bytes(p + n - 4, 4)) & kHigh) == 0;
  }
  uint64_t acc = 0;
  for (size_t i = 0; i < n; ++i) {
    acc |= static_cast<unsigned char>(p[i]);
  }
  return (acc & 0x80) == 0;
}

[[gnu::always_inline]] inline bool valid_text(std::string_view s) {
  return all_ascii(s) || valid_utf8(s);
}

}  // namespace

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    // Fast path for ASCII runs, eight bytes at a time.
    if (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, p + i, sizeof w);
      if ((w & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    if (!utf8_step(p + i, n - i, len)) {
      return false;
    }
    i += len;
  }
  return true;
}

bool sanitize_utf8(std::string_view in, std::string& out) {
  out.clear();
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  size_t n = in.size();
  bool clean = true;
  size_t i = 0;
  while (i < n) {
    size_t len = 0;
    if (utf8_step(p + i, n - i, len)) {
      out.append(in.data() + i, len);
    } else {
      out.append("\xef\xbf\xbd");
      clean = false;
    }
    i += len;
  }
  return clean;
}

Event::~Event() {
  release_held();
  drop_copies();
}

void release(const Frozen* fz) {
  if (fz->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    delete fz;
  }
}

void Event::release_held() {
  for (const Frozen* fz : held_) {
    release(fz);
  }
  held_.clear();
}

void Event::drop_copies() const {
  for (const CopySource& c : copies_) {
    if (c.frozen != nullptr) {
      release(c.frozen);
    }
  }
  copies_.clear();
}

Frozen::~Frozen() {
  Transitions* chunk = transitions.load(std::memory_order_acquire);
  while (chunk != nullptr) {
    const uint32_t n = chunk->count.load(std::memory_order_acquire);
    for (uint32_t i = 0; i < n; ++i) {
      const Transition& t = chunk->entries[i];
      if (const Frozen* r = t.result.load(std::memory_order_acquire)) {
        release(r);
      }
      if (t.src != nullptr) {
        release(t.src);
      }
    }
    Transitions* next = chunk->next.load(std::memory_order_acquire);
    delete chunk;
    chunk = next;
  }
}

Frozen* Event::freeze(const Event& from, uint32_t n) {
  auto* fz = new Frozen();
  fz->tree.frozen_tree_ = true;
  fz->tree.nodes_[0].type = from.nodes_[n].type;
  fz->tree.copy_children(0, from, n, true);
  encode_json(fz->tree, fz->json);
  return fz;
}

void Frozen::make_msgpack() const {
  std::lock_guard<std::mutex> lock(mu);
  if (!msgpack_ready_.load(std::memory_order_relaxed)) {
    encode_msgpack(tree, msgpack_);
    msgpack_ready_.store(true, std::memory_order_release);
  }
}

template <typename Apply>
bool Event::write_shared(uint32_t parent, const Field* f, uint32_t type, uint64_t bits,
                         std::string_view str, const Frozen* src, Apply apply) {
  if (parent >= nodes_.size() || (f != nullptr && f->parts.empty())) {
    return false;
  }
  const Frozen* fz = nodes_[parent].shared();
  if (fz == nullptr || fz->tree.nodes_[0].type != NEEDLE_NODE_OBJECT) {
    return false;
  }
  // The transition answering this write, if one is published; `last` and `chunks`: the chain's
  // last chunk and length (for an append, made under the lock).
  const auto lookup = [&](Frozen::Transitions** last, size_t* chunks) -> Frozen::Transition* {
    for (Frozen::Transitions* c = fz->transitions.load(std::memory_order_acquire); c != nullptr;
         c = c->next.load(std::memory_order_acquire)) {
      *last = c;
      ++*chunks;
      const uint32_t n = c->count.load(std::memory_order_acquire);
      for (uint32_t i = 0; i < n; ++i) {
        Frozen::Transition& t = c->entries[i];
        if (t.field == f && t.type == type && t.bits == bits && t.src == src && t.str == str) {
          return &t;
        }
      }
    }
    return nullptr;
  };
  Frozen::Transitions* last = nullptr;
  size_t chunks = 0;
  // Without the lock first: a hit whose result exists is the common case.
  const Frozen::Transition* published = lookup(&last, &chunks);
  const Frozen* result =
      published != nullptr ? published->result.load(std::memory_order_acquire) : nullptr;
  if (result == nullptr) {
    std::lock_guard<std::mutex> lock(fz->mu);
    last = nullptr;
    chunks = 0;
    Frozen::Transition* hit = lookup(&last, &chunks);
    if (hit == nullptr) {
      const bool room_in_last =
          last != nullptr &&
          last->count.load(std::memory_order_relaxed) < Frozen::kTransitionsPerChunk;
      if (room_in_last || chunks < Frozen::kMaxTransitionChunks) {
        if (src != nullptr) {
          src->refs.fetch_add(1, std::memory_order_relaxed);   // compared by address: kept
        }
        Frozen::Transitions* into = room_in_last ? last : new Frozen::Transitions();
        const uint32_t n = into->count.load(std::memory_order_relaxed);
        Frozen::Transition& t = into->entries[n];
        t.field = f;
        t.type = type;
        t.bits = bits;
        t.str.assign(str);
        t.src = src;
        t.seen = 1;
        into->count.store(n + 1, std::memory_order_release);
        if (!room_in_last) {   // a new chunk, complete, published after the last
          (last != nullptr ? last->next : fz->transitions).store(into, std::memory_order_release);
        }
      }
      return false;   // a first time: copied in and written as usual
    }
    if (hit->result.load(std::memory_order_relaxed) == nullptr) {
      if (++hit->seen < 2) {
        return false;
      }
      // The result's tree is the old one's nodes at the same indices, then the write (new nodes
      // after them): ids read below the old subtree name the same nodes in the new one.
      auto* r = new Frozen();
      r->tree.frozen_tree_ = true;
      r->tree.nodes_[0].type = NEEDLE_NODE_OBJECT;
      r->tree.copy_children(0, fz->tree, 0, true);
      apply(r->tree);
      encode_json(r->tree, r->json);
      hit->result.store(r, std::memory_order_release);
    }
    result = hit->result.load(std::memory_order_relaxed);
  }
  attach(parent, result);   // the old subtree's reference stays held until clear()
  for (View& v : views_) {
    if (v.owner == parent && v.fz == fz && v.map.empty()) {
      v.fz = result;   // same indices (above): ids taken before the write still name their node
    }
  }
  return true;
}

void Event::attach(uint32_t n, const Frozen* fz) {
  changed();
  fz->refs.fetch_add(1, std::memory_order_relaxed);
  held_.push_back(fz);
  nodes_[n].v.frozen = fz;
}

void Event::thaw_frozen(uint32_t n) {
  const Frozen* fz = nodes_[n].v.frozen;
  nodes_[n].v.frozen = nullptr;
  // Foreign ids handed out below n now name the copies: record where each node goes (views
  // never move while the copy runs).
  std::vector<uint32_t>* map = nullptr;
  for (View& v : views_) {
    if (v.owner == n && v.fz == fz && v.map.empty()) {
      v.map.assign(fz->tree.nodes_.size(), kNone);
      v.map[0] = n;
      map = &v.map;
      break;
    }
  }
  copy_children(n, fz->tree, 0, false, map);   // fz stays held (held_) until clear()
  if (map != nullptr) {
    for (View& v : views_) {   // any other view of the same subtree there (after a shared write)
      if (v.owner == n && v.fz == fz && v.map.empty()) {
        v.map = *map;
      }
    }
  }
}

uint32_t Event::foreign_id(uint32_t owner, const Frozen* fz, uint32_t local) const {
  if (local == kNone) {
    return kNone;
  }
  size_t v = 0;
  for (; v < views_.size(); ++v) {
    if (views_[v].owner == owner && views_[v].fz == fz && views_[v].map.empty()) {
      break;
    }
  }
  if (v == views_.size()) {
    if (views_.size() >= kMaxViews) {
      return kNone;
    }
    views_.push_back(View{fz, owner, {}});
  }
  return kForeign | static_cast<uint32_t>(v) << kLocalBits | local;
}

uint32_t Event::current_foreign(uint32_t id) const {
  const size_t vi = (id - kForeign) >> kLocalBits;
  if (vi >= views_.size()) {
    return kNone;
  }
  const View& v = views_[vi];
  if (v.map.empty()) {
    return id;   // still shared: read there
  }
  const uint32_t local = id & ((uint32_t{1} << kLocalBits) - 1);
  return local < v.map.size() ? v.map[local] : kNone;   // copied in since: its copy
}

const Event& Event::view_tree(uint32_t id, uint32_t& local) const {
  local = id & ((uint32_t{1} << kLocalBits) - 1);
  return views_[(id - kForeign) >> kLocalBits].fz->tree;
}

uint32_t Event::own(uint32_t id) {
  if (!foreign(id)) {
    return id;
  }
  const size_t vi = (id - kForeign) >> kLocalBits;
  if (vi >= views_.size()) {
    return kNone;
  }
  const uint32_t local = id & ((uint32_t{1} << kLocalBits) - 1);
  if (views_[vi].map.empty()) {
    if (nodes_[views_[vi].owner].shared() != views_[vi].fz) {
      return kNone;   // the subtree this id named was replaced
    }
    thaw_frozen(views_[vi].owner);
  }
  const View& v = views_[vi];
  return local < v.map.size() ? v.map[local] : kNone;
}

const Frozen* Event::frozen_for_copy(uint32_t n) const {
  if (frozen_tree_) {
    return nullptr;   // a shared subtree's own tree is copied, not shared in parts
  }
  // Few nodes of one event are copied from (a template's parent and ancestors): a short list.
  constexpr size_t kMaxCopySources = 8;
  for (CopySource& c : copies_) {
    if (c.node != n) {
      continue;
    }
    if (c.frozen == nullptr) {
      if (nodes_.size() >= (size_t{1} << kLocalBits)) {
        return nullptr;   // too large for foreign ids to name its nodes: copied each time
      }
      c.frozen = freeze(*this, n);   // the list's reference
    }
    return c.frozen;
  }
  if (copies_.size() < kMaxCopySources) {
    copies_.push_back(CopySource{n, nullptr});
  }
  return nullptr;
}

void Event::clear() {
  release_held();
  drop_copies();
  views_.clear();
  nodes_.clear();
  arena_.clear();
  nodes_.push_back(Node{});
  nodes_[0].type = NEEDLE_NODE_OBJECT;
  boot_ns = 0;
  source_index = 0;
  cgroup_id = 0;
  seq = 0;
}

void Event::Arena::grow(size_t n) {
  size_t cap = std::max<size_t>({cap_ * 2, size_ + n, 256});
  auto bigger = std::make_unique<char[]>(cap);
  if (size_ != 0) {
    std::memcpy(bigger.get(), data_.get(), size_);
  }
  data_ = std::move(bigger);
  cap_ = cap;
}

[[gnu::always_inline]] inline uint32_t Event::store(std::string_view s) {
  return arena_.append(s);
}

[[gnu::always_inline]] inline uint32_t Event::add_node(uint32_t parent, const Key* ikey,
                                                       std::string_view key, uint32_t type) {
  changed();
  uint32_t key_off = kNone;
  if (ikey == nullptr && !key.empty()) {
    const auto len = static_cast<uint32_t>(key.size());
    key_off = store(std::string_view(reinterpret_cast<const char*>(&len), sizeof len));
    store(key);
  }
  auto idx = static_cast<uint32_t>(nodes_.size());
  // Filled in place: a Node built on the stack and copied stalls on store forwarding.
  Node& n = nodes_.emplace_back();
  n.type = type;
  n.parent = parent;
  n.ikey = ikey;
  n.key_off = key_off;
  Node& p = nodes_[parent];
  if (ikey != nullptr) {
    p.key_bits |= ikey->bit;
  }
  if (p.last == kNone) {
    p.first = idx;
  } else {
    nodes_[p.last].next = idx;
  }
  p.last = idx;
  p.count++;
  return idx;
}

[[gnu::always_inline]] inline uint32_t Event::child_by_key(uint32_t parent, const Key* ikey,
                                                           std::string_view key) const {
  // A name is interned always or never (the table only fills up), so an interned name is
  // compared by address and only children with arena keys can match any other.
  if (ikey != nullptr) {
    if ((nodes_[parent].key_bits & ikey->bit) == 0) {
      return kNone;   // no child has this name's bit: a new field, the common case
    }
    for (uint32_t c = nodes_[parent].first; c != kNone; c = nodes_[c].next) {
      if (nodes_[c].ikey == ikey) {
        return c;
      }
    }
    return kNone;
  }
  for (uint32_t c = nodes_[parent].first; c != kNone; c = nodes_[c].next) {
    const Node& n = nodes_[c];
    if (n.ikey == nullptr && n.key_off != kNone && this->key(n) == key) {
      return c;
    }
  }
  return kNone;
}

void Event::reset_children(uint32_t n) {
  changed();
  if (nodes_[n].shared() != nullptr) {
    nodes_[n].v.frozen = nullptr;   // a shared subtree is replaced (its reference stays held)
  }
  nodes_[n].first = kNone;
  nodes_[n].last = kNone;
  nodes_[n].count = 0;
  nodes_[n].key_bits = 0;
}

[[gnu::always_inline]] inline uint32_t Event::resolve_step(uint32_t cur, const Key* ikey,
                                                           std::string_view name, bool last,
                                                           uint32_t type, bool replace) {
  changed();
  uint32_t c = child_by_key(cur, ikey, name);
  if (last) {
    if (c == kNone) {
      return add_node(cur, ikey, name, type);
    }
    Node& n = nodes_[c];
    if (n.type != type || type == NEEDLE_NODE_STRING) {
      if ((n.type == NEEDLE_NODE_OBJECT || n.type == NEEDLE_NODE_ARRAY) && n.type != type) {
        reset_children(c);
      }
      if (n.type != type) {
        n.v.u = 0;   // a scalar's value is no container's shared subtree
      }
      n.type = type;
    }
    if (nodes_[c].shared() != nullptr) {
      if (replace) {
        reset_children(c);
      } else {
        thaw(c);   // the caller adds to it
      }
    }
    return c;
  }
  if (c == kNone) {
    return add_node(cur, ikey, name, NEEDLE_NODE_OBJECT);
  }
  if (nodes_[c].type != NEEDLE_NODE_OBJECT) {
    reset_children(c);
    nodes_[c].type = NEEDLE_NODE_OBJECT;
    nodes_[c].v.u = 0;
  }
  thaw(c);   // a path goes on below it
  return c;
}

uint32_t Event::resolve(needle_node parent, std::string_view path, uint32_t type) {
  parent = own(parent);
  if (parent >= nodes_.size() || nodes_[parent].type != NEEDLE_NODE_OBJECT) {
    return kNone;
  }
  thaw(parent);
  uint32_t cur = parent;
  while (true) {
    bool last = true;
    std::string_view part = first_part(path, last);
    cur = resolve_step(cur, intern_key(part), part, last, type, false);
    if (last) {
      return cur;
    }
    path = path.substr(part.size() + 1);
  }
}

[[gnu::always_inline]] inline uint32_t Event::resolve(needle_node parent, const Field& f,
                                                      uint32_t type, bool replace) {
  if (const uint32_t n = fresh_field(parent, f, type); n != kNone) {
    return n;   // the common write: nothing to find, thaw or replace
  }
  parent = own(parent);
  if (f.parts.empty()) {
    uint32_t n = resolve(parent, f.path, type);
    if (replace && n != kNone && nodes_[n].shared() != nullptr) {
      reset_children(n);
    }
    return n;
  }
  if (parent >= nodes_.size() || nodes_[parent].type != NEEDLE_NODE_OBJECT) {
    return kNone;
  }
  thaw(parent);
  uint32_t cur = parent;
  const size_t n = f.parts.size();
  for (size_t i = 0; i < n; ++i) {
    cur = resolve_step(cur, f.parts[i], {}, i + 1 == n, type, replace);
  }
  return cur;
}

needle_node Event::object(needle_node parent, std::string_view path) {
  return resolve(parent, path, NEEDLE_NODE_OBJECT);
}

needle_node Event::array(needle_node parent, std::string_view path) {
  return resolve(parent, path, NEEDLE_NODE_ARRAY);
}

[[gnu::always_inline]] inline void Event::store_str(uint32_t n, std::string_view value) {
  if (n == kNone) {
    return;
  }
  if (!valid_text(value)) {
    thread_local std::string clean;
    sanitize_utf8(value, clean);
    nodes_[n].v.s = {store(clean), static_cast<uint32_t>(clean.size())};
    mark(NEEDLE_MARK_LOSSY, path_of(n));
    return;
  }
  nodes_[n].v.s = {store(value), static_cast<uint32_t>(value.size())};
}

void Event::set_str(needle_node parent, std::string_view path, std::string_view value) {
  store_str(resolve(parent, path, NEEDLE_NODE_STRING), value);
}

void Event::set_str(needle_node parent, const Field& f, std::string_view value) {
  if (shares(parent) &&
      valid_text(value) &&   // an invalid one is marked lossy in this event: copied in
      write_shared(parent, &f, NEEDLE_NODE_STRING, 0, value, nullptr,
                   [&](Event& t) { t.set_str(NEEDLE_ROOT, f, value); })) {
    return;
  }
  store_str(resolve(parent, f, NEEDLE_NODE_STRING), value);
}

void Event::set_valid_str(needle_node parent, const Field& f, std::string_view value) {
  if (shares(parent) && write_shared(parent, &f, NEEDLE_NODE_STRING, 0, value, nullptr,
                   [&](Event& t) { t.set_str(NEEDLE_ROOT, f, value); })) {
    return;
  }
  uint32_t n = resolve(parent, f, NEEDLE_NODE_STRING);
  if (n != kNone) {
    nodes_[n].v.s = {store(value), static_cast<uint32_t>(value.size())};
  }
}

needle_node Event::object(needle_node parent, const Field& f) {
  return resolve(parent, f, NEEDLE_NODE_OBJECT);
}

needle_node Event::array(needle_node parent, const Field& f) {
  return resolve(parent, f, NEEDLE_NODE_ARRAY);
}

void Event::set_int(needle_node parent, const Field& f, int64_t v) {
  if (shares(parent) && write_shared(parent, &f, NEEDLE_NODE_INT, static_cast<uint64_t>(v), {},
                                     nullptr, [&](Event& t) { t.set_int(NEEDLE_ROOT, f, v); })) {
    return;
  }
  uint32_t n = resolve(parent, f, NEEDLE_NODE_INT);
  if (n != kNone) {
    nodes_[n].v.i = v;
  }
}

void Event::set_uint(needle_node parent, const Field& f, uint64_t v) {
  if (shares(parent) && write_shared(parent, &f, NEEDLE_NODE_UINT, v, {}, nullptr,
                   [&](Event& t) { t.set_uint(NEEDLE_ROOT, f, v); })) {
    return;
  }
  uint32_t n = resolve(parent, f, NEEDLE_NODE_UINT);
  if (n != kNone) {
    nodes_[n].v.u = v;
  }
}

void Event::set_bool(needle_node parent, const Field& f, bool v) {
  if (shares(parent) && write_shared(parent, &f, NEEDLE_NODE_BOOL, v ? 1u : 0u, {}, nullptr,
                   [&](Event& t) { t.set_bool(NEEDLE_ROOT, f, v); })) {
    return;
  }
  uint32_t n = resolve(parent, f, NEEDLE_NODE_BOOL);
  if (n != kNone) {
    nodes_[n].v.b = v;
  }
}

void Event::set_int(needle_node parent, std::string_view path, int64_t v) {
  uint32_t n = resolve(parent, path, NEEDLE_NODE_INT);
  if (n != kNone) {
    nodes_[n].v.i = v;
  }
}

void Event::set_uint(needle_node parent, std::string_view path, uint64_t v) {
  uint32_t n = resolve(parent, path, NEEDLE_NODE_UINT);
  if (n != kNone) {
    nodes_[n].v.u = v;
  }
}

void Event::set_double(needle_node parent, std::string_view path, double v) {
  uint32_t n = resolve(parent, path, NEEDLE_NODE_DOUBLE);
  if (n != kNone) {
    nodes_[n].v.d = v;
  }
}

void Event::set_bool(needle_node parent, std::string_view path, bool v) {
  uint32_t n = resolve(parent, path, NEEDLE_NODE_BOOL);
  if (n != kNone) {
    nodes_[n].v.b = v;
  }
}

void Event::push_str(needle_node array, std::string_view value) {
  array = own(array);
  if (array >= nodes_.size() || nodes_[array].type != NEEDLE_NODE_ARRAY) {
    return;
  }
  thaw(array);
  store_str(add_member(array, NEEDLE_NODE_STRING), value);   // lossy names the array
}

void Event::push_int(needle_node array, int64_t v) {
  array = own(array);
  if (array >= nodes_.size() || nodes_[array].type != NEEDLE_NODE_ARRAY) {
    return;
  }
  thaw(array);
  uint32_t n = add_member(array, NEEDLE_NODE_INT);
  nodes_[n].v.i = v;
}

needle_node Event::push_object(needle_node array) {
  array = own(array);
  if (array >= nodes_.size() || nodes_[array].type != NEEDLE_NODE_ARRAY) {
    return kNone;
  }
  thaw(array);
  return add_member(array, NEEDLE_NODE_OBJECT);
}

needle_node Event::find(needle_node parent, std::string_view path) const {
  parent = current(parent);
  if (foreign(parent)) {
    uint32_t local = 0;
    const Event& t = view_tree(parent, local);
    const View& v = views_[(parent - kForeign) >> kLocalBits];
    return foreign_id(v.owner, v.fz, t.find(local, path));
  }
  if (parent >= nodes_.size()) {
    return kNone;
  }
  uint32_t cur = parent;
  while (true) {
    if (nodes_[cur].type != NEEDLE_NODE_OBJECT) {
      return kNone;
    }
    if (const Frozen* fz = nodes_[cur].shared()) {
      // Below a shared subtree: read it there, without copying it in.
      return foreign_id(cur, fz, fz->tree.find(0, path));
    }
    bool last = true;
    std::string_view part = first_part(path, last);
    cur = child_by_key(cur, find_key(part), part);
    if (cur == kNone || last) {
      return cur;
    }
    path = path.substr(part.size() + 1);
  }
}

needle_node Event::find(needle_node parent, const Field& f) const {
  if (f.parts.empty()) {
    return find(parent, f.path);
  }
  parent = current(parent);
  if (foreign(parent)) {
    uint32_t local = 0;
    const Event& t = view_tree(parent, local);
    const View& v = views_[(parent - kForeign) >> kLocalBits];
    return foreign_id(v.owner, v.fz, t.find_parts(local, f.parts.data(), f.parts.size()));
  }
  return find_parts(parent, f.parts.data(), f.parts.size());
}

uint32_t Event::find_parts(uint32_t from, const Key* const* parts, size_t n) const {
  uint32_t cur = from;
  for (size_t i = 0; i < n; ++i) {
    if (cur >= nodes_.size() || nodes_[cur].type != NEEDLE_NODE_OBJECT) {
      return kNone;
    }
    if (const Frozen* fz = nodes_[cur].shared()) {
      // Below a shared subtree: read it there, without copying it in.
      return foreign_id(cur, fz, fz->tree.find_parts(0, parts + i, n - i));
    }
    cur = child_by_key(cur, parts[i], {});
    if (cur == kNone) {
      return kNone;
    }
  }
  return cur;
}

const Event* Event::copy_source(const Event& src, uint32_t& node) const {
  if (&src == this) {
    return nullptr;
  }
  node = src.current(node);   // a foreign id copied in there since names its copy
  if (foreign(node)) {
    uint32_t local = 0;
    const Event* tree = &src.view_tree(node, local);
    node = local;
    return local < tree->nodes_.size() ? tree : nullptr;
  }
  return node < src.nodes_.size() ? &src : nullptr;
}

needle_node Event::copy(needle_node parent, const Field& f, const Event& from_event,
                        needle_node src_node) {
  const Event* tree = copy_source(from_event, src_node);
  if (tree == nullptr || tree->nodes_[src_node].type == NEEDLE_NODE_NONE) {
    return kNone;
  }
  const Event& src = *tree;
  const Node& from = src.nodes_[src_node];
  const bool container = from.type == NEEDLE_NODE_OBJECT || from.type == NEEDLE_NODE_ARRAY;
  const Frozen* fz = nullptr;
  if (container) {
    fz = shared_form(src, src_node);
    // Into a shared subtree: the source's frozen form names the write.
    if (fz != nullptr && shares(parent) &&
        write_shared(parent, &f, from.type, 0, {}, fz,
                     [&](Event& t) { t.copy(NEEDLE_ROOT, f, src, src_node); })) {
      return find(parent, f);
    }
  }
  if (fz != nullptr) {
    // The common case, a template's shared subtree into a field its parent lacks (a fresh
    // event): one node that refers to the subtree, without the general resolve and reset.
    if (const uint32_t n = fresh_field(parent, f, from.type); n != kNone) {
      attach(n, fz);
      return n;
    }
  }
  uint32_t n = resolve(parent, f, from.type, true);
  if (n == kNone) {
    return kNone;
  }
  if (container) {
    reset_children(n);   // replace, do not merge
    fill_container(n, src, src_node, fz);
  } else if (from.type == NEEDLE_NODE_STRING) {
    std::string_view v = src.str(from);
    nodes_[n].v.s = {store(v), static_cast<uint32_t>(v.size())};   // valid UTF-8 already
  } else {
    nodes_[n].v = from.v;
  }
  return n;
}

const Frozen* Event::shared_form(const Event& src, uint32_t n) const {
  if (frozen_tree_) {
    return nullptr;   // a frozen tree stays flat
  }
  const Frozen* fz = src.nodes_[n].shared();
  return fz != nullptr ? fz : src.frozen_for_copy(n);
}

void Event::fill_container(uint32_t n, const Event& src, uint32_t from, const Frozen* fz) {
  if (fz != nullptr) {
    attach(n, fz);
  } else {
    copy_children(n, src, from, frozen_tree_);
  }
}

void Event::copy_children(uint32_t to, const Event& src, uint32_t from, bool flatten,
                          std::vector<uint32_t>* map) {
  if (const Frozen* fz = src.nodes_[from].shared()) {
    if (flatten) {
      copy_children(to, fz->tree, 0, true, nullptr);
    } else {
      attach(to, fz);   // shared there: shared here too
    }
    return;
  }
  for (uint32_t c = src.nodes_[from].first; c != kNone; c = src.nodes_[c].next) {
    const Node& sc = src.nodes_[c];
    if (sc.type == NEEDLE_NODE_NONE) {
      continue;
    }
    uint32_t n = add_node(to, sc.ikey, sc.ikey != nullptr ? std::string_view() : src.key(sc),
                          sc.type);
    if (map != nullptr) {
      (*map)[c] = n;
    }
    if (sc.type == NEEDLE_NODE_OBJECT || sc.type == NEEDLE_NODE_ARRAY) {
      copy_children(n, src, c, flatten, map);
    } else if (sc.type == NEEDLE_NODE_STRING) {
      std::string_view v = src.str(sc);
      nodes_[n].v.s = {store(v), static_cast<uint32_t>(v.size())};
    } else {
      nodes_[n].v = sc.v;
    }
  }
}

uint32_t Event::type_of(needle_node n) const {
  n = current(n);
  if (foreign(n)) {
    uint32_t local = 0;
    return view_tree(n, local).type_of(local);
  }
  return n < nodes_.size() ? nodes_[n].type : NEEDLE_NODE_NONE;
}

bool Event::get_str(needle_node n, std::string_view& out) const {
  n = current(n);
  if (foreign(n)) {
    uint32_t local = 0;
    return view_tree(n, local).get_str(local, out);
  }
  if (type_of(n) != NEEDLE_NODE_STRING) {
    return false;
  }
  out = str(nodes_[n]);
  return true;
}

bool Event::get_int(needle_node n, int64_t& out) const {
  n = current(n);
  if (foreign(n)) {
    uint32_t local = 0;
    return view_tree(n, local).get_int(local, out);
  }
  switch (type_of(n)) {
    case NEEDLE_NODE_INT:
      out = nodes_[n].v.i;
      return true;
    case NEEDLE_NODE_UINT:
      out = static_cast<int64_t>(nodes_[n].v.u);
      return nodes_[n].v.u <= static_cast<uint64_t>(INT64_MAX);
    default:
      return false;
  }
}

bool Event::get_uint(needle_node n, uint64_t& out) const {
  n = current(n);
  if (foreign(n)) {
    uint32_t local = 0;
    return view_tree(n, local).get_uint(local, out);
  }
  switch (type_of(n)) {
    case NEEDLE_NODE_UINT:
      out = nodes_[n].v.u;
      return true;
    case NEEDLE_NODE_INT:
      out = static_cast<uint64_t>(nodes_[n].v.i);
      return nodes_[n].v.i >= 0;
    default:
      return false;
  }
}

size_t Event::size(needle_node n) const {
  n = current(n);
  if (foreign(n)) {
    uint32_t local = 0;
    return view_tree(n, local).size(local);
  }
  uint32_t t = type_of(n);
  if (t != NEEDLE_NODE_OBJECT && t != NEEDLE_NODE_ARRAY) {
    return 0;
  }
  const Frozen* fz = nodes_[n].shared();
  return fz != nullptr ? fz->tree.nodes_[0].count : nodes_[n].count;
}

needle_node Event::child(needle_node n, size_t index) const {
  n = current(n);
  if (index >= size(n)) {
    return kNone;
  }
  if (foreign(n)) {
    uint32_t local = 0;
    const Event& t = view_tree(n, local);
    const View& v = views_[(n - kForeign) >> kLocalBits];
    return foreign_id(v.owner, v.fz, t.child(local, index));
  }
  if (const Frozen* fz = nodes_[n].shared()) {
    return foreign_id(n, fz, fz->tree.child(0, index));   // read there, not copied in
  }
  uint32_t c = nodes_[n].first;
  for (size_t i = 0; i < index && c != kNone; ++i) {
    c = nodes_[c].next;
  }
  return c;
}

void Event::remove(needle_node n) {
  n = own(n);
  if (n == 0 || n >= nodes_.size()) {
    return;
  }
  changed();
  uint32_t p = nodes_[n].parent;
  Node& parent = nodes_[p];
  uint32_t prev = kNone;
  for (uint32_t c = parent.first; c != kNone; prev = c, c = nodes_[c].next) {
    if (c != n) {
      continue;
    }
    if (prev == kNone) {
      parent.first = nodes_[c].next;
    } else {
      nodes_[prev].next = nodes_[c].next;
    }
    if (parent.last == c) {
      parent.last = prev;
    }
    parent.count--;
    nodes_[c].type = NEEDLE_NODE_NONE;
    return;
  }
}

void Event::mark(uint32_t which, std::string_view field) {
  const char* name = nullptr;
  switch (which) {
    case NEEDLE_MARK_TRUNCATED:
      name = "truncated";
      break;
    case NEEDLE_MARK_LOSSY:
      name = "lossy";
      break;
    case NEEDLE_MARK_INCOMPLETE:
      name = "incomplete";
      break;
    default:
      return;
  }
  const Key* ikey = intern_key(name);
  uint32_t arr = child_by_key(0, ikey, name);
  if (arr == kNone) {
    arr = add_node(0, ikey, name, NEEDLE_NODE_ARRAY);
  }
  for (uint32_t c = nodes_[arr].first; c != kNone; c = nodes_[c].next) {
    if (str(nodes_[c]) == field) {
      return;
    }
  }
  uint32_t n = add_member(arr, NEEDLE_NODE_STRING);
  nodes_[n].v.s = {store(field), static_cast<uint32_t>(field.size())};
}

std::string Event::path_of(needle_node n) const {
  std::string out;
  std::vector<uint32_t> chain;
  for (uint32_t c = n; c != 0 && c != kNone; c = nodes_[c].parent) {
    chain.push_back(c);
  }
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    const Node& node = nodes_[*it];
    if (nodes_[node.parent].type == NEEDLE_NODE_ARRAY) {
      continue;  // array members have no name; name the array
    }
    if (!out.empty()) {
      out.push_back('.');
    }
    out.append(key(node));
  }
  return out;
}

needle_node Event::merge(needle_node parent, const Field& f, const Event& from_event,
                         needle_node src_node) {
  const Event* tree = copy_source(from_event, src_node);
  if (tree == nullptr || tree->nodes_[src_node].type != NEEDLE_NODE_OBJECT) {
    return kNone;
  }
  const Event& src = *tree;
  const Frozen* fz = shared_form(src, src_node);
  if (fz != nullptr) {
    // Into a shared subtree: the source's frozen form names the merge.
    const uint32_t target = find(parent, f);
    if (shares(target) &&
        write_shared(target, nullptr, NEEDLE_NODE_OBJECT, 0, {}, fz,
                     [&](Event& t) { t.merge_children(NEEDLE_ROOT, src, src_node); })) {
      return target;
    }
  }
  const uint32_t n = resolve(parent, f, NEEDLE_NODE_OBJECT);   // a shared one is copied in
  if (n != kNone) {
    merge_children(n, src, src_node);
  }
  return n;
}

void Event::merge_children(uint32_t to, const Event& src, uint32_t from) {
  if (const Frozen* fz = src.nodes_[from].shared()) {
    merge_children(to, fz->tree, NEEDLE_ROOT);
    return;
  }
  for (uint32_t c = src.nodes_[from].first; c != kNone; c = src.nodes_[c].next) {
    const Node& sc = src.nodes_[c];
    if (sc.type == NEEDLE_NODE_NONE) {
      continue;
    }
    const std::string_view key = sc.ikey != nullptr ? std::string_view() : src.key(sc);
    if (child_by_key(to, sc.ikey, key) != kNone) {
      continue;   // this event's own member stays
    }
    const uint32_t n = add_node(to, sc.ikey, key, sc.type);
    if (sc.type == NEEDLE_NODE_OBJECT || sc.type == NEEDLE_NODE_ARRAY) {
      fill_container(n, src, c, shared_form(src, c));   // shared as a copy's would be
    } else if (sc.type == NEEDLE_NODE_STRING) {
      const std::string_view v = src.str(sc);
      nodes_[n].v.s = {store(v), static_cast<uint32_t>(v.size())};   // valid UTF-8 already
    } else {
      nodes_[n].v = sc.v;
    }
  }
}

uint32_t Event::locate(needle_node parent, const Field& f, const Event*& tree) const {
  tree = this;
  if (f.parts.empty()) {
    uint32_t n = current(find(parent, f.path));
    if (foreign(n)) {
      uint32_t local = 0;
      tree = &view_tree(n, local);
      return local;
    }
    return n;
  }
  uint32_t cur = current(parent);
  const Event* t = this;
  if (foreign(cur)) {
    t = &view_tree(cur, cur);
  }
  for (const Key* k : f.parts) {
    if (cur >= t->nodes_.size() || t->nodes_[cur].type != NEEDLE_NODE_OBJECT) {
      return kNone;
    }
    if (const Frozen* fz = t->nodes_[cur].shared()) {
      t = &fz->tree;   // below a shared subtree: read it there
      cur = NEEDLE_ROOT;
    }
    cur = t->child_by_key(cur, k, {});
    if (cur == kNone) {
      return kNone;
    }
  }
  tree = t;
  return cur;
}

bool Event::get_str(needle_node parent, const Field& f, std::string_view& out) const {
  const Event* t = nullptr;
  const uint32_t n = locate(parent, f, t);
  if (n == kNone || t->nodes_[n].type != NEEDLE_NODE_STRING) {
    return false;
  }
  out = t->str(t->nodes_[n]);
  return true;
}

bool Event::get_int(needle_node parent, const Field& f, int64_t& out) const {
  const Event* t = nullptr;
  const uint32_t n = locate(parent, f, t);
  return n != kNone && t->get_int(n, out);
}

bool Event::get_uint(needle_node parent, const Field& f, uint64_t& out) const {
  const Event* t = nullptr;
  const uint32_t n = locate(parent, f, t);
  return n != kNone && t->get_uint(n, out);
}

namespace {
// The fields stamp_event writes, resolved once.
struct StampFields {
  const Field& id = *make_field("id");
  const Field& time = *make_field("time");
  const Field& type = *make_field("type");
  const Field& source = *make_field("source");
  const Field& host = *make_field("host");
  const Field& host_name = *make_field("host.name");
  const Field& host_id = *make_field("host.id");
  // Each a name of the root, interned (always, short of a full key table).
  bool interned() const {
    return id.parts.size() == 1 && time.parts.size() == 1 && type.parts.size() == 1 &&
           source.parts.size() == 1 && host.parts.size() == 1;
  }
};
const StampFields& stamp_fields() {
  static const StampFields f;
  return f;
}
}  // namespace

bool Event::stamp_fresh(std::string_view id, std::string_view time, std::string_view source,
                        const Frozen* host) {
  const StampFields& f = stamp_fields();
  if (nodes_.size() != 1 || nodes_[0].first != kNone || host == nullptr || !f.interned() ||
      !valid_text(source)) {
    return false;
  }
  // The root and its five members as the general path below lays them out (and so the JSON's
  // order): id, time, type (node 3, where event_type reads it), source, host. Made once, then
  // copied in whole, where five appends would link each one.
  static const std::array<Node, 6> kLayout = [&f] {
    std::array<Node, 6> l{};
    const Field* names[] = {&f.id, &f.time, &f.type, &f.source, &f.host};
    l[0].type = NEEDLE_NODE_OBJECT;
    l[0].first = 1;
    l[0].last = 5;
    l[0].count = 5;
    for (uint32_t i = 1; i <= 5; ++i) {
      l[i].type = i == 5 ? NEEDLE_NODE_OBJECT : NEEDLE_NODE_STRING;
      l[i].parent = NEEDLE_ROOT;
      l[i].ikey = names[i - 1]->parts[0];
      l[i].next = i == 5 ? kNone : i + 1;
      l[0].key_bits |= l[i].ikey->bit;
    }
    return l;
  }();
  changed();
  // The node vector grows by doubling from here as it did from one node: powers of two. Six
  // would start a series (12, 24, 48) that gives a usual event of 25-32 nodes half again the
  // room, and the storm's thousands of events in flight 7 MiB more at the peak.
  if (nodes_.capacity() < 8) {
    nodes_.reserve(8);
  }
  nodes_.assign(kLayout.begin(), kLayout.end());
  const auto put = [this](uint32_t n, std::string_view v) {
    nodes_[n].v.s = {store(v), static_cast<uint32_t>(v.size())};
  };
  put(1, id);
  put(2, time);
  put(4, source);
  attach(5, host);
  return true;
}

void stamp_event(Event& ev, uint64_t start_ns, uint64_t seq, uint64_t boot_ns,
                 std::string_view source) {
  const StampFields& f = stamp_fields();
  // `host` is the same in every event: one subtree per thread, shared by its events and encoded
  // once (remade when the host's name changes).
  struct HostTemplate {
    HostTemplate() = default;
    HostTemplate(const HostTemplate&) = delete;
    HostTemplate& operator=(const HostTemplate&) = delete;
    ~HostTemplate() {
      if (fz != nullptr) {
        release(fz);
      }
    }
    std::string name;
    Event ev;
    uint32_t node = Event::kNone;
    const Frozen* fz = nullptr;
  };
  thread_local HostTemplate t;
  const std::string& name = host_name();
  if (t.node == Event::kNone || t.name != name) {
    t.ev.clear();
    t.name = name;
    t.ev.set_valid_str(NEEDLE_ROOT, f.host_name, name);
    t.ev.set_valid_str(NEEDLE_ROOT, f.host_id, host_id());
    t.node = t.ev.find(NEEDLE_ROOT, f.host);
    if (t.fz != nullptr) {
      release(t.fz);
    }
    t.fz = t.node != Event::kNone ? Event::freeze(t.ev, t.node) : nullptr;
  }
  char id[kEventIdMax];
  size_t n = format_event_id(start_ns, seq, id);
  char when[48];
  size_t w = format_boot_time(boot_ns, when, sizeof when);
  ev.boot_ns = boot_ns;
  // The id and time are ASCII written here; the host's name and id are made valid UTF-8 where
  // they are read or set (clock.cc).
  if (ev.stamp_fresh(std::string_view(id, n), std::string_view(when, w), source, t.fz)) {
    return;
  }
  ev.set_valid_str(NEEDLE_ROOT, f.id, std::string_view(id, n));
  ev.set_valid_str(NEEDLE_ROOT, f.time, std::string_view(when, w));
  if (ev.find(NEEDLE_ROOT, f.type) == Event::kNone) {
    ev.set_valid_str(NEEDLE_ROOT, f.type, "");   // its place, for the source's decode to fill
  }
  ev.set_str(NEEDLE_ROOT, f.source, source);
  ev.copy(NEEDLE_ROOT, f.host, t.ev, t.node);
}

std::string_view event_type(const Event& ev) {
  const StampFields& f = stamp_fields();
  // stamp_fresh appends type as node 3, where it stays while it is the root's type (a set
  // rewrites that node; a remove marks it none; the root's children are never reset): read it
  // there, without the walk along the root's children (twice per event: decode and route).
  constexpr uint32_t kStampedType = 3;
  if (ev.node_count() > kStampedType && f.interned()) {
    const Event::Node& n = ev.node(kStampedType);
    if (n.parent == NEEDLE_ROOT && n.type == NEEDLE_NODE_STRING && n.ikey == f.type.parts[0]) {
      return ev.str(n);
    }
  }
  std::string_view type;
  ev.get_str(NEEDLE_ROOT, f.type, type);
  return type;
}

}  // namespace needle::core
