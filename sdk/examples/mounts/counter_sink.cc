// sink/counter: counts the events it receives, by type, and logs the totals when needle stops.
// The smallest useful sink: no I/O on the event path, nothing to retry. See README.md.
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "needle/plugin.h"

namespace {

constexpr needle_config_key kKeys[] = {
    needle::key_string("label", "\"counter\"", "Name printed with the totals"),
};

// The top-level "type" of one JSON-encoded event. needle writes id, time and type first, so the
// first "type" key is the event's own (nested objects, such as DNS answers, come later).
std::string_view type_of(std::string_view json) {
  constexpr std::string_view kKey = "\"type\":\"";
  size_t at = json.find(kKey);
  if (at == std::string_view::npos) {
    return "?";
  }
  at += kKey.size();
  size_t end = json.find('"', at);
  return end == std::string_view::npos ? "?" : json.substr(at, end - at);
}

class CounterSink final : public needle::Sink {
 public:
  CounterSink(needle::Host host, const needle::Config& cfg)
      : Sink(host), label_(cfg.get_string("label")) {
    if (label_.empty()) {
      throw needle::ConfigError("label", "label must not be empty");
    }
  }

  // Called when needle destroys the instance, after its sink thread has stopped: the host's log
  // is valid until destroy() returns.
  ~CounterSink() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::string line = label_ + ": " + std::to_string(total_) + " events";
    for (const auto& [type, n] : by_type_) {
      line += ", " + type + " " + std::to_string(n);
    }
    host().info(line);
  }

  // Sink thread. The core encodes in JSON unless the instance sets a `format` key, which this
  // sink does not declare.
  needle_rc write(std::span<const std::string_view> items) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (std::string_view item : items) {
      ++total_;
      auto it = by_type_.find(type_of(item));
      if (it == by_type_.end()) {
        it = by_type_.emplace(std::string(type_of(item)), 0).first;
      }
      ++it->second;
    }
    return NEEDLE_OK;
  }

 private:
  std::string label_;
  std::mutex mu_;
  uint64_t total_ = 0;
  std::map<std::string, uint64_t, std::less<>> by_type_;
};

}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_SINK, CounterSink, "counter", "0.1.0",
              "Example: counts events by type and logs the totals at exit", "alpha", kKeys)
