// A sink that is slow (stall_ms per batch) or stuck (stall_ms < 0: never returns), standing in
// for a peer that stops reading: a fault a real peer cannot be made to produce on demand.
#include <chrono>
#include <thread>

#include "needle/plugin.h"

namespace {
class StallSink final : public needle::Sink {
 public:
  StallSink(needle::Host host, const needle::Config& cfg)
      : Sink(host), stall_ms_(cfg.get_int("stall_ms")) {}
  needle_rc write(std::span<const std::string_view>) override {
    if (stall_ms_ < 0) {
      while (true) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(stall_ms_));
    return NEEDLE_OK;
  }
 private:
  int64_t stall_ms_;
};
constexpr needle_config_key kKeys[] = {
    needle::key_int("stall_ms", "100", "sleep per batch; negative: never return")};
}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_SINK, StallSink, "stall", "0.0.1", "a slow or stuck sink (tests)",
              "wip", kKeys)
