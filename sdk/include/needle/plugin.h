// The C++ layer over the plugin ABI: derive from Source, Enricher or Sink, declare your keys and
// export with one NEEDLE_PLUGIN line. The trampolines below make sure no exception crosses the
// ABI: an exception becomes NEEDLE_ERROR (or NEEDLE_INVALID for ConfigError) and the instance's
// last error.
//
//   class MySink : public needle::Sink {
//    public:
//     MySink(needle::Host host, const needle::Config& cfg);          // may throw ConfigError
//     needle_rc write(std::span<const std::string_view> items) override;
//   };
//   static constexpr needle_config_key kKeys[] = {needle::key_required(NEEDLE_CFG_PATH, "path",
//                                                  "where to write")};
//   NEEDLE_PLUGIN(NEEDLE_KIND_SINK, MySink, "mysink", "0.1.0", "Writes events", "alpha", kKeys)
#ifndef NEEDLE_PLUGIN_H
#define NEEDLE_PLUGIN_H

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "needle/abi.h"
#include "needle/config.h"
#include "needle/event.h"
#include "needle/result.h"

namespace needle {

/// The host as one plugin instance sees it. Cheap to copy.
class Host {
 public:
  Host(const needle_host_api* api, needle_host* host) : api_(api), host_(host) {}
  const needle_host_api* api() const { return api_; }
  needle_host* raw() const { return host_; }

  void log(int32_t level, std::string_view msg) const {
    api_->log(host_, level, msg.data(), msg.size());
  }
  void info(std::string_view msg) const { log(NEEDLE_LOG_INFO, msg); }
  void warn(std::string_view msg) const { log(NEEDLE_LOG_WARN, msg); }
  void error(std::string_view msg) const { log(NEEDLE_LOG_ERROR, msg); }
  void debug(std::string_view msg) const { log(NEEDLE_LOG_DEBUG, msg); }
  void set_error(std::string_view msg, const char* key = nullptr) const {
    api_->set_error(host_, key, msg.data(), msg.size());
  }
  uint32_t counter(const char* name, const char* help) const {
    return api_->counter_register(host_, name, help);
  }
  void add(uint32_t counter, uint64_t delta = 1) const { api_->counter_add(host_, counter, delta); }
  uint64_t now_boot_ns() const { return api_->now_boot_ns(); }
  std::string_view host_id() const { return api_->host_id(); }
  std::string state_dir() const { return api_->state_dir(host_); }

 private:
  const needle_host_api* api_;
  needle_host* host_;
};

/// A source's BPF object during configure (before load) and after load.
class Bpf {
 public:
  Bpf(const needle_host_api* api, needle_bpf* bpf) : api_(api), bpf_(bpf) {}
  template <typename T>
  Result<void> set_global(const char* name, const T& value) {
    if (api_->bpf_set_global(bpf_, name, &value, sizeof value) != NEEDLE_OK) {
      return make_error(std::string("cannot set BPF global ") + name);
    }
    return {};
  }
  Result<void> update(const char* map, const void* key, size_t klen, const void* val,
                      size_t vlen) {
    if (api_->bpf_map_update(bpf_, map, key, klen, val, vlen) != NEEDLE_OK) {
      return make_error(std::string("cannot update BPF map ") + map);
    }
    return {};
  }
  int map_fd(const char* map) { return api_->bpf_map_fd(bpf_, map); }

 private:
  const needle_host_api* api_;
  needle_bpf* bpf_;
};

class Plugin {
 public:
  explicit Plugin(Host host) : host_(host) {}
  virtual ~Plugin() = default;
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;

  /// Called once after every BPF object is attached. Default: nothing.
  virtual Result<void> start() { return {}; }
  /// Bounded: must return within the host's shutdown timeout. Default: nothing.
  virtual void stop() {}
  /// `needle check --connect`: dial what the instance would use. Default: nothing to dial.
  virtual Result<void> check_connect() { return {}; }

  Host& host() { return host_; }
  const needle_host_api* api() const { return host_.api(); }

 private:
  Host host_;
};

class Source : public Plugin {
 public:
  using Plugin::Plugin;
  /// The kernel side; a source without one returns an empty spec (object == nullptr).
  virtual needle_bpf_spec bpf_spec() { return needle_bpf_spec{sizeof(needle_bpf_spec), 0, nullptr,
                                                              0, nullptr, 0}; }
  virtual Result<void> bpf_configure(Bpf&) { return {}; }
  virtual Result<void> bpf_loaded(Bpf&) { return {}; }
  /// Ring thread. `raw` is valid only during the call. NEEDLE_OK emits `ev`, NEEDLE_SKIP drops
  /// it silently, NEEDLE_ERROR counts a decode gap.
  virtual needle_rc decode(std::span<const std::byte> raw, Event& ev) = 0;
};

class Enricher : public Plugin {
 public:
  using Plugin::Plugin;
  /// Pipeline thread. NEEDLE_OK when done; NEEDLE_PENDING with `deadline_ns` to be parked.
  virtual needle_rc enrich(Event& ev, uint64_t& deadline_ns) = 0;
};

class Sink : public Plugin {
 public:
  using Plugin::Plugin;
  /// Sink thread. Each item is one encoded event. NEEDLE_OK acks the batch, NEEDLE_RETRY asks
  /// for it again later.
  virtual needle_rc write(std::span<const std::string_view> items) = 0;
  virtual needle_rc flush() { return NEEDLE_OK; }
  /// Any thread: reopen files (SIGHUP).
  virtual void reopen() {}
};

namespace detail {

template <typename F>
needle_rc guard(Plugin* self, F&& f) {
  try {
    return f();
  } catch (const ConfigError& e) {
    self->host().set_error(e.what(), e.key().c_str());
    return NEEDLE_INVALID;
  } catch (const std::exception& e) {
    self->host().set_error(e.what());
    return NEEDLE_ERROR;
  } catch (...) {
    self->host().set_error("unknown exception");
    return NEEDLE_ERROR;
  }
}

inline needle_rc from_result(Plugin* self, const Result<void>& r) {
  if (r.ok()) {
    return NEEDLE_OK;
  }
  self->host().set_error(r.error().message,
                         r.error().key.empty() ? nullptr : r.error().key.c_str());
  return r.error().key.empty() ? NEEDLE_ERROR : NEEDLE_INVALID;
}

template <typename T>
T* self_of(needle_plugin* p) {
  return reinterpret_cast<T*>(p);
}

template <typename T>
struct Trampolines {
  static needle_rc create(const needle_host_api* api, needle_host* host, const needle_config* cfg,
                          needle_plugin** out) {
    Host h(api, host);
    try {
      Config c(api, cfg);
      T* p = new T(h, c);
      *out = reinterpret_cast<needle_plugin*>(p);
      return NEEDLE_OK;
    } catch (const ConfigError& e) {
      h.set_error(e.what(), e.key().c_str());
      return NEEDLE_INVALID;
    } catch (const std::exception& e) {
      h.set_error(e.what());
      return NEEDLE_ERROR;
    } catch (...) {
      h.set_error("unknown exception in create");
      return NEEDLE_ERROR;
    }
  }
  static needle_rc start(needle_plugin* p) {
    T* s = self_of<T>(p);
    return guard(s, [&] { return from_result(s, s->start()); });
  }
  static void stop(needle_plugin* p) {
    T* s = self_of<T>(p);
    (void)guard(s, [&] {
      s->stop();
      return NEEDLE_OK;
    });
  }
  static void destroy(needle_plugin* p) {
    try {
      delete self_of<T>(p);
    } catch (...) {  // NOLINT(bugprone-empty-catch): nothing may cross the ABI
    }
  }
  static needle_rc check_connect(needle_plugin* p) {
    T* s = self_of<T>(p);
    return guard(s, [&] { return from_result(s, s->check_connect()); });
  }
  static needle_rc bpf_spec(needle_plugin* p, needle_bpf_spec* out) {
    T* s = self_of<T>(p);
    return guard(s, [&] {
      *out = s->bpf_spec();
      return NEEDLE_OK;
    });
  }
  static needle_rc bpf_configure(needle_plugin* p, needle_bpf* b) {
    T* s = self_of<T>(p);
    return guard(s, [&] {
      Bpf bpf(s->api(), b);
      return from_result(s, s->bpf_configure(bpf));
    });
  }
  static needle_rc bpf_loaded(needle_plugin* p, needle_bpf* b) {
    T* s = self_of<T>(p);
    return guard(s, [&] {
      Bpf bpf(s->api(), b);
      return from_result(s, s->bpf_loaded(bpf));
    });
  }
  static needle_rc decode(needle_plugin* p, const void* rec, size_t len, needle_event* e) {
    T* s = self_of<T>(p);
    return guard(s, [&] {
      Event ev(s->api(), e);
      return s->decode(std::span<const std::byte>(static_cast<const std::byte*>(rec), len), ev);
    });
  }
  static needle_rc enrich(needle_plugin* p, needle_event* e, uint64_t* deadline) {
    T* s = self_of<T>(p);
    return guard(s, [&] {
      Event ev(s->api(), e);
      return s->enrich(ev, *deadline);
    });
  }
  static needle_rc write(needle_plugin* p, const void* const* items, const size_t* lens,
                         size_t count) {
    T* s = self_of<T>(p);
    return guard(s, [&] {
      thread_local std::vector<std::string_view> views;
      views.clear();
      for (size_t i = 0; i < count; ++i) {
        views.emplace_back(static_cast<const char*>(items[i]), lens[i]);
      }
      return s->write(std::span<const std::string_view>(views));
    });
  }
  static needle_rc flush(needle_plugin* p) {
    T* s = self_of<T>(p);
    return guard(s, [&] { return s->flush(); });
  }
  static void reopen(needle_plugin* p) {
    T* s = self_of<T>(p);
    (void)guard(s, [&] {
      s->reopen();
      return NEEDLE_OK;
    });
  }
};

template <typename T>
constexpr needle_plugin_vtable make_vtable(uint32_t kind) {
  using Tr = Trampolines<T>;
  needle_plugin_vtable v{};
  v.struct_size = sizeof(needle_plugin_vtable);
  v.create = &Tr::create;
  v.start = &Tr::start;
  v.stop = &Tr::stop;
  v.destroy = &Tr::destroy;
  v.check_connect = &Tr::check_connect;
  if constexpr (std::is_base_of_v<Source, T>) {
    v.bpf_spec = &Tr::bpf_spec;
    v.bpf_configure = &Tr::bpf_configure;
    v.bpf_loaded = &Tr::bpf_loaded;
    v.decode = &Tr::decode;
  }
  if constexpr (std::is_base_of_v<Enricher, T>) {
    v.enrich = &Tr::enrich;
  }
  if constexpr (std::is_base_of_v<Sink, T>) {
    v.write = &Tr::write;
    v.flush = &Tr::flush;
    v.reopen = &Tr::reopen;
  }
  (void)kind;
  return v;
}

}  // namespace detail
}  // namespace needle

#define NEEDLE_PLUGIN_VISIBLE __attribute__((visibility("default")))

/// Exports one plugin from this shared object. KEYS is a constexpr array of needle_config_key
/// (use needle::no_keys for none).
#define NEEDLE_PLUGIN(KIND, TYPE, NAME, VERSION, DESCRIPTION, STATUS, KEYS)                      \
  namespace {                                                                                    \
  constexpr needle_plugin_vtable needle_vtable_ = needle::detail::make_vtable<TYPE>(KIND);       \
  constexpr needle_plugin_descriptor needle_descriptor_ = {                                      \
      sizeof(needle_plugin_descriptor), NEEDLE_ABI_MAJOR, NEEDLE_ABI_MINOR, KIND, NAME, VERSION, \
      DESCRIPTION, STATUS, (KEYS), sizeof(KEYS) / sizeof((KEYS)[0]),                             \
      sizeof(needle_config_key), 0u, &needle_vtable_};                                           \
  }                                                                                              \
  extern "C" NEEDLE_PLUGIN_VISIBLE const needle_plugin_descriptor* needle_plugin_entry(void) {   \
    return &needle_descriptor_;                                                                  \
  }

namespace needle {
/// An empty key list for plugins with no keys of their own.
inline constexpr needle_config_key no_keys[1] = {
    needle_config_key{sizeof(needle_config_key), 0, nullptr, nullptr, nullptr, 0, 0}};
}  // namespace needle

#endif  // NEEDLE_PLUGIN_H
