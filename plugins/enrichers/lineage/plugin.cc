// ABI glue of enricher/lineage: its keys, their validation, the export.
#include <cstdint>
#include <string>

#include "lineage_enricher.h"
#include "needle/config.h"
#include "needle/plugin.h"

namespace {

using needle::lineage::LineageOptions;

constexpr needle_config_key kKeys[] = {
    needle::key_int("depth", "8", "Ancestors listed per event, parent first (0-64; 0: none)"),
    needle::key_int("max_processes", "65536",
                    "Processes the table holds (1024-4194304); the least recently used goes "
                    "first"),
    needle::key_int("exit_grace_ms", "5000",
                    "How long an exited process stays resolvable for late events (0-600000)"),
    needle::key_int("max_arg_bytes", "1024",
                    "Bytes of arguments kept per process for parent.args and process.args "
                    "(0-16384)"),
};

LineageOptions options_from(const needle::Config& cfg) {
  LineageOptions o;
  o.depth = static_cast<uint32_t>(cfg.get_int_in("depth", 0, 64));
  o.limits.max_processes = static_cast<size_t>(cfg.get_int_in("max_processes", 1024, 4194304));
  o.limits.exit_grace_ns =
      static_cast<uint64_t>(cfg.get_int_in("exit_grace_ms", 0, 600000)) * 1'000'000ull;
  o.limits.max_arg_bytes = static_cast<size_t>(cfg.get_int_in("max_arg_bytes", 0, 16384));
  return o;
}

class LineagePlugin final : public needle::lineage::LineageEnricher {
 public:
  LineagePlugin(needle::Host host, const needle::Config& cfg)
      : LineageEnricher(host, options_from(cfg)) {}
};

}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_ENRICHER, LineagePlugin, "lineage", "0.1.0",
              "Parent and ancestors of every event, and process context for other sources", "alpha",
              kKeys)
