// ABI glue of the `file` source: its keys, their validation, the export.
#include "needle/plugin.h"

#include <string>
#include <vector>

#include "file_source.h"
#include "needle/config.h"

namespace {

using needle::file::FileOptions;

constexpr needle_config_key kKeys[] = {
    needle::key_strings("paths", "[]",
                        "Report only paths under these folders (absolute, whole components, at "
                        "most 8; empty: every path)"),
    needle::key_strings("exclude_paths", "[]",
                        "Never report paths under these folders (absolute, at most 8)"),
    needle::key_bool("read_only", "false", "Also report opens that cannot change the file"),
};

std::vector<std::string> prefixes(const needle::Config& cfg, const char* key) {
  std::vector<std::string> out;
  for (const auto& value : cfg.get_strings(key)) {
    auto p = needle::file::normalize_prefix(value);
    if (!p) {
      throw needle::ConfigError(key, std::string(key) + ": " + p.error().message);
    }
    if (*p == "/" && std::string(key) == "exclude_paths") {
      throw needle::ConfigError(key, "exclude_paths: '/' would exclude every path");
    }
    if (*p == "/") {
      return {};  // everything is under "/": no include filter
    }
    out.push_back(std::move(*p));
  }
  if (out.size() > FileOptions::kMaxPrefixes) {
    throw needle::ConfigError(
        key, std::string(key) + " has " + std::to_string(out.size()) + " entries; at most " +
                 std::to_string(FileOptions::kMaxPrefixes) + " are supported");
  }
  return out;
}

FileOptions options_from(const needle::Config& cfg) {
  FileOptions options;
  options.paths = prefixes(cfg, "paths");
  options.exclude_paths = prefixes(cfg, "exclude_paths");
  options.read_only = cfg.get_bool("read_only");
  return options;
}

// What NEEDLE_PLUGIN constructs: validates the configuration, then is the source itself.
class FilePlugin final : public needle::file::FileSource {
 public:
  FilePlugin(needle::Host host, const needle::Config& cfg) : FileSource(host, options_from(cfg)) {}
};

}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_SOURCE, FilePlugin, "file", "0.1.0",
              "File activity: open, create, unlink, rename, chmod, chown, link, symlink", "alpha",
              kKeys)
