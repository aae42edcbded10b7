// Unit-test support for enrichers: a real host API table (the core's) over a hand-made plugin
// instance, and core events to enrich. Tests only; links needle_core.
#ifndef NEEDLE_ENRICHERS_COMMON_TEST_HOST_H
#define NEEDLE_ENRICHERS_COMMON_TEST_HOST_H

#include <string>
#include <string_view>

#include "encode.h"
#include "event.h"
#include "host.h"
#include "metrics.h"
#include "needle/event.h"
#include "needle/plugin.h"

namespace needle::enrich::test {

class TestHost {
 public:
  explicit TestHost(const std::string& plugin) {
    inst_.kind = "enricher";
    inst_.id = plugin;
    inst_.plugin = plugin;
    inst_.metrics = &metrics_;
  }
  Host host() { return Host(core::host_api(), &inst_); }
  const needle_host_api* api() const { return core::host_api(); }
  uint64_t counter(const std::string& name) const {
    return metrics_.sum("needle_plugin_counter_total", {{"name", name}});
  }

 private:
  core::Metrics metrics_;
  needle_host inst_;
};

class TestEvent {
 public:
  TestEvent() { ev_.set_str(NEEDLE_ROOT, "id", next_id()); }
  Event view() { return Event(core::host_api(), core::as_abi(&ev_)); }
  std::string json() const {
    std::string out;
    core::encode_json(ev_, out);
    return out;
  }

 private:
  static std::string next_id() {
    static uint64_t n = 0;
    return "test-" + std::to_string(++n);
  }
  core::Event ev_;
};

}  // namespace needle::enrich::test

#endif  // NEEDLE_ENRICHERS_COMMON_TEST_HOST_H
