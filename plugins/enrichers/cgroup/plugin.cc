// ABI glue of enricher/cgroup: its keys, their validation, the export.
#include <cstdint>
#include <string>

#include "cgroup_enricher.h"
#include "needle/config.h"
#include "needle/plugin.h"

namespace {

using needle::cgroup::CgroupOptions;

constexpr needle_config_key kKeys[] = {
    needle::key_path("cgroup2_root", "\"\"",
                     "Where cgroup2 is mounted (empty: found in /proc/self/mountinfo)"),
    needle::key_strings("containerd_namespaces", "[\"default\", \"k8s.io\"]",
                        "containerd namespaces recognised in /<namespace>/<id> cgroup paths"),
    needle::key_int("timeout_ms", "500",
                    "Longest an event waits for a cgroup lookup (1-10000), then goes on "
                    "with container.id listed under incomplete"),
    needle::key_int("cache_entries", "8192", "Cgroups remembered (16-1048576)"),
};

CgroupOptions options_from(const needle::Config& cfg) {
  CgroupOptions o;
  o.cgroup2_root = cfg.get_string("cgroup2_root");
  o.containerd_namespaces = cfg.get_strings("containerd_namespaces");
  for (const std::string& ns : o.containerd_namespaces) {
    if (ns.empty() || ns.find('/') != std::string::npos) {
      throw needle::ConfigError("containerd_namespaces",
                                "containerd_namespaces: '" + ns + "' is not a namespace name");
    }
  }
  o.timeout_ms = static_cast<uint64_t>(cfg.get_int_in("timeout_ms", 1, 10000));
  o.cache_entries = static_cast<size_t>(cfg.get_int_in("cache_entries", 16, 1 << 20));
  return o;
}

class CgroupPlugin final : public needle::cgroup::CgroupEnricher {
 public:
  CgroupPlugin(needle::Host host, const needle::Config& cfg)
      : CgroupEnricher(host, options_from(cfg)) {}
};

}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_ENRICHER, CgroupPlugin, "cgroup", "0.1.0",
              "Container id, runtime and pod uid from the process's cgroup", "alpha", kKeys)
