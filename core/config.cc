#include "config.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <toml++/toml.h>

namespace needle::core {

namespace fs = std::filesystem;

ConfigError::ConfigError(const std::string& file, int line, const std::string& key,
                         const std::string& msg)
    : std::runtime_error(file + (line > 0 ? ":" + std::to_string(line) : std::string()) + ": " +
                         (key.empty() ? std::string() : "key '" + key + "': ") + msg),
      file_(file),
      line_(line),
      key_(key) {}

const char* type_name(uint32_t t) {
  switch (t) {
    case NEEDLE_CFG_BOOL:
      return "bool";
    case NEEDLE_CFG_INT:
      return "integer";
    case NEEDLE_CFG_DOUBLE:
      return "float";
    case NEEDLE_CFG_STRING:
      return "string";
    case NEEDLE_CFG_STRING_ARRAY:
      return "array of strings";
    case NEEDLE_CFG_PATH:
      return "path (string)";
    case NEEDLE_CFG_INT_ARRAY:
      return "array of integers";
    default:
      return "unknown";
  }
}

namespace {

int line_of(const toml::node& n) { return static_cast<int>(n.source().begin.line); }

RawValue to_raw(const std::string& file, const std::string& key, const toml::node& n) {
  RawValue r;
  r.line = line_of(n);
  if (auto b = n.as_boolean()) {
    r.value = b->get();
    r.toml_type = NEEDLE_CFG_BOOL;
  } else if (auto i = n.as_integer()) {
    r.value = i->get();
    r.toml_type = NEEDLE_CFG_INT;
  } else if (auto d = n.as_floating_point()) {
    r.value = d->get();
    r.toml_type = NEEDLE_CFG_DOUBLE;
  } else if (auto s = n.as_string()) {
    r.value = s->get();
    r.toml_type = NEEDLE_CFG_STRING;
  } else if (auto a = n.as_array()) {
    if (a->empty()) {
      r.value = std::vector<std::string>{};
      r.toml_type = NEEDLE_CFG_STRING_ARRAY;   // an empty array fits either array type
    } else if (a->is_homogeneous(toml::node_type::string)) {
      std::vector<std::string> v;
      for (auto& e : *a) {
        v.push_back(e.as_string()->get());
      }
      r.value = std::move(v);
      r.toml_type = NEEDLE_CFG_STRING_ARRAY;
    } else if (a->is_homogeneous(toml::node_type::integer)) {
      std::vector<int64_t> v;
      for (auto& e : *a) {
        v.push_back(e.as_integer()->get());
      }
      r.value = std::move(v);
      r.toml_type = NEEDLE_CFG_INT_ARRAY;
    } else {
      throw ConfigError(file, r.line, key, "arrays must hold only strings or only integers");
    }
  } else {
    throw ConfigError(file, r.line, key,
                      "unsupported value type (tables, dates and times are not accepted here)");
  }
  return r;
}

std::string want_string(const std::string& file, const std::string& key, const toml::node& n) {
  if (auto s = n.as_string()) {
    return s->get();
  }
  throw ConfigError(file, line_of(n), key, "must be a string");
}

int64_t want_int(const std::string& file, const std::string& key, const toml::node& n,
                 int64_t lo, int64_t hi) {
  auto i = n.as_integer();
  if (!i) {
    throw ConfigError(file, line_of(n), key, "must be an integer");
  }
  if (i->get() < lo || i->get() > hi) {
    throw ConfigError(file, line_of(n), key,
                      "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  }
  return i->get();
}

std::vector<std::string> want_strings(const std::string& file, const std::string& key,
                                      const toml::node& n) {
  auto a = n.as_array();
  if (!a || (!a->empty() && !a->is_homogeneous(toml::node_type::string))) {
    throw ConfigError(file, line_of(n), key, "must be an array of strings");
  }
  std::vector<std::string> out;
  for (auto& e : *a) {
    out.push_back(e.as_string()->get());
  }
  return out;
}

void read_needle(const std::string& file, const toml::table& t, Config& cfg) {
  NeedleSettings& s = cfg.needle;
  for (auto&& [k, v] : t) {
    std::string key(k.str());
    std::string full = "needle." + key;
    if (key == "plugin_dirs") {
      s.plugin_dirs.clear();
      for (auto& d : want_strings(file, full, v)) {
        s.plugin_dirs.push_back(resolve_path(cfg, d));
      }
    } else if (key == "log_level") {
      s.log_level = want_string(file, full, v);
      static const std::set<std::string> kLevels{"trace", "debug", "info", "warn", "error"};
      if (!kLevels.count(s.log_level)) {
        throw ConfigError(file, line_of(v), full, "must be trace, debug, info, warn or error");
      }
    } else if (key == "ring_kib") {
      s.ring_kib = want_int(file, full, v, 16, 1 << 20);
      if ((s.ring_kib & (s.ring_kib - 1)) != 0) {
        throw ConfigError(file, line_of(v), full, "must be a power of two (KiB)");
      }
    } else if (key == "ring_flush_ms") {
      s.ring_flush_ms = want_int(file, full, v, 1, 10000);
    } else if (key == "metrics_listen") {
      s.metrics_listen = want_string(file, full, v);
      if (s.metrics_listen.rfind(':') == std::string::npos) {
        throw ConfigError(file, line_of(v), full, "must be HOST:PORT, e.g. 127.0.0.1:9464");
      }
    } else if (key == "state_dir") {
      s.state_dir = resolve_path(cfg, want_string(file, full, v));
    } else if (key == "host_name") {
      s.host_name = want_string(file, full, v);
    } else if (key == "shutdown_timeout") {
      double secs = 0;
      if (auto i = v.as_integer()) {
        secs = static_cast<double>(i->get());
      } else if (auto d = v.as_floating_point()) {
        secs = d->get();
      } else {
        throw ConfigError(file, line_of(v), full, "must be a number of seconds");
      }
      if (secs <= 0 || secs > 600) {
        throw ConfigError(file, line_of(v), full, "must be more than 0 and at most 600 seconds");
      }
      s.shutdown_timeout_s = secs;
    } else if (key == "exclude_exe") {
      s.exclude_exe = want_strings(file, full, v);
    } else if (key == "exclude_cgroups") {
      s.exclude_cgroups = want_strings(file, full, v);
    } else {
      throw ConfigError(file, line_of(v), full, "unknown key in [needle]");
    }
  }
}

Entry read_entry(const std::string& file, const std::string& kind, const toml::table& t,
                 int index) {
  Entry e;
  e.kind = kind;
  e.line = line_of(t);
  std::string where = kind + "[" + std::to_string(index) + "]";
  auto plugin = t.get("plugin");
  if (!plugin) {
    throw ConfigError(file, e.line, where + ".plugin", "every [[" + kind + "]] names its plugin");
  }
  e.plugin = want_string(file, "plugin", *plugin);
  e.id = e.plugin;
  for (auto&& [k, v] : t) {
    std::string key(k.str());
    if (key == "plugin") {
      continue;
    }
    if (key == "id") {
      e.id = want_string(file, key, v);
      if (e.id.empty()) {
        throw ConfigError(file, line_of(v), key, "must not be empty");
      }
    } else if (key == "rung" && kind == "source") {
      if (auto tab = v.as_table()) {
        for (auto&& [hk, hv] : *tab) {
          e.hook_rungs[std::string(hk.str())] =
              want_string(file, "rung." + std::string(hk.str()), hv);
        }
      } else {
        e.rung = want_string(file, key, v);
      }
    } else if (key == "events" && kind == "sink") {
      e.events = want_strings(file, key, v);
    } else if (key == "queue_size" && kind == "sink") {
      e.queue_size = want_int(file, key, v, 1, 10'000'000);
    } else if (key == "on_full" && kind == "sink") {
      e.on_full = want_string(file, key, v);
      if (e.on_full != "block" && e.on_full != "drop_oldest" && e.on_full != "spill") {
        throw ConfigError(file, line_of(v), key, "must be block, drop_oldest or spill");
      }
    } else if (key == "buffer_max_mib" && kind == "sink") {
      e.buffer_max_mib = want_int(file, key, v, 1, 1 << 20);
    } else {
      e.keys.emplace(key, to_raw(file, key, v));
    }
  }
  return e;
}

}  // namespace

std::string resolve_path(const Config& cfg, const std::string& p) {
  if (p.empty() || p[0] == '/') {
    return p;
  }
  return (fs::path(cfg.dir) / p).lexically_normal().string();
}

Config parse_config(const std::string& text, const std::string& file_name) {
  Config cfg;
  cfg.file = file_name;
  std::error_code ec;
  fs::path abs = fs::absolute(file_name, ec);
  cfg.dir = (ec ? fs::path(file_name) : abs).parent_path().string();
  toml::table root;
  try {
    root = toml::parse(text, file_name);
  } catch (const toml::parse_error& err) {
    throw ConfigError(file_name, static_cast<int>(err.source().begin.line), "",
                      "malformed TOML: " + std::string(err.description()));
  }
  for (auto&& [k, v] : root) {
    std::string key(k.str());
    if (key == "needle") {
      auto t = v.as_table();
      if (!t) {
        throw ConfigError(file_name, line_of(v), key, "must be a table [needle]");
      }
      read_needle(file_name, *t, cfg);
    } else if (key != "source" && key != "enricher" && key != "sink") {
      throw ConfigError(file_name, line_of(v), key,
                        "unknown top-level key (expected [needle], [[source]], [[enricher]] or "
                        "[[sink]])");
    }
  }
  for (const char* kind : {"source", "enricher", "sink"}) {
    auto node = root.get(kind);
    if (!node) {
      continue;
    }
    auto arr = node->as_array();
    if (!arr || !arr->is_homogeneous(toml::node_type::table)) {
      throw ConfigError(file_name, line_of(*node), kind,
                        std::string("must be an array of tables: [[") + kind + "]]");
    }
    std::set<std::string> ids;
    int index = 0;
    for (auto& t : *arr) {
      Entry e = read_entry(file_name, kind, *t.as_table(), index++);
      if (!ids.insert(e.id).second) {
        throw ConfigError(file_name, e.line, "id",
                          "duplicate " + std::string(kind) + " id '" + e.id +
                              "' (ids are unique within a kind; set id = \"...\")");
      }
      cfg.entries.push_back(std::move(e));
    }
  }
  return cfg;
}

Config load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw ConfigError(path, 0, "", "cannot read the configuration file: " +
                                       std::string(std::strerror(errno)));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

needle_config validate_entry(const Config& cfg, const Entry& entry, const needle_config_key* keys,
                             size_t key_count, uint32_t key_size) {
  needle_config out;
  out.id = entry.id;
  std::map<std::string, const needle_config_key*, std::less<>> declared;
  const auto* base = reinterpret_cast<const unsigned char*>(keys);
  for (size_t i = 0; i < key_count; ++i) {
    const auto* k = reinterpret_cast<const needle_config_key*>(base + i * key_size);
    if (k->name != nullptr) {
      declared.emplace(k->name, k);
    }
  }
  std::string where = entry.kind + " '" + entry.id + "' (plugin " + entry.plugin + ")";
  for (auto& [name, raw] : entry.keys) {
    auto it = declared.find(name);
    if (it == declared.end()) {
      std::string known;
      for (auto& [n, _] : declared) {
        known += (known.empty() ? "" : ", ") + n;
      }
      throw ConfigError(cfg.file, raw.line, name,
                        "unknown key for " + where +
                            (known.empty() ? " (it takes no keys of its own)"
                                           : " (known: " + known + ")"));
    }
    uint32_t want = it->second->type;
    uint32_t got = raw.toml_type;
    Value v = raw.value;
    bool fits = got == want || (want == NEEDLE_CFG_PATH && got == NEEDLE_CFG_STRING) ||
                (want == NEEDLE_CFG_DOUBLE && got == NEEDLE_CFG_INT) ||
                (want == NEEDLE_CFG_INT_ARRAY && got == NEEDLE_CFG_STRING_ARRAY &&
                 std::get<std::vector<std::string>>(v).empty());
    if (!fits) {
      throw ConfigError(cfg.file, raw.line, name,
                        std::string("wrong type for ") + where + ": expected " + type_name(want) +
                            ", got " + type_name(got));
    }
    if (want == NEEDLE_CFG_DOUBLE && got == NEEDLE_CFG_INT) {
      v = static_cast<double>(std::get<int64_t>(v));
    } else if (want == NEEDLE_CFG_INT_ARRAY && got == NEEDLE_CFG_STRING_ARRAY) {
      v = std::vector<int64_t>{};
    } else if (want == NEEDLE_CFG_PATH) {
      v = resolve_path(cfg, std::get<std::string>(v));
    }
    out.values.emplace(name, std::move(v));
  }
  for (auto& [name, k] : declared) {
    if (out.values.count(name)) {
      continue;
    }
    if (k->required) {
      throw ConfigError(cfg.file, entry.line, name, "missing required key for " + where);
    }
    if (k->default_value == nullptr) {
      continue;
    }
    // Defaults are TOML literals; parse them the same way as user values.
    toml::table t;
    try {
      t = toml::parse(std::string("v = ") + k->default_value);
    } catch (const toml::parse_error& err) {
      throw ConfigError(cfg.file, entry.line, name,
                        "plugin " + entry.plugin + " declares a malformed default '" +
                            k->default_value + "'");
    }
    RawValue raw = to_raw(cfg.file, name, *t.get("v"));
    Value v = raw.value;
    if (k->type == NEEDLE_CFG_DOUBLE && raw.toml_type == NEEDLE_CFG_INT) {
      v = static_cast<double>(std::get<int64_t>(v));
    } else if (k->type == NEEDLE_CFG_INT_ARRAY && raw.toml_type == NEEDLE_CFG_STRING_ARRAY) {
      v = std::vector<int64_t>{};
    } else if (k->type == NEEDLE_CFG_PATH) {
      v = resolve_path(cfg, std::get<std::string>(v));
    }
    out.values.emplace(name, std::move(v));
  }
  return out;
}

EventFilter::EventFilter(const std::vector<std::string>& patterns) {
  for (auto& p : patterns) {
    if (!p.empty() && p[0] == '!') {
      exclude_.push_back(p.substr(1));
    } else {
      include_.push_back(p);
    }
  }
}

bool EventFilter::glob(std::string_view pat, std::string_view s) {
  // Iterative glob with '*' only (matches any characters, dots included).
  size_t p = 0;
  size_t i = 0;
  size_t star = std::string_view::npos;
  size_t mark = 0;
  while (i < s.size()) {
    if (p < pat.size() && pat[p] == '*') {
      star = p++;
      mark = i;
    } else if (p < pat.size() && pat[p] == s[i]) {
      ++p;
      ++i;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (p < pat.size() && pat[p] == '*') {
    ++p;
  }
  return p == pat.size();
}

bool EventFilter::matches(std::string_view type) const {
  for (auto& x : exclude_) {
    if (glob(x, type)) {
      return false;
    }
  }
  if (type == "needle.gap") {
    return true;
  }
  if (include_.empty()) {
    return true;
  }
  for (auto& x : include_) {
    if (glob(x, type)) {
      return true;
    }
  }
  return false;
}

}  // namespace needle::core
