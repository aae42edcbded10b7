// A sink standing in for a backend that is down: while `down_file` exists every write returns
// NEEDLE_RETRY; otherwise it appends each event as a line to `path`. (A fault a real peer
// cannot be made to produce on cue; the network sinks test real outages with real peers.)
#include <sys/stat.h>

#include <fstream>

#include "needle/plugin.h"

namespace {
class FlakySink final : public needle::Sink {
 public:
  FlakySink(needle::Host host, const needle::Config& cfg)
      : Sink(host), path_(cfg.get_string("path")), down_(cfg.get_string("down_file")) {}
  needle_rc write(std::span<const std::string_view> items) override {
    struct stat st {};
    if (stat(down_.c_str(), &st) == 0) {
      host().set_error("backend down (" + down_ + " exists)");
      return NEEDLE_RETRY;
    }
    std::ofstream out(path_, std::ios::app);
    for (auto item : items) {
      out << item << "\n";
    }
    return out ? NEEDLE_OK : NEEDLE_ERROR;
  }
 private:
  std::string path_;
  std::string down_;
};
constexpr needle_config_key kKeys[] = {
    needle::key_required(NEEDLE_CFG_PATH, "path", "where delivered events go"),
    needle::key_required(NEEDLE_CFG_PATH, "down_file", "while this file exists: NEEDLE_RETRY"),
};
}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_SINK, FlakySink, "flaky", "0.0.1", "a backend that can be down (tests)",
              "wip", kKeys)
