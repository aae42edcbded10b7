// An enricher that parks every event until the core says it must finish (deadline 1: shutdown,
// too many parked), then writes `field` = "forced" (or "deadline" when called back after its
// own deadline). It stands in for an enricher whose lookups never come back, a fault a real
// peer cannot be made to produce on demand, to show that a forced pass reaches every enricher.
#include <string>

#include "needle/plugin.h"

namespace {
class ParkEnricher final : public needle::Enricher {
 public:
  ParkEnricher(needle::Host host, const needle::Config& cfg)
      : Enricher(host), field_(cfg.get_string("field")) {}
  needle_rc enrich(needle::Event& ev, uint64_t& deadline_ns) override {
    if (deadline_ns == 1) {
      ev.set(field_, "forced");
      return NEEDLE_OK;
    }
    const uint64_t now = host().now_boot_ns();
    if (deadline_ns != 0 && deadline_ns <= now) {
      ev.set(field_, "deadline");
      return NEEDLE_OK;
    }
    if (deadline_ns == 0) {
      deadline_ns = now + 600'000'000'000ull;   // ten minutes: only a forced pass ends it
    }
    return NEEDLE_PENDING;
  }

 private:
  std::string field_;
};
constexpr needle_config_key kKeys[] = {
    needle::key_string("field", "park.done", "the field written when the event goes on")};
}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_ENRICHER, ParkEnricher, "park", "0.0.1",
              "parks every event until forced (tests)", "wip", kKeys)
