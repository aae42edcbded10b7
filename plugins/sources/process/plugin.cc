// ABI glue of the `process` source: its keys, their validation, the export.
#include "needle/plugin.h"

#include <cstdint>
#include <string>

#include "needle/config.h"
#include "process_source.h"

namespace {

using needle::process::ProcessOptions;

constexpr needle_config_key kKeys[] = {
    needle::key_int("max_args", "64",
                    "Arguments captured per exec and snapshot (0-4096; 0 captures none)"),
    needle::key_int("max_arg_bytes", "4096",
                    "Bytes of arguments captured per exec and snapshot (0-16384; 0 captures none)"),
};

uint32_t int_in_range(const needle::Config& cfg, const char* key, int64_t max) {
  const int64_t value = cfg.get_int(key);
  if (value < 0 || value > max) {
    throw needle::ConfigError(key, std::string(key) + " must be between 0 and " +
                                       std::to_string(max) + ", not " + std::to_string(value));
  }
  return static_cast<uint32_t>(value);
}

ProcessOptions options_from(const needle::Config& cfg) {
  ProcessOptions options;
  options.max_args = int_in_range(cfg, "max_args", ProcessOptions::kMaxArgsLimit);
  options.max_arg_bytes = int_in_range(cfg, "max_arg_bytes", ProcessOptions::kMaxArgBytesLimit);
  return options;
}

// What NEEDLE_PLUGIN constructs: validates the configuration, then is the source itself.
class ProcessPlugin final : public needle::process::ProcessSource {
 public:
  ProcessPlugin(needle::Host host, const needle::Config& cfg)
      : ProcessSource(host, options_from(cfg)) {}
};

}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_SOURCE, ProcessPlugin, "process", "0.1.0",
              "Process lifecycle: exec, fork, exit and the start snapshot", "alpha", kKeys)
