// `needle run` and `needle check`: builds the plugin instances from the configuration, owns
// the threads (ring, pipeline, one per sink), the signals, the metrics endpoint and the
// bounded shutdown.
#ifndef NEEDLE_CORE_RUNTIME_H
#define NEEDLE_CORE_RUNTIME_H

#include <string>

namespace needle::core {

// Exit codes of DESIGN.md.
constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitConfig = 2;
constexpr int kExitPlugin = 3;
constexpr int kExitBpf = 4;

struct Options {
  std::string config;
  bool insecure_plugin_dirs = false;
  bool connect = false;     // check --connect
};

int run_needle(const Options& opts);
int check_needle(const Options& opts);

/// Sets up spdlog on stderr at `level` (trace, debug, info, warn, error).
void setup_logging(const std::string& level);

}  // namespace needle::core

#endif  // NEEDLE_CORE_RUNTIME_H
