// C++ view of an instance's validated configuration, and constexpr helpers to declare keys.
#ifndef NEEDLE_CONFIG_H
#define NEEDLE_CONFIG_H

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "needle/abi.h"

namespace needle {

/// Thrown by a plugin constructor for a bad value; the SDK trampoline turns it into
/// NEEDLE_INVALID with the key named, and needle adds the file and line.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string key, const std::string& message)
      : std::runtime_error(message), key_(std::move(key)) {}
  const std::string& key() const { return key_; }

 private:
  std::string key_;
};

constexpr needle_config_key make_key(uint32_t type, const char* name, const char* default_value,
                                     const char* help, bool required = false) {
  return needle_config_key{sizeof(needle_config_key), type, name, default_value, help,
                           required ? 1u : 0u, 0u};
}
constexpr needle_config_key key_bool(const char* name, const char* def, const char* help) {
  return make_key(NEEDLE_CFG_BOOL, name, def, help);
}
constexpr needle_config_key key_int(const char* name, const char* def, const char* help) {
  return make_key(NEEDLE_CFG_INT, name, def, help);
}
constexpr needle_config_key key_double(const char* name, const char* def, const char* help) {
  return make_key(NEEDLE_CFG_DOUBLE, name, def, help);
}
constexpr needle_config_key key_string(const char* name, const char* def, const char* help) {
  return make_key(NEEDLE_CFG_STRING, name, def, help);
}
constexpr needle_config_key key_strings(const char* name, const char* def, const char* help) {
  return make_key(NEEDLE_CFG_STRING_ARRAY, name, def, help);
}
constexpr needle_config_key key_ints(const char* name, const char* def, const char* help) {
  return make_key(NEEDLE_CFG_INT_ARRAY, name, def, help);
}
constexpr needle_config_key key_path(const char* name, const char* def, const char* help) {
  return make_key(NEEDLE_CFG_PATH, name, def, help);
}
constexpr needle_config_key key_required(uint32_t type, const char* name, const char* help) {
  return make_key(type, name, nullptr, help, true);
}

/// Read-only view of an instance's table. Values were validated against the declared keys, so
/// a typed getter fails only for a key the plugin did not declare (a ConfigError).
class Config {
 public:
  Config(const needle_host_api* api, const needle_config* cfg) : api_(api), cfg_(cfg) {}

  std::string_view id() const { return api_->cfg_id(cfg_); }

  bool get_bool(const char* key) const {
    int32_t v = 0;
    check(api_->cfg_bool(cfg_, key, &v), key);
    return v != 0;
  }
  int64_t get_int(const char* key) const {
    int64_t v = 0;
    check(api_->cfg_int(cfg_, key, &v), key);
    return v;
  }
  /// get_int, and a ConfigError naming the key unless lo <= value <= hi.
  int64_t get_int_in(const char* key, int64_t lo, int64_t hi) const {
    const int64_t v = get_int(key);
    if (v < lo || v > hi) {
      throw ConfigError(key, std::string(key) + " must be between " + std::to_string(lo) +
                                 " and " + std::to_string(hi) + ", not " + std::to_string(v));
    }
    return v;
  }
  double get_double(const char* key) const {
    double v = 0;
    check(api_->cfg_double(cfg_, key, &v), key);
    return v;
  }
  std::string get_string(const char* key) const {
    const char* s = nullptr;
    size_t n = 0;
    check(api_->cfg_string(cfg_, key, &s, &n), key);
    return std::string(s, n);
  }
  bool has(const char* key) const {
    const char* s = nullptr;
    size_t n = 0;
    int64_t i = 0;
    int32_t b = 0;
    double d = 0;
    return api_->cfg_string(cfg_, key, &s, &n) == NEEDLE_OK ||
           api_->cfg_int(cfg_, key, &i) == NEEDLE_OK || api_->cfg_bool(cfg_, key, &b) == NEEDLE_OK ||
           api_->cfg_double(cfg_, key, &d) == NEEDLE_OK || api_->cfg_array_size(cfg_, key) > 0;
  }
  std::vector<std::string> get_strings(const char* key) const {
    std::vector<std::string> out;
    size_t n = api_->cfg_array_size(cfg_, key);
    for (size_t i = 0; i < n; ++i) {
      const char* s = nullptr;
      size_t len = 0;
      check(api_->cfg_array_string(cfg_, key, i, &s, &len), key);
      out.emplace_back(s, len);
    }
    return out;
  }
  std::vector<int64_t> get_ints(const char* key) const {
    std::vector<int64_t> out;
    size_t n = api_->cfg_array_size(cfg_, key);
    for (size_t i = 0; i < n; ++i) {
      int64_t v = 0;
      check(api_->cfg_array_int(cfg_, key, i, &v), key);
      out.push_back(v);
    }
    return out;
  }

 private:
  static void check(needle_rc rc, const char* key) {
    if (rc != NEEDLE_OK) {
      throw ConfigError(key, std::string("key '") + key + "' is not set or has another type");
    }
  }
  const needle_host_api* api_;
  const needle_config* cfg_;
};

}  // namespace needle

#endif  // NEEDLE_CONFIG_H
