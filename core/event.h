// The core's event: a small tree (objects, arrays, scalars) in two reusable vectors, so that a
// pooled Event allocates nothing once warm. Plugins reach it only through the host API
// (host_api.cc); this header is core-private.
#ifndef NEEDLE_CORE_EVENT_H
#define NEEDLE_CORE_EVENT_H

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "needle/abi.h"

namespace needle::core {

/// A field name shared by every event: the schema's keys recur in each event, so each is stored
/// once, with its JSON (`"name":`) and msgpack forms ready for the encoders. Interned keys live
/// until the process exits and are compared by address.
struct Key {
  std::string name;
  std::string json;      // "name": escaped, with the colon
  std::string msgpack;   // str header + bytes
  // json again, zero-padded, when it fits in 32 bytes (json_short 1): the encoder copies all 32
  // bytes with two vector moves, where a memcpy of json's exact length is a library call.
  alignas(16) char json32[32] = {};
  bool json_short = false;
  // One of 32 bits, by the order keys were interned: an object keeps the union of its
  // children's bits, so a name whose bit is missing is known absent without a scan.
  uint32_t bit = 0;
};

/// The interned key for `name`, adding it when new; nullptr when it is not interned (longer
/// than kMaxInternedKey, or the table already holds kMaxKeys: keys made from data, such as
/// label names, must not grow it without bound). Safe from any thread.
const Key* intern_key(std::string_view name);
/// The interned key for `name` if there is one (never adds).
const Key* find_key(std::string_view name);
inline constexpr size_t kMaxInternedKey = 64;
inline constexpr size_t kMaxKeys = 4096;

/// A dotted path resolved once into its interned names (the ABI's needle_field): setting or
/// finding a field by it skips parsing the path and looking the names up. Lives as long as the
/// process.
struct Field {
  std::string path;
  std::vector<const Key*> parts;   // one per component; empty when one is not interned
};

/// The field for `path`, the same one for the same path; nullptr for an empty path or when the
/// registry already holds kMaxFields (fields are meant to be made once, at start-up; callers fall
/// back to the path). Safe from any thread.
const Field* make_field(std::string_view path);
inline constexpr size_t kMaxFields = 16384;

struct Frozen;

class Event {
 public:
  static constexpr uint32_t kNone = NEEDLE_NO_NODE;

  Event() { clear(); }
  ~Event();
  Event(const Event&) = delete;   // it holds references to shared subtrees
  Event& operator=(const Event&) = delete;

  /// Empties the event, keeping capacity.
  void clear();

  // Metadata the core keeps beside the tree.
  uint64_t boot_ns = 0;
  uint32_t source_index = 0;   // which source instance produced it (pipeline routing)
  uint64_t cgroup_id = 0;      // for parking: events of one cgroup stay in order
  uint64_t seq = 0;

  needle_node object(needle_node parent, std::string_view path);
  needle_node array(needle_node parent, std::string_view path);
  void set_str(needle_node parent, std::string_view path, std::string_view value);
  void set_int(needle_node parent, std::string_view path, int64_t v);
  void set_uint(needle_node parent, std::string_view path, uint64_t v);
  void set_double(needle_node parent, std::string_view path, double v);
  void set_bool(needle_node parent, std::string_view path, bool v);
  void push_str(needle_node array, std::string_view value);
  void push_int(needle_node array, int64_t v);
  needle_node push_object(needle_node array);

  needle_node find(needle_node parent, std::string_view path) const;

  // The same by field: no parsing, no name lookup.
  needle_node object(needle_node parent, const Field& f);
  needle_node array(needle_node parent, const Field& f);
  void set_str(needle_node parent, const Field& f, std::string_view value);
  void set_int(needle_node parent, const Field& f, int64_t v);
  void set_uint(needle_node parent, const Field& f, uint64_t v);
  void set_bool(needle_node parent, const Field& f, bool v);
  /// set_str for a value known to be valid UTF-8 (the core's own: ids, times, host names
  /// checked once): skips the check.
  void set_valid_str(needle_node parent, const Field& f, std::string_view value);
  needle_node find(needle_node parent, const Field& f) const;
  /// Sets `f` under `parent` to a copy of `src`'s node `src_node` (replacing what was there);
  /// the copy's node, or kNone. `src` must be another event. An object or array copied a
  /// second time from an unchanged `src` is shared instead of copied: both events refer to one
  /// frozen subtree, encoded once (see Frozen).
  needle_node copy(needle_node parent, const Field& f, const Event& src, needle_node src_node);
  /// Adds under `f` (an object, made when missing or of another type) each member of `src`'s
  /// object `src_node` that it lacks by name (members it has are kept); the object's node, or
  /// kNone. `src` must be another event. A merge into a shared subtree made again from the same
  /// unchanged `src` is shared too (Frozen::Transition), as a repeated write is.
  needle_node merge(needle_node parent, const Field& f, const Event& src, needle_node src_node);
  /// find(parent, f) and get_* of its node in one step: reads below a shared subtree are made
  /// there, without a foreign id. False when there is no such field or it has another type.
  bool get_str(needle_node parent, const Field& f, std::string_view& out) const;
  bool get_int(needle_node parent, const Field& f, int64_t& out) const;
  bool get_uint(needle_node parent, const Field& f, uint64_t& out) const;

  uint32_t type_of(needle_node n) const;
  bool get_str(needle_node n, std::string_view& out) const;
  bool get_int(needle_node n, int64_t& out) const;
  bool get_uint(needle_node n, uint64_t& out) const;
  size_t size(needle_node n) const;
  needle_node child(needle_node n, size_t index) const;
  void remove(needle_node n);
  /// Adds `field` to the array `truncated`, `lossy` or `incomplete` (once).
  void mark(uint32_t which, std::string_view field);

  /// Dotted name of a node ("process.args").
  std::string path_of(needle_node n) const;

  // Read access for the encoders.
  struct Node {
    uint32_t type = NEEDLE_NODE_NONE;
    uint32_t parent = kNone;
    uint32_t first = kNone;    // first child
    uint32_t last = kNone;     // last child
    uint32_t next = kNone;     // next sibling
    uint32_t count = 0;        // children
    const Key* ikey = nullptr; // the key when interned (almost always)
    // Else its length (4 bytes) and bytes in the arena; kNone for array members.
    uint32_t key_off = kNone;
    uint32_t key_bits = 0;     // the bits of the children's interned keys (Key::bit)
    union {
      int64_t i;
      uint64_t u;
      double d;
      struct {
        uint32_t off;
        uint32_t len;
      } s;
      bool b;
      // An object or array shared with other events: its children are frozen->tree's root's,
      // not in this event (first, last and count stay empty; reads below it go there through
      // views_) until a write below it copies them in (thaw). Null for a container of this
      // event's own.
      const Frozen* frozen;
    } v{};
    const Frozen* shared() const {
      return type == NEEDLE_NODE_OBJECT || type == NEEDLE_NODE_ARRAY ? v.frozen : nullptr;
    }
  };
  static_assert(sizeof(Node) == 48, "a node's size is paid by every field of every event");
  const Node& node(uint32_t i) const { return nodes_[i]; }
  size_t node_count() const { return nodes_.size(); }
  std::string_view key(const Node& n) const {
    if (n.ikey != nullptr) {
      return n.ikey->name;
    }
    if (n.key_off == kNone) {
      return {};
    }
    uint32_t len = 0;
    std::memcpy(&len, arena_.data() + n.key_off, sizeof len);
    return {arena_.data() + n.key_off + sizeof len, len};
  }
  std::string_view str(const Node& n) const { return {arena_.data() + n.v.s.off, n.v.s.len}; }

  /// The event's bytes (keys that are not interned, string values): one buffer that only grows
  /// and is reused, with the append inline (a std::string's append is a library call).
  class Arena {
   public:
    const char* data() const { return data_.get(); }
    size_t size() const { return size_; }
    void clear() { size_ = 0; }
    uint32_t append(std::string_view s) {
      if (s.size() > cap_ - size_) {
        grow(s.size());
      }
      auto off = static_cast<uint32_t>(size_);
      if (!s.empty()) {
        std::memcpy(data_.get() + size_, s.data(), s.size());
      }
      size_ += s.size();
      return off;
    }

   private:
    void grow(size_t n);
    std::unique_ptr<char[]> data_;
    size_t size_ = 0;
    size_t cap_ = 0;
  };

 private:
  /// Appends a child; `ikey` is `key` interned, or nullptr to keep `key` in the arena.
  uint32_t add_node(uint32_t parent, const Key* ikey, std::string_view key, uint32_t type);
  uint32_t add_member(uint32_t array, uint32_t type) { return add_node(array, nullptr, {}, type); }
  /// The child of `parent` named `key` (`ikey`, its interned form, or nullptr when none).
  uint32_t child_by_key(uint32_t parent, const Key* ikey, std::string_view key) const;
  /// Walks `path`, creating objects for all but the last component, and returns the node for
  /// the last one (created with `type` when missing; reset to `type` when present).
  uint32_t resolve(needle_node parent, std::string_view path, uint32_t type);
  /// `replace`: the caller replaces the last node's children (a shared subtree there is
  /// dropped, not copied in first).
  uint32_t resolve(needle_node parent, const Field& f, uint32_t type, bool replace = false);
  /// One component of a resolve: the child `ikey`/`name` of `cur`, made or retyped as needed
  /// (`type` when it is the last component, an object on the way).
  uint32_t resolve_step(uint32_t cur, const Key* ikey, std::string_view name, bool last,
                        uint32_t type, bool replace);
  void store_str(uint32_t n, std::string_view value);
  /// The common write, a field `f` of one interned name new to `parent`, an object of this
  /// event's own (not shared): the node appended for it, with none of the checks the general
  /// resolve makes; kNone when the write needs them. resolve(Field) and copy() try it first.
  uint32_t fresh_field(needle_node parent, const Field& f, uint32_t type) {
    if (f.parts.size() != 1 || parent >= nodes_.size()) {
      return kNone;   // a path, a foreign id (above any own node) or none
    }
    const Node& p = nodes_[parent];
    if (p.type != NEEDLE_NODE_OBJECT || p.v.frozen != nullptr ||
        (p.key_bits & f.parts[0]->bit) != 0) {
      return kNone;
    }
    return add_node(parent, f.parts[0], {}, type);
  }
  /// Appends copies of `src`'s children of `from` under `to` (their keys, values, subtrees).
  /// A subtree shared in `src` is shared here too, unless `flatten` (its nodes are copied).
  /// With `map`, records which node each of `src`'s became (map[src node] = node here).
  void copy_children(uint32_t to, const Event& src, uint32_t from, bool flatten = false,
                     std::vector<uint32_t>* map = nullptr);
  uint32_t store(std::string_view s);
  void reset_children(uint32_t n);
  /// Makes the shared node `n` this event's own (before a write below it): copies the frozen
  /// children in.
  void thaw(uint32_t n) {
    if (nodes_[n].shared() != nullptr) {
      thaw_frozen(n);
    }
  }
  void thaw_frozen(uint32_t n);
  /// `n` refers to `fz` (one more reference, released by clear()).
  void attach(uint32_t n, const Frozen* fz);
  /// The frozen form of this event's node `n` for a copy into another event: nullptr on the
  /// first copy since the last change (a one-off copy is cheaper than freezing), made on the
  /// second and reused while this event stays unchanged.
  const Frozen* frozen_for_copy(uint32_t n) const;
  /// Called by every change: the frozen forms of the old content no longer match it.
  void changed() {
    if (!copies_.empty()) {
      drop_copies();
    }
  }
  void drop_copies() const;
  void release_held();
  /// A write of `f` under `parent` when `parent` shares a subtree: the subtree that results,
  /// shared in its place, when the same write was made to the same subtree before (see
  /// Frozen::Transition); false to copy it in and write as usual. `apply` makes the write on a
  /// copy when the result is first made.
  template <typename Apply>
  bool write_shared(uint32_t parent, const Field* f, uint32_t type, uint64_t bits,
                    std::string_view str, const Frozen* src, Apply apply);
  /// A new subtree: the root type and flattened content of `from`'s node `n`, encoded.
  static Frozen* freeze(const Event& from, uint32_t n);
  /// stamp_event's fields straight into a fresh event (no field yet): each one node appended,
  /// without the lookups and checks of a set; false (nothing done) when not fresh or a field's
  /// name is not interned.
  bool stamp_fresh(std::string_view id, std::string_view time, std::string_view source,
                   const Frozen* host);
  friend void stamp_event(Event& ev, uint64_t start_ns, uint64_t seq, uint64_t boot_ns,
                          std::string_view source);

  // Reads below a shared subtree do not copy it in: find and child return ids of its nodes
  // ("foreign" ids: kForeign | view << kLocalBits | node in the frozen tree), read through
  // views_. A write through a foreign id copies the subtree in first (own()).
  static constexpr uint32_t kForeign = 0x40000000;
  static constexpr uint32_t kLocalBits = 18;
  static constexpr uint32_t kMaxViews = (0x80000000u - kForeign) >> kLocalBits;
  struct View {
    const Frozen* fz;
    uint32_t owner;                   // this event's node that shared fz
    std::vector<uint32_t> map;        // after the owner's thaw: frozen node -> own node
  };
  static bool foreign(uint32_t id) { return id != kNone && id >= kForeign; }
  /// The id of node `local` of `fz->tree`, seen below this event's node `owner`; kNone when
  /// ids run out.
  uint32_t foreign_id(uint32_t owner, const Frozen* fz, uint32_t local) const;
  /// A foreign id whose subtree was copied in since: the id of its copy (reads follow it).
  uint32_t current(uint32_t id) const { return foreign(id) ? current_foreign(id) : id; }
  uint32_t current_foreign(uint32_t id) const;
  /// Whether `parent` is a node of this event that shares a subtree (write_shared may apply).
  bool shares(uint32_t parent) const {
    return parent < nodes_.size() && nodes_[parent].shared() != nullptr;
  }
  /// The frozen tree and node a foreign id names.
  const Event& view_tree(uint32_t id, uint32_t& local) const;
  /// A foreign id turned into this event's own node (the subtree copied in); own ids as they
  /// are; kNone when the subtree it named has been replaced since.
  uint32_t own(uint32_t id);
  /// The node `f` names under `parent` and the tree it lives in (`tree`: this event, or the
  /// frozen tree of a shared subtree it is below); kNone when none.
  uint32_t locate(needle_node parent, const Field& f, const Event*& tree) const;
  /// The tree and node a copy or merge reads: `src` and `node`, or the frozen tree and its node
  /// that a foreign id of `src` names (`node` updated); nullptr when `src` is this event or the
  /// node does not exist.
  const Event* copy_source(const Event& src, uint32_t& node) const;
  /// The frozen form by which `src`'s container `n` is shared when copied here: its own shared
  /// subtree, or one made from its second copy on (frozen_for_copy); nullptr into a frozen tree
  /// (flat) or on a first copy.
  const Frozen* shared_form(const Event& src, uint32_t n) const;
  /// The container `n` made `src`'s `from`: shared (`fz`, from shared_form) or copied.
  void fill_container(uint32_t n, const Event& src, uint32_t from, const Frozen* fz);
  /// Appends under `to` copies of the children of `src`'s object `from` whose names `to` lacks.
  void merge_children(uint32_t to, const Event& src, uint32_t from);
  /// find below this event's node `from` of the parts of a field: read through shared subtrees.
  uint32_t find_parts(uint32_t from, const Key* const* parts, size_t n) const;

  std::vector<Node> nodes_;
  Arena arena_;
  std::vector<const Frozen*> held_;   // one reference each, released by clear()
  struct CopySource {
    uint32_t node;
    const Frozen* frozen;   // nullptr after the first copy; then one reference
  };
  mutable std::vector<CopySource> copies_;
  mutable std::vector<View> views_;
  bool frozen_tree_ = false;   // a Frozen's tree: never frozen from, never thawed (it is flat)
};

/// A subtree shared by several events (Event::copy): immutable once made, with its JSON and
/// msgpack forms encoded once; freed with its last reference. Safe to share across threads.
struct Frozen {
  Frozen() = default;
  ~Frozen();
  Frozen(const Frozen&) = delete;
  Frozen& operator=(const Frozen&) = delete;

  Event tree;             // the subtree's children under the root (an object or an array)
  std::string json;       // the root's value as JSON
  mutable std::atomic<uint32_t> refs{1};

  /// The root's value as msgpack, made on its first use by whichever thread encodes an event
  /// that shares it: most hosts' sinks all want JSON, and a process's templates are made anew
  /// at each exec, fork and exit.
  const std::string& msgpack() const {
    if (!msgpack_ready_.load(std::memory_order_acquire)) {
      make_msgpack();
    }
    return msgpack_;
  }

  // Writes made to this subtree in events that share it, and the subtree each gives: a write
  // made a second time (the same field, the same value) is answered with the same result,
  // shared too, instead of a copy into the event. A few per subtree (most have none, many one
  // or two), in chunks of two made as needed and never moved: an entry is filled under `mu`
  // and then published by its chunk's `count` (a new chunk by the previous one's `next`), both
  // release stores, after which only `seen` (under `mu`) and `result` (set once, release)
  // change. So the common case, a write whose result exists, is answered without the lock
  // (every event of a process makes such a write once per merge).
  struct Transition {
    const Field* field = nullptr;   // nullptr: a merge (Event::merge) of `src` into the subtree
    const Frozen* src = nullptr;    // a copy's source subtree
    uint64_t bits = 0;              // a scalar's value
    std::string str;                // a string's value
    uint32_t type = 0;              // the node type written
    uint32_t seen = 0;
    std::atomic<const Frozen*> result{nullptr};   // one reference, once made
  };
  static constexpr size_t kTransitionsPerChunk = 2;
  static constexpr size_t kMaxTransitionChunks = 4;   // 8 transitions at most
  struct Transitions {
    std::array<Transition, kTransitionsPerChunk> entries;
    std::atomic<uint32_t> count{0};
    std::atomic<Transitions*> next{nullptr};   // owned
  };
  mutable std::mutex mu;   // guards the transitions' appends and the msgpack form's making
  mutable std::atomic<Transitions*> transitions{nullptr};   // owned, made under mu

 private:
  void make_msgpack() const;   // under mu, once
  mutable std::string msgpack_;
  mutable std::atomic<bool> msgpack_ready_{false};
};
/// Drops one reference to `fz`, freeing it with the last.
void release(const Frozen* fz);

/// The fields every event has: id (from needle's start time and the event's sequence number),
/// time, type (empty, unless the event has one: its place for a decode to fill), source,
/// host.name and host.id. Sets ev.boot_ns.
void stamp_event(Event& ev, uint64_t start_ns, uint64_t seq, uint64_t boot_ns,
                 std::string_view source);

/// The event's `type` ("" when it has none), looked up by its interned field.
std::string_view event_type(const Event& ev);

/// Replaces invalid UTF-8 in `in` with U+FFFD into `out`; returns false when anything was replaced.
bool sanitize_utf8(std::string_view in, std::string& out);
/// True when `s` is valid UTF-8.
bool valid_utf8(std::string_view s);

}  // namespace needle::core

#endif  // NEEDLE_CORE_EVENT_H
