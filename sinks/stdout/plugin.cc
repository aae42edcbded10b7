// sink/stdout: events on standard output, JSON lines or msgpack.
#include <unistd.h>

#include "fd_writer.h"
#include "needle/plugin.h"

namespace {

class StdoutSink final : public needle::Sink {
 public:
  StdoutSink(needle::Host host, const needle::Config& cfg) : Sink(host) {
    auto f = needle::sinks::parse_format(cfg.get_string("format"));
    if (!f) {
      throw needle::ConfigError("format", f.error().message);
    }
    framing_ = *f;
    out_.reset(STDOUT_FILENO, false);
  }
  needle_rc write(std::span<const std::string_view> items) override {
    auto r = out_.write(items, framing_);
    if (!r) {
      host().set_error(r.error().message);
      return NEEDLE_ERROR;
    }
    // stdout is usually read live: hand every batch over.
    r = out_.flush();
    if (!r) {
      host().set_error(r.error().message);
      return NEEDLE_ERROR;
    }
    return NEEDLE_OK;
  }
  needle_rc flush() override { return out_.flush() ? NEEDLE_OK : NEEDLE_ERROR; }

 private:
  needle::sinks::Framing framing_ = needle::sinks::Framing::kJsonLines;
  needle::sinks::FdWriter out_;
};

constexpr needle_config_key kKeys[] = {
    needle::key_string("format", "\"json\"", "json (one event per line) or msgpack"),
};

}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_SINK, StdoutSink, "stdout", "0.1.0",
              "Writes events to standard output", "stable", kKeys)
