// A sink whose create fails with a runtime error (not a config error).
#include <stdexcept>

#include "needle/plugin.h"

namespace {
class FailCreate final : public needle::Sink {
 public:
  FailCreate(needle::Host host, const needle::Config&) : Sink(host) {
    throw std::runtime_error("cannot reach the backend (test plugin)");
  }
  needle_rc write(std::span<const std::string_view>) override { return NEEDLE_OK; }
};
}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_SINK, FailCreate, "failcreate", "0.0.1", "create always fails", "wip",
              needle::no_keys)
