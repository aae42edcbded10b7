// C++ view of an event: a tree of objects, arrays and scalars addressed by dotted paths.
// An Event wraps a needle_event the host owns; it is valid only while the slot that received it
// runs (decode, enrich) or until submit.
#ifndef NEEDLE_EVENT_H
#define NEEDLE_EVENT_H

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "needle/abi.h"

namespace needle {

/// A field path resolved once, for the hot path: make them at start-up (a plugin's constructor,
/// or function-local statics) and pass them where a path goes, e.g.
///   static const needle::Field kPid(api, "pid");  ...  proc.set(kPid, pid);
/// Setting and finding by Field skips parsing the path and looking its names up. A Field the
/// host refused (an empty path, or too many fields) falls back to its path.
class Field {
 public:
  Field(const needle_host_api* api, std::string_view path)
      : raw_(api->ev_field(path.data(), path.size())), path_(path) {}

  needle_field raw() const { return raw_; }
  std::string_view path() const { return path_; }

 private:
  needle_field raw_;
  std::string path_;
};

class Event {
 public:
  Event(const needle_host_api* api, needle_event* ev, needle_node node = NEEDLE_ROOT)
      : api_(api), ev_(ev), node_(node) {}

  needle_event* raw() const { return ev_; }
  needle_node node() const { return node_; }
  bool valid() const { return node_ != NEEDLE_NO_NODE; }

  /// A nested object (created when missing), e.g. ev.object("process").
  Event object(std::string_view path) {
    return Event(api_, ev_, api_->ev_object(ev_, node_, path.data(), path.size()));
  }
  Event array(std::string_view path) {
    return Event(api_, ev_, api_->ev_array(ev_, node_, path.data(), path.size()));
  }

  void set(std::string_view path, std::string_view v) {
    api_->ev_set_str(ev_, node_, path.data(), path.size(), v.data(), v.size());
  }
  void set(std::string_view path, const char* v) { set(path, std::string_view(v)); }
  void set(std::string_view path, bool v) {
    api_->ev_set_bool(ev_, node_, path.data(), path.size(), v ? 1 : 0);
  }
  void set(std::string_view path, double v) {
    api_->ev_set_double(ev_, node_, path.data(), path.size(), v);
  }
  /// Any integer type: signed ones are stored as int, unsigned ones as uint.
  template <typename T,
            std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  void set(std::string_view path, T v) {
    if constexpr (std::is_signed_v<T>) {
      api_->ev_set_int(ev_, node_, path.data(), path.size(), static_cast<int64_t>(v));
    } else {
      api_->ev_set_uint(ev_, node_, path.data(), path.size(), static_cast<uint64_t>(v));
    }
  }

  // The same by Field (see above).
  Event object(const Field& f) {
    return f.raw() ? Event(api_, ev_, api_->ev_object_f(ev_, node_, f.raw())) : object(f.path());
  }
  Event array(const Field& f) {
    return f.raw() ? Event(api_, ev_, api_->ev_array_f(ev_, node_, f.raw())) : array(f.path());
  }
  void set(const Field& f, std::string_view v) {
    if (f.raw()) {
      api_->ev_set_str_f(ev_, node_, f.raw(), v.data(), v.size());
    } else {
      set(f.path(), v);
    }
  }
  void set(const Field& f, const char* v) { set(f, std::string_view(v)); }
  void set(const Field& f, bool v) {
    if (f.raw()) {
      api_->ev_set_bool_f(ev_, node_, f.raw(), v ? 1 : 0);
    } else {
      set(f.path(), v);
    }
  }
  template <typename T,
            std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  void set(const Field& f, T v) {
    if (!f.raw()) {
      set(f.path(), v);
    } else if constexpr (std::is_signed_v<T>) {
      api_->ev_set_int_f(ev_, node_, f.raw(), static_cast<int64_t>(v));
    } else {
      api_->ev_set_uint_f(ev_, node_, f.raw(), static_cast<uint64_t>(v));
    }
  }
  Event find(const Field& f) const {
    return f.raw() ? Event(api_, ev_, api_->ev_find_f(ev_, node_, f.raw())) : find(f.path());
  }
  /// Sets `f` to a copy of `src` (a node of another event, such as a template kept from
  /// Host::event_new and never submitted); the copy. Cheaper than setting the fields again; from
  /// the second copy of an unchanged template the host may share one subtree among the events
  /// (nothing a plugin sees differs).
  Event copy(const Field& f, const Event& src) {
    if (!f.raw() || !src.valid()) {
      return Event(api_, ev_, NEEDLE_NO_NODE);
    }
    return Event(api_, ev_, api_->ev_copy_f(ev_, node_, f.raw(), src.ev_, src.node_));
  }
  /// Adds to the object `f` (made when missing) a copy of each member of `src` (an object of
  /// another event, such as a template) that it lacks; members it has are kept. One call for a
  /// find and a set per member; the host may share the result among events when the same merge
  /// from the same unchanged template repeats (nothing a plugin sees differs). ABI 1.3.
  Event merge(const Field& f, const Event& src) {
    if (!f.raw() || !src.valid()) {
      return Event(api_, ev_, NEEDLE_NO_NODE);
    }
    return Event(api_, ev_, api_->ev_merge_f(ev_, node_, f.raw(), src.ev_, src.node_));
  }
  /// find(f) and its value in one call (ABI 1.3): nullopt when missing or of another type.
  std::optional<std::string_view> get_str(const Field& f) const {
    const char* s = nullptr;
    size_t n = 0;
    if (!f.raw()) {
      return find(f.path()).str();
    }
    return api_->ev_get_str_f(ev_, node_, f.raw(), &s, &n) == NEEDLE_OK
               ? std::optional(std::string_view(s, n))
               : std::nullopt;
  }
  std::optional<uint64_t> get_uint(const Field& f) const {
    uint64_t v = 0;
    return !f.raw() ? find(f.path()).uint_value()
           : api_->ev_get_uint_f(ev_, node_, f.raw(), &v) == NEEDLE_OK ? std::optional(v)
                                                                         : std::nullopt;
  }
  std::optional<int64_t> get_int(const Field& f) const {
    int64_t v = 0;
    return !f.raw() ? find(f.path()).int_value()
           : api_->ev_get_int_f(ev_, node_, f.raw(), &v) == NEEDLE_OK ? std::optional(v)
                                                                        : std::nullopt;
  }

  /// Array members (this must be an array node).
  void push(std::string_view v) { api_->ev_push_str(ev_, node_, v.data(), v.size()); }
  void push(int64_t v) { api_->ev_push_int(ev_, node_, v); }
  Event push_object() { return Event(api_, ev_, api_->ev_push_object(ev_, node_)); }

  Event find(std::string_view path) const {
    return Event(api_, ev_, api_->ev_find(ev_, node_, path.data(), path.size()));
  }
  uint32_t type() const { return valid() ? api_->ev_type_of(ev_, node_) : NEEDLE_NODE_NONE; }
  std::optional<std::string_view> str() const {
    const char* s = nullptr;
    size_t n = 0;
    if (!valid() || api_->ev_get_str(ev_, node_, &s, &n) != NEEDLE_OK) {
      return std::nullopt;
    }
    return std::string_view(s, n);
  }
  std::optional<int64_t> int_value() const {
    int64_t v = 0;
    if (!valid() || api_->ev_get_int(ev_, node_, &v) != NEEDLE_OK) {
      return std::nullopt;
    }
    return v;
  }
  std::optional<uint64_t> uint_value() const {
    uint64_t v = 0;
    if (!valid() || api_->ev_get_uint(ev_, node_, &v) != NEEDLE_OK) {
      return std::nullopt;
    }
    return v;
  }
  std::optional<std::string_view> get_str(std::string_view path) const { return find(path).str(); }
  std::optional<uint64_t> get_uint(std::string_view path) const {
    return find(path).uint_value();
  }
  std::optional<int64_t> get_int(std::string_view path) const { return find(path).int_value(); }
  size_t size() const { return valid() ? api_->ev_size(ev_, node_) : 0; }
  Event child(size_t i) const { return Event(api_, ev_, api_->ev_child(ev_, node_, i)); }
  void remove() {
    if (valid()) {
      api_->ev_remove(ev_, node_);
    }
  }

  /// Lists a dotted field name under `truncated`, `lossy` or `incomplete`.
  void mark(uint32_t which, std::string_view field) {
    api_->ev_mark(ev_, which, field.data(), field.size());
  }
  void mark_truncated(std::string_view field) { mark(NEEDLE_MARK_TRUNCATED, field); }
  void mark_incomplete(std::string_view field) { mark(NEEDLE_MARK_INCOMPLETE, field); }

 private:
  const needle_host_api* api_;
  needle_event* ev_;
  needle_node node_;
};

/// An event kept as a template: taken from the host (event_new), never submitted, given back
/// (event_discard) when it is reset, replaced or destroyed. Build a subtree into view() once
/// and copy it into events with Event::copy; keep it unchanged while it is in use. Empty (false)
/// when default-made or when the host gives no events.
class TemplateEvent {
 public:
  TemplateEvent() = default;
  TemplateEvent(const needle_host_api* api, needle_host* host)
      : api_(api), host_(host), ev_(api->event_new(host, 0)) {}
  ~TemplateEvent() { reset(); }
  TemplateEvent(TemplateEvent&& o) noexcept
      : api_(o.api_), host_(o.host_), ev_(std::exchange(o.ev_, nullptr)), found_(o.found_),
        found_n_(std::exchange(o.found_n_, 0)) {}
  TemplateEvent& operator=(TemplateEvent&& o) noexcept {
    if (this != &o) {
      reset();
      api_ = o.api_;
      host_ = o.host_;
      ev_ = std::exchange(o.ev_, nullptr);
      found_ = o.found_;
      found_n_ = std::exchange(o.found_n_, 0);
    }
    return *this;
  }
  TemplateEvent(const TemplateEvent&) = delete;
  TemplateEvent& operator=(const TemplateEvent&) = delete;

  explicit operator bool() const { return ev_ != nullptr; }
  Event view() const { return Event(api_, ev_); }
  /// view().find(f), looked up once and remembered (a few fields): for a template that is
  /// filled first and then only copied from, as the copy source of every event.
  Event find(const Field& f) const {
    for (size_t i = 0; i < found_n_; ++i) {
      if (found_[i].field == f.raw()) {
        return Event(api_, ev_, found_[i].node);
      }
    }
    Event e = view().find(f);
    if (f.raw() != nullptr && found_n_ < found_.size()) {
      found_[found_n_++] = Found{f.raw(), e.node()};
    }
    return e;
  }
  void reset() {
    found_n_ = 0;
    if (ev_ != nullptr) {
      api_->event_discard(host_, ev_);
      ev_ = nullptr;
    }
  }

 private:
  struct Found {
    needle_field field;
    needle_node node;
  };
  const needle_host_api* api_ = nullptr;
  needle_host* host_ = nullptr;
  needle_event* ev_ = nullptr;
  mutable std::array<Found, 4> found_{};
  mutable size_t found_n_ = 0;
};

}  // namespace needle

#endif  // NEEDLE_EVENT_H
