// Unit-test support for enrichers: a real host API table (the core's) over a hand-made plugin
// instance, and core events to enrich. Tests only; links needle_core.
#ifndef NEEDLE_ENRICHERS_COMMON_TEST_HOST_H
#define NEEDLE_ENRICHERS_COMMON_TEST_HOST_H

#include <string>
#include <string_view>
#include <vector>

#include "encode.h"
#include "event.h"
#include "host.h"
#include "metrics.h"
#include "needle/event.h"
#include "needle/plugin.h"

namespace needle::enrich::test {

// Events a plugin asks the host for (event_new): plain core events, freed on discard; a
// submitted one is kept for the test to look at.
class TestIntake final : public core::EventIntake {
 public:
  ~TestIntake() override {
    for (core::Event* e : submitted_) {
      delete e;
    }
  }
  core::Event* acquire_event() override {
    ++live_;
    ++acquired_;
    return new core::Event();
  }
  void submit_event(needle_host* /*from*/, core::Event* ev) override { submitted_.push_back(ev); }
  void release_event(core::Event* ev) override {
    --live_;
    delete ev;
  }
  /// Events handed out and neither discarded nor submitted.
  int64_t live() const { return live_ - static_cast<int64_t>(submitted_.size()); }
  /// Events handed out in all (templates built, for one).
  int64_t acquired() const { return acquired_; }

 private:
  int64_t live_ = 0;
  int64_t acquired_ = 0;
  std::vector<core::Event*> submitted_;
};

class TestHost {
 public:
  explicit TestHost(const std::string& plugin) {
    inst_.kind = "enricher";
    inst_.id = plugin;
    inst_.plugin = plugin;
    inst_.metrics = &metrics_;
    inst_.intake = &intake_;
  }
  const TestIntake& intake() const { return intake_; }
  Host host() { return Host(core::host_api(), &inst_); }
  const needle_host_api* api() const { return core::host_api(); }
  uint64_t counter(const std::string& name) const {
    return metrics_.sum("needle_plugin_counter_total", {{"name", name}});
  }

 private:
  core::Metrics metrics_;
  TestIntake intake_;
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
