// ABI glue of the `dns` source: its keys, their validation, the export.
#include "needle/plugin.h"

#include <cstdint>
#include <string>

#include "dns_source.h"
#include "needle/config.h"

namespace {

using needle::dns::DnsOptions;

constexpr needle_config_key kKeys[] = {
    needle::key_ints("ports", "[53]",
                     "UDP and TCP ports whose packets are DNS (1-65535, at least one)"),
};

DnsOptions options_from(const needle::Config& cfg) {
  DnsOptions options;
  options.ports.clear();
  for (int64_t port : cfg.get_ints("ports")) {
    if (port < 1 || port > 65535) {
      throw needle::ConfigError(
          "ports", "ports: " + std::to_string(port) + " is not a port number (1-65535)");
    }
    options.ports.push_back(static_cast<uint16_t>(port));
  }
  if (options.ports.empty()) {
    throw needle::ConfigError("ports", "ports: list at least one port (the default is [53])");
  }
  return options;
}

// What NEEDLE_PLUGIN constructs: validates the configuration, then is the source itself.
class DnsPlugin final : public needle::dns::DnsSource {
 public:
  DnsPlugin(needle::Host host, const needle::Config& cfg) : DnsSource(host, options_from(cfg)) {}
};

}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_SOURCE, DnsPlugin, "dns", "0.1.0",
              "DNS queries and responses of this host's processes, parsed from their packets",
              "alpha", kKeys)
