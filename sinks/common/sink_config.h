// Pieces of a network sink's plugin that every sink needs the same: the files its configuration
// names, resuming a batch the core offers again after NEEDLE_RETRY, and reporting retries.
#ifndef NEEDLE_SINKS_SINK_CONFIG_H
#define NEEDLE_SINKS_SINK_CONFIG_H

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "needle/plugin.h"

namespace needle::sinks {

/// The file named by `key` ("" when unset). A file that does not exist, or is not a regular
/// file, is a configuration error naming the key now; one this user may not see (needle check
/// run as another user than the daemon) is left for the sink's start to report.
inline std::string configured_file(const Config& cfg, const char* key) {
  std::string path = cfg.get_string(key);
  if (path.empty()) {
    return path;
  }
  std::error_code ec;
  auto type = std::filesystem::status(path, ec).type();
  if (type == std::filesystem::file_type::not_found) {
    throw ConfigError(key, std::string(key) + " '" + path + "': no such file");
  }
  if (!ec && type != std::filesystem::file_type::regular) {
    throw ConfigError(key, std::string(key) + " '" + path + "' is not a regular file");
  }
  return path;
}

/// Where a batch the core offers again after NEEDLE_RETRY resumes, so that what the peer
/// already accepted (requests, datagrams) is not sent twice. The core re-offers the same batch;
/// its size and first and last events identify it.
class BatchCursor {
 public:
  size_t resume_at(std::span<const std::string_view> items) const {
    if (done_ == 0 || items.size() != count_ || items.front() != first_ || items.back() != last_) {
      return 0;
    }
    return done_;
  }
  void save(std::span<const std::string_view> items, size_t done) {
    count_ = items.size();
    done_ = done;
    first_.assign(items.front());
    last_.assign(items.back());
  }
  void clear() { done_ = 0; }

 private:
  size_t count_ = 0;
  size_t done_ = 0;
  std::string first_;
  std::string last_;
};

/// What a sink says about failed deliveries: a warning when a write fails (then at most every
/// 5 s while it keeps failing), the error for the metrics, NEEDLE_RETRY so the core offers the
/// batch again, and one line when delivery resumes.
class RetryReport {
 public:
  /// A write succeeded; `peer` names where delivery resumed.
  void succeeded(const Host& host, const std::string& peer) {
    if (failures_ > 0) {
      host.info("delivery to " + peer + " resumed after " + std::to_string(failures_) +
                " failed attempts");
      failures_ = 0;
    }
  }
  /// A write failed with `message`; returns NEEDLE_RETRY.
  needle_rc failed(const Host& host, const std::string& message) {
    ++failures_;
    auto now = std::chrono::steady_clock::now();
    if (failures_ == 1 || now - last_warn_ > std::chrono::seconds(5)) {
      host.warn(message + "; the batch will be offered again" +
                (failures_ > 1 ? " (" + std::to_string(failures_) + " failures so far)" : ""));
      last_warn_ = now;
    }
    host.set_error(message);
    return NEEDLE_RETRY;
  }

 private:
  uint64_t failures_ = 0;
  std::chrono::steady_clock::time_point last_warn_{};
};

}  // namespace needle::sinks

#endif  // NEEDLE_SINKS_SINK_CONFIG_H
