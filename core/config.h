// needle.toml: parsing, the core's own keys, and validation of each plugin entry against the
// keys its plugin declares. Errors name file, line and key (ConfigError); they are thrown only
// while reading the configuration, never on the event path.
#ifndef NEEDLE_CORE_CONFIG_H
#define NEEDLE_CORE_CONFIG_H

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "needle/abi.h"

namespace needle::core {

class ConfigError : public std::runtime_error {
 public:
  ConfigError(const std::string& file, int line, const std::string& key, const std::string& msg);
  const std::string& file() const { return file_; }
  int line() const { return line_; }
  const std::string& key() const { return key_; }

 private:
  std::string file_;
  int line_;
  std::string key_;
};

using Value = std::variant<bool, int64_t, double, std::string, std::vector<std::string>,
                           std::vector<int64_t>>;

struct RawValue {
  Value value;
  int line = 0;
  uint32_t toml_type = 0;   // NEEDLE_CFG_* it looks like; 0 when mixed/unknown
};

/// One [[source]], [[enricher]] or [[sink]] entry before the plugin validated it.
struct Entry {
  std::string kind;         // "source", "enricher", "sink"
  std::string plugin;
  std::string id;
  int line = 0;             // line of the entry's table header
  std::map<std::string, RawValue, std::less<>> keys;   // plugin keys (core keys removed)
  // Core keys.
  std::string rung;                               // rung = "..." (every hook)
  std::map<std::string, std::string> hook_rungs;  // rung.<hook> = "..."
  std::vector<std::string> events;                // sinks: filter patterns
  int64_t queue_size = 8192;
  std::string on_full = "block";
  int64_t buffer_max_mib = 256;
};

struct NeedleSettings {
  std::vector<std::string> plugin_dirs;   // resolved against the config's folder
  std::string log_level = "info";
  int64_t ring_kib = 8192;
  int64_t ring_flush_ms = 50;
  std::string metrics_listen;             // empty: off
  std::string state_dir = "/var/lib/needle";
  std::string host_name;                  // empty: gethostname()
  double shutdown_timeout_s = 5.0;
  std::vector<std::string> exclude_exe;
  std::vector<std::string> exclude_cgroups;
};

struct Config {
  std::string file;        // as given
  std::string dir;         // its folder, for relative paths
  NeedleSettings needle;
  std::vector<Entry> entries;   // sources, then enrichers (in order), then sinks
};

/// Parses and checks everything the core can check alone. Throws ConfigError.
Config load_config(const std::string& path);
Config parse_config(const std::string& text, const std::string& file_name);

/// A plugin instance's validated table: what needle_host_api::cfg_* read.
}  // namespace needle::core

struct needle_config {
  std::string id;
  std::map<std::string, needle::core::Value, std::less<>> values;
};

namespace needle::core {

/// Validates `entry` against a plugin's declared keys and fills defaults. Throws ConfigError
/// for an undeclared key, a wrong type or a missing required key.
needle_config validate_entry(const Config& cfg, const Entry& entry,
                             const needle_config_key* keys, size_t key_count, uint32_t key_size);

/// Joins `p` to the config's folder when relative.
std::string resolve_path(const Config& cfg, const std::string& p);

/// Event-type filter of a sink: `*` matches any characters, `!` excludes; needle.gap passes
/// unless excluded by name.
class EventFilter {
 public:
  EventFilter() = default;
  explicit EventFilter(const std::vector<std::string>& patterns);
  bool matches(std::string_view type) const;

 private:
  static bool glob(std::string_view pat, std::string_view s);
  std::vector<std::string> include_;
  std::vector<std::string> exclude_;
};

const char* type_name(uint32_t cfg_type);

}  // namespace needle::core

#endif  // NEEDLE_CORE_CONFIG_H
