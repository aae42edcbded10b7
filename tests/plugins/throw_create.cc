// A sink that rejects a value of its own key (a ConfigError from the constructor).
#include "needle/plugin.h"

namespace {
class ThrowCreate final : public needle::Sink {
 public:
  ThrowCreate(needle::Host host, const needle::Config& cfg) : Sink(host) {
    if (cfg.get_int("level") > 3) {
      throw needle::ConfigError("level", "level must be at most 3");
    }
  }
  needle_rc write(std::span<const std::string_view>) override { return NEEDLE_OK; }
};
constexpr needle_config_key kKeys[] = {needle::key_int("level", "1", "0 to 3")};
}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_SINK, ThrowCreate, "throwcreate", "0.0.1", "validates a key", "wip",
              kKeys)
