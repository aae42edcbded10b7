#include <spdlog/spdlog.h>

#include <filesystem>
#include <variant>

#include "clock.h"
#include "encode.h"
#include "host.h"
#include "metrics.h"
#include "plugin_loader.h"
#include "probes.h"

namespace needle::core {

namespace {

std::string_view sv(const char* p, size_t n) { return p ? std::string_view(p, n) : std::string_view(); }

void h_log(needle_host* h, int32_t level, const char* msg, size_t len) {
  auto lvl = spdlog::level::info;
  switch (level) {
    case NEEDLE_LOG_TRACE:
      lvl = spdlog::level::trace;
      break;
    case NEEDLE_LOG_DEBUG:
      lvl = spdlog::level::debug;
      break;
    case NEEDLE_LOG_WARN:
      lvl = spdlog::level::warn;
      break;
    case NEEDLE_LOG_ERROR:
      lvl = spdlog::level::err;
      break;
    default:
      break;
  }
  spdlog::log(lvl, "[{} {}] {}", h->kind, h->id, sv(msg, len));
}

void h_set_error(needle_host* h, const char* key, const char* msg, size_t len) {
  h->error.assign(msg ? msg : "", msg ? len : 0);
  h->error_key = key ? key : "";
}

uint32_t h_counter_register(needle_host* h, const char* name, const char* help) {
  auto* c = h->metrics->counter("needle_plugin_counter_total",
                                {{"plugin", h->kind + "/" + h->plugin}, {"id", h->id},
                                 {"name", name ? name : ""}},
                                help ? help : "");
  h->counters.push_back(c);
  return static_cast<uint32_t>(h->counters.size() - 1);
}

void h_counter_add(needle_host* h, uint32_t id, uint64_t delta) {
  if (id < h->counters.size()) {
    h->counters[id]->fetch_add(delta, std::memory_order_relaxed);
  }
}

template <typename T>
const T* value_of(const needle_config* cfg, const char* key) {
  if (!cfg || !key) {
    return nullptr;
  }
  auto it = cfg->values.find(std::string_view(key));
  if (it == cfg->values.end()) {
    return nullptr;
  }
  return std::get_if<T>(&it->second);
}

needle_rc c_bool(const needle_config* cfg, const char* key, int32_t* out) {
  auto* v = value_of<bool>(cfg, key);
  if (!v) {
    return NEEDLE_INVALID;
  }
  *out = *v ? 1 : 0;
  return NEEDLE_OK;
}
needle_rc c_int(const needle_config* cfg, const char* key, int64_t* out) {
  auto* v = value_of<int64_t>(cfg, key);
  if (!v) {
    return NEEDLE_INVALID;
  }
  *out = *v;
  return NEEDLE_OK;
}
needle_rc c_double(const needle_config* cfg, const char* key, double* out) {
  auto* v = value_of<double>(cfg, key);
  if (!v) {
    return NEEDLE_INVALID;
  }
  *out = *v;
  return NEEDLE_OK;
}
needle_rc c_string(const needle_config* cfg, const char* key, const char** out, size_t* len) {
  auto* v = value_of<std::string>(cfg, key);
  if (!v) {
    return NEEDLE_INVALID;
  }
  *out = v->c_str();
  *len = v->size();
  return NEEDLE_OK;
}
size_t c_array_size(const needle_config* cfg, const char* key) {
  if (auto* s = value_of<std::vector<std::string>>(cfg, key)) {
    return s->size();
  }
  if (auto* i = value_of<std::vector<int64_t>>(cfg, key)) {
    return i->size();
  }
  return 0;
}
needle_rc c_array_string(const needle_config* cfg, const char* key, size_t i, const char** out,
                         size_t* len) {
  auto* v = value_of<std::vector<std::string>>(cfg, key);
  if (!v || i >= v->size()) {
    return NEEDLE_INVALID;
  }
  *out = (*v)[i].c_str();
  *len = (*v)[i].size();
  return NEEDLE_OK;
}
needle_rc c_array_int(const needle_config* cfg, const char* key, size_t i, int64_t* out) {
  auto* v = value_of<std::vector<int64_t>>(cfg, key);
  if (!v || i >= v->size()) {
    return NEEDLE_INVALID;
  }
  *out = (*v)[i];
  return NEEDLE_OK;
}
const char* c_id(const needle_config* cfg) { return cfg->id.c_str(); }

Event* E(needle_event* e) { return as_core(e); }
const Event* E(const needle_event* e) { return as_core(e); }

needle_node e_object(needle_event* ev, needle_node p, const char* path, size_t len) {
  return E(ev)->object(p, sv(path, len));
}
needle_node e_array(needle_event* ev, needle_node p, const char* path, size_t len) {
  return E(ev)->array(p, sv(path, len));
}
void e_set_str(needle_event* ev, needle_node p, const char* path, size_t len, const char* v,
               size_t vlen) {
  E(ev)->set_str(p, sv(path, len), sv(v, vlen));
}
void e_set_int(needle_event* ev, needle_node p, const char* path, size_t len, int64_t v) {
  E(ev)->set_int(p, sv(path, len), v);
}
void e_set_uint(needle_event* ev, needle_node p, const char* path, size_t len, uint64_t v) {
  E(ev)->set_uint(p, sv(path, len), v);
}
void e_set_double(needle_event* ev, needle_node p, const char* path, size_t len, double v) {
  E(ev)->set_double(p, sv(path, len), v);
}
void e_set_bool(needle_event* ev, needle_node p, const char* path, size_t len, int32_t v) {
  E(ev)->set_bool(p, sv(path, len), v != 0);
}
void e_push_str(needle_event* ev, needle_node a, const char* v, size_t len) {
  E(ev)->push_str(a, sv(v, len));
}
void e_push_int(needle_event* ev, needle_node a, int64_t v) { E(ev)->push_int(a, v); }
needle_node e_push_object(needle_event* ev, needle_node a) { return E(ev)->push_object(a); }
needle_node e_find(const needle_event* ev, needle_node p, const char* path, size_t len) {
  return E(ev)->find(p, sv(path, len));
}
uint32_t e_type_of(const needle_event* ev, needle_node n) { return E(ev)->type_of(n); }
needle_rc e_get_str(const needle_event* ev, needle_node n, const char** out, size_t* len) {
  std::string_view s;
  if (!E(ev)->get_str(n, s)) {
    return NEEDLE_INVALID;
  }
  *out = s.data();
  *len = s.size();
  return NEEDLE_OK;
}
needle_rc e_get_int(const needle_event* ev, needle_node n, int64_t* out) {
  return E(ev)->get_int(n, *out) ? NEEDLE_OK : NEEDLE_INVALID;
}
needle_rc e_get_uint(const needle_event* ev, needle_node n, uint64_t* out) {
  return E(ev)->get_uint(n, *out) ? NEEDLE_OK : NEEDLE_INVALID;
}
size_t e_size(const needle_event* ev, needle_node n) { return E(ev)->size(n); }
needle_node e_child(const needle_event* ev, needle_node n, size_t i) {
  return E(ev)->child(n, i);
}
void e_remove(needle_event* ev, needle_node n) { E(ev)->remove(n); }
void e_mark(needle_event* ev, uint32_t which, const char* field, size_t len) {
  E(ev)->mark(which, sv(field, len));
}
// 1.2: fields by handle. A needle_field is a core::Field*.
const Field* F(needle_field f) { return reinterpret_cast<const Field*>(f); }
needle_field e_field(const char* path, size_t len) {
  return reinterpret_cast<needle_field>(make_field(sv(path, len)));
}
// A NULL handle (ev_field refused it) names no field: nothing is set or found.
needle_node e_object_f(needle_event* ev, needle_node p, needle_field f) {
  return f ? E(ev)->object(p, *F(f)) : Event::kNone;
}
needle_node e_array_f(needle_event* ev, needle_node p, needle_field f) {
  return f ? E(ev)->array(p, *F(f)) : Event::kNone;
}
void e_set_str_f(needle_event* ev, needle_node p, needle_field f, const char* v, size_t vlen) {
  if (f) {
    E(ev)->set_str(p, *F(f), sv(v, vlen));
  }
}
void e_set_int_f(needle_event* ev, needle_node p, needle_field f, int64_t v) {
  if (f) {
    E(ev)->set_int(p, *F(f), v);
  }
}
void e_set_uint_f(needle_event* ev, needle_node p, needle_field f, uint64_t v) {
  if (f) {
    E(ev)->set_uint(p, *F(f), v);
  }
}
void e_set_bool_f(needle_event* ev, needle_node p, needle_field f, int32_t v) {
  if (f) {
    E(ev)->set_bool(p, *F(f), v != 0);
  }
}
needle_node e_find_f(const needle_event* ev, needle_node p, needle_field f) {
  return f ? E(ev)->find(p, *F(f)) : Event::kNone;
}
needle_node e_copy_f(needle_event* ev, needle_node p, needle_field f, const needle_event* src,
                     needle_node src_node) {
  return f && src ? E(ev)->copy(p, *F(f), *E(src), src_node) : Event::kNone;
}
// 1.3: reads by handle in one call, and merges.
needle_rc e_get_str_f(const needle_event* ev, needle_node p, needle_field f, const char** out,
                      size_t* len) {
  std::string_view s;
  if (f == nullptr || !E(ev)->get_str(p, *F(f), s)) {
    return NEEDLE_INVALID;
  }
  *out = s.data();
  *len = s.size();
  return NEEDLE_OK;
}
needle_rc e_get_int_f(const needle_event* ev, needle_node p, needle_field f, int64_t* out) {
  return f != nullptr && E(ev)->get_int(p, *F(f), *out) ? NEEDLE_OK : NEEDLE_INVALID;
}
needle_rc e_get_uint_f(const needle_event* ev, needle_node p, needle_field f, uint64_t* out) {
  return f != nullptr && E(ev)->get_uint(p, *F(f), *out) ? NEEDLE_OK : NEEDLE_INVALID;
}
needle_node e_merge_f(needle_event* ev, needle_node p, needle_field f, const needle_event* src,
                      needle_node src_node) {
  return f && src ? E(ev)->merge(p, *F(f), *E(src), src_node) : Event::kNone;
}

needle_rc e_encode(const needle_event* ev, uint32_t format, const void** out, size_t* len) {
  thread_local std::string buf;
  buf.clear();
  if (format == NEEDLE_FORMAT_JSON) {
    encode_json(*E(ev), buf);
  } else if (format == NEEDLE_FORMAT_MSGPACK) {
    encode_msgpack(*E(ev), buf);
  } else {
    return NEEDLE_INVALID;
  }
  *out = buf.data();
  *len = buf.size();
  return NEEDLE_OK;
}

needle_event* h_event_new(needle_host* h, uint64_t boot_ns) {
  if (!h->intake) {
    return nullptr;
  }
  Event* e = h->intake->acquire_event();
  e->boot_ns = boot_ns ? boot_ns : boot_ns_now();
  return as_abi(e);
}
needle_rc h_event_submit(needle_host* h, needle_event* ev) {
  if (!h->intake || !ev) {
    return NEEDLE_INVALID;
  }
  h->intake->submit_event(h, as_core(ev));
  return NEEDLE_OK;
}
void h_event_discard(needle_host* h, needle_event* ev) {
  if (h->intake && ev) {
    h->intake->release_event(as_core(ev));
  }
}

uint64_t h_now() { return boot_ns_now(); }
const char* h_host_id() { return host_id().c_str(); }
const char* h_host_name() { return host_name().c_str(); }
size_t h_format_time(uint64_t boot_ns, char* out, size_t cap) {
  return format_boot_time(boot_ns, out, cap);
}
const char* h_state_dir(needle_host* h) { return h->state_dir.c_str(); }

const needle_host_api kApi = {
    sizeof(needle_host_api),
    NEEDLE_ABI_MAJOR,
    NEEDLE_ABI_MINOR,
    0,
    h_log,
    h_set_error,
    h_counter_register,
    h_counter_add,
    c_bool,
    c_int,
    c_double,
    c_string,
    c_array_size,
    c_array_string,
    c_array_int,
    c_id,
    e_object,
    e_array,
    e_set_str,
    e_set_int,
    e_set_uint,
    e_set_double,
    e_set_bool,
    e_push_str,
    e_push_int,
    e_push_object,
    e_find,
    e_type_of,
    e_get_str,
    e_get_int,
    e_get_uint,
    e_size,
    e_child,
    e_remove,
    e_mark,
    e_encode,
    h_event_new,
    h_event_submit,
    h_event_discard,
    needle_bpf_set_global,
    needle_bpf_map_update,
    needle_bpf_map_fd,
    h_now,
    h_host_id,
    h_host_name,
    h_format_time,
    h_state_dir,
    e_field,
    e_object_f,
    e_array_f,
    e_set_str_f,
    e_set_int_f,
    e_set_uint_f,
    e_set_bool_f,
    e_find_f,
    e_copy_f,
    e_get_str_f,
    e_get_int_f,
    e_get_uint_f,
    e_merge_f,
};

}  // namespace

const needle_host_api* host_api() { return &kApi; }

std::string describe_error(const Instance& inst, const std::string& what) {
  std::string file = inst.lp ? inst.lp->path : "needle-" + inst.kind + "-" + inst.plugin + ".so";
  std::string msg = "plugin " + file + " (" + inst.kind + " '" + inst.id + "'): " + what;
  if (!inst.error.empty()) {
    msg += ": " + inst.error;
  }
  return msg;
}

}  // namespace needle::core
