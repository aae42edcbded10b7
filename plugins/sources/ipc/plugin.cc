// ABI glue of the `ipc` source: its keys, the export.
#include "needle/plugin.h"

#include "ipc_source.h"
#include "needle/config.h"

namespace {

constexpr needle_config_key kKeys[] = {
    needle::key_bool("ptrace_all", "false",
                     "Report every ptrace request, not only those that attach, detach, kill or "
                     "change the tracee"),
};

// What NEEDLE_PLUGIN constructs: validates the configuration, then is the source itself.
class IpcPlugin final : public needle::ipc::IpcSource {
 public:
  IpcPlugin(needle::Host host, const needle::Config& cfg)
      : IpcSource(host, needle::ipc::IpcOptions{cfg.get_bool("ptrace_all")}) {}
};

}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_SOURCE, IpcPlugin, "ipc", "0.1.0",
              "Inter-process activity: ptrace, process_vm_*, memfd_create, signals to others",
              "alpha", kKeys)
