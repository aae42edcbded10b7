// ABI glue of the `network` source: no keys of its own, the export.
#include "needle/plugin.h"

#include "needle/config.h"
#include "network_source.h"

namespace {

// What NEEDLE_PLUGIN constructs.
class NetworkPlugin final : public needle::network::NetworkSource {
 public:
  NetworkPlugin(needle::Host host, const needle::Config&) : NetworkSource(host) {}
};

}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_SOURCE, NetworkPlugin, "network", "0.1.0",
              "TCP and UDP connect, accept and listen with the kernel's socket addresses", "alpha",
              needle::no_keys)
