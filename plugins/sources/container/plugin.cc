// ABI glue of the `container` source: its keys, their validation, the export.
#include "needle/plugin.h"

#include <cstdint>
#include <string>

#include "container_source.h"
#include "needle/config.h"

namespace {

using needle::container::ContainerOptions;

constexpr needle_config_key kKeys[] = {
    needle::key_strings("containerd_namespaces", "[\"default\", \"k8s.io\"]",
                        "containerd namespaces recognised in /<namespace>/<id> cgroup paths"),
    needle::key_int("max_containers", "4096",
                    "Container cgroups remembered to report each create and exit once "
                    "(16-1048576)"),
};

ContainerOptions options_from(const needle::Config& cfg) {
  ContainerOptions o;
  o.containerd_namespaces = cfg.get_strings("containerd_namespaces");
  for (const std::string& ns : o.containerd_namespaces) {
    if (ns.empty() || ns.find('/') != std::string::npos) {
      throw needle::ConfigError("containerd_namespaces",
                                "containerd_namespaces: '" + ns + "' is not a namespace name");
    }
  }
  const int64_t max = cfg.get_int("max_containers");
  if (max < 16 || max > (1 << 20)) {
    throw needle::ConfigError("max_containers",
                              "max_containers must be between 16 and 1048576, "
                              "not " +
                                  std::to_string(max));
  }
  o.max_containers = static_cast<size_t>(max);
  return o;
}

// What NEEDLE_PLUGIN constructs: validates the configuration, then is the source itself.
class ContainerPlugin final : public needle::container::ContainerSource {
 public:
  ContainerPlugin(needle::Host host, const needle::Config& cfg)
      : ContainerSource(host, options_from(cfg)) {}
};

}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_SOURCE, ContainerPlugin, "container", "0.1.0",
              "Container create and exit from the cgroups container runtimes make", "alpha", kKeys)
