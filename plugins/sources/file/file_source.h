// The `file` source: opens, creations, unlink, rename, chmod, chown, link and symlink on every
// route (see README.md).
#ifndef NEEDLE_PLUGINS_SOURCES_FILE_FILE_SOURCE_H
#define NEEDLE_PLUGINS_SOURCES_FILE_FILE_SOURCE_H

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "decode.h"
#include "needle/abi.h"
#include "needle/event.h"
#include "needle/plugin.h"
#include "needle/record.h"
#include "needle/result.h"

namespace needle::file {

/// Validated configuration (keys paths, exclude_paths, read_only).
struct FileOptions {
  static constexpr std::size_t kMaxPrefixes = 8;  // FILE_PREFIX_MAX
  std::vector<std::string> paths;                 // normalized; empty: every path
  std::vector<std::string> exclude_paths;         // normalized
  bool read_only = false;
};

class FileSource : public Source {
 public:
  /// Registers the plugin's counters; no kernel I/O (this runs for `needle check`).
  FileSource(Host host, FileOptions options);

  /// The embedded object, its program table and its syscalls; valid for the plugin's lifetime.
  needle_bpf_spec bpf_spec() override;
  /// Sets read_only and the prefix tables before load.
  Result<void> bpf_configure(Bpf& bpf) override;
  /// Calibrates FMODE_CREATED: creates and reopens a file in a fresh folder under /tmp (the kernel
  /// side recognises needle's own opens of it and reports the result as a record).
  Result<void> start() override;
  /// Ring thread. A malformed record is counted, set as the last error and returned as
  /// NEEDLE_ERROR (a decode gap); the calibration record is logged and skipped.
  needle_rc decode(std::span<const std::byte> raw, Event& ev) override;

 private:
  // The `process` objects of recurring task contexts, shared (decode thread only).
  ProcessContexts contexts_{api(), host().raw()};
  // The `flags` arrays of recurring (kind, flag word) pairs, shared (decode thread only).
  FieldTemplates flag_arrays_{api(), host().raw()};
  FileOptions options_;
  uint32_t malformed_counter_;
  bool create_warned_ = false;
};

/// Maps a decoded record (not the calibration) onto `ev`; through templates of its process and
/// flags when given.
void fill_event(const needle_host_api* api, const FileRecord& rec, Event& ev,
                ProcessContexts* contexts = nullptr, FieldTemplates* flag_arrays = nullptr);

}  // namespace needle::file

#endif  // NEEDLE_PLUGINS_SOURCES_FILE_FILE_SOURCE_H
