// sink/file: events appended to a file; reopened on SIGHUP (logrotate), synced at shutdown.
#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "fd_writer.h"
#include "needle/plugin.h"

namespace {

class FileSink final : public needle::Sink {
 public:
  FileSink(needle::Host host, const needle::Config& cfg)
      : Sink(host), path_(cfg.get_string("path")) {
    auto f = needle::sinks::parse_format(cfg.get_string("format"));
    if (!f) {
      throw needle::ConfigError("format", f.error().message);
    }
    framing_ = *f;
    int64_t mode = cfg.get_int("mode");
    if (mode < 0 || mode > 0777) {
      throw needle::ConfigError("mode", "mode must be a permission like 0o640 (0 to 0o777)");
    }
    mode_ = static_cast<mode_t>(mode);
    if (path_.empty() || path_.back() == '/') {
      throw needle::ConfigError("path", "path must name a file");
    }
  }

  needle::Result<void> start() override { return open_file(); }

  needle_rc write(std::span<const std::string_view> items) override {
    if (reopen_.exchange(false)) {
      (void)out_.flush();
      auto r = open_file();
      if (!r) {
        host().warn("reopen failed, still writing to the old file: " + r.error().message);
      } else {
        host().info("reopened " + path_);
      }
    }
    auto r = out_.write(items, framing_);
    if (!r) {
      host().set_error(path_ + ": " + r.error().message);
      return NEEDLE_ERROR;   // counted as failed; what stayed buffered is written later
    }
    return NEEDLE_OK;
  }

  needle_rc flush() override {
    auto r = out_.flush();
    if (!r) {
      host().set_error(path_ + ": " + r.error().message);
      return NEEDLE_ERROR;
    }
    return NEEDLE_OK;
  }

  void reopen() override { reopen_ = true; }

  void stop() override { (void)out_.sync(); }

 private:
  needle::Result<void> open_file() {
    std::error_code ec;
    std::filesystem::path parent = std::filesystem::path(path_).parent_path();
    if (!parent.empty()) {
      std::filesystem::create_directories(parent, ec);
      if (ec) {
        return needle::make_error("cannot create folder " + parent.string() + ": " +
                                  ec.message());
      }
    }
    int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode_);
    if (fd < 0) {
      return needle::make_error("cannot open " + path_ + ": " + std::strerror(errno));
    }
    out_.reset(fd, true);
    return {};
  }

  std::string path_;
  mode_t mode_ = 0640;
  needle::sinks::Framing framing_ = needle::sinks::Framing::kJsonLines;
  needle::sinks::FdWriter out_;
  std::atomic<bool> reopen_{false};
};

constexpr needle_config_key kKeys[] = {
    needle::key_required(NEEDLE_CFG_PATH, "path",
                         "file to append to (relative: to the config's folder); parents made"),
    needle::key_string("format", "\"json\"", "json (one event per line) or msgpack"),
    needle::key_int("mode", "0o640", "permissions of a file this sink creates"),
};

}  // namespace

NEEDLE_PLUGIN(NEEDLE_KIND_SINK, FileSink, "file", "0.1.0",
              "Appends events to a file, reopened on SIGHUP", "stable", kKeys)
