// ABI glue of enricher/cri: its keys, their validation, the export.
#include <cstdint>
#include <string>

#include "cri_enricher.h"
#include "cri_format.h"
#include "needle/config.h"
#include "needle/plugin.h"

namespace {

using needle::cri::CriOptions;

constexpr needle_config_key kKeys[] = {
    needle::key_strings("endpoints",
                        "[\"unix:///run/containerd/containerd.sock\", "
                        "\"unix:///run/crio/crio.sock\"]",
                        "CRI runtime sockets (unix:///path or /path), tried in order"),
    needle::key_int("timeout_ms", "500",
                    "Longest an event waits for a lookup (1-60000), then goes on with the CRI "
                    "fields listed under incomplete"),
    needle::key_int("rpc_timeout_ms", "2000", "Deadline of each CRI call (10-60000)"),
    needle::key_int("cache_entries", "4096", "Containers remembered (16-1048576)"),
};

CriOptions options_from(const needle::Config& cfg) {
  CriOptions o;
  for (const std::string& e : cfg.get_strings("endpoints")) {
    auto n = needle::cri::normalize_endpoint(e);
    if (!n) {
      throw needle::ConfigError("endpoints", n.error().message);
    }
    o.endpoints.push_back(*n);
  }
  if (o.endpoints.empty()) {
    throw needle::ConfigError("endpoints", "endpoints must name at least one socket");
  }
  o.timeout_ms = static_cast<uint64_t>(cfg.get_int_in("timeout_ms", 1, 60000));
  o.rpc_timeout_ms = static_cast<uint64_t>(cfg.get_int_in("rpc_timeout_ms", 10, 60000));
  o.cache_entries = static_cast<size_t>(cfg.get_int_in("cache_entries", 16, 1 << 20));
  return o;
}

class CriPlugin final : public needle::cri::CriEnricher {
 public:
  CriPlugin(needle::Host host, const needle::Config& cfg) : CriEnricher(host, options_from(cfg)) {}
};

}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_ENRICHER, CriPlugin, "cri", "0.1.0",
              "Container name, image, labels and pod from the CRI runtime (containerd, CRI-O)",
              "alpha", kKeys)
