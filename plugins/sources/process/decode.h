// Decoding of the `process` source's ring records (bpf/include/process_record.h). Pure: bytes in,
// a ProcessRecord out; no host, no kernel, no allocation on success.
#ifndef NEEDLE_PLUGINS_SOURCES_PROCESS_DECODE_H
#define NEEDLE_PLUGINS_SOURCES_PROCESS_DECODE_H

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "needle/bpf/record.h"
#include "needle/result.h"

namespace needle::process {

enum class Kind : uint16_t { kExec = 1, kFork = 2, kExit = 3, kSnapshot = 4 };

/// "process.exec", "process.fork", "process.exit" or "process.snapshot".
std::string_view event_type(Kind kind);

/// The argument block of a record: each argument followed by a NUL, the last one possibly
/// without (when it was cut short). Iterates the arguments as views into the block, without
/// copying; an empty argument ("") is an argument.
class ArgList {
 public:
  class Iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = std::string_view;
    using difference_type = std::ptrdiff_t;
    using pointer = const std::string_view*;
    using reference = std::string_view;

    Iterator() = default;
    Iterator(std::string_view block, std::size_t pos) : block_(block), pos_(pos) { load(); }
    std::string_view operator*() const { return current_; }
    Iterator& operator++() {
      pos_ = next_;
      load();
      return *this;
    }
    Iterator operator++(int) {
      Iterator old = *this;
      ++*this;
      return old;
    }
    bool operator==(const Iterator& other) const { return pos_ == other.pos_; }

   private:
    void load();
    std::string_view block_;
    std::size_t pos_ = 0;
    std::size_t next_ = 0;
    std::string_view current_;
  };

  ArgList() = default;
  explicit ArgList(std::string_view block) : block_(block) {}
  Iterator begin() const { return Iterator(block_, 0); }
  Iterator end() const { return Iterator(block_, block_.size()); }
  bool empty() const { return block_.empty(); }
  std::size_t count() const;
  std::string_view block() const { return block_; }

 private:
  std::string_view block_;
};

/// One decoded record. The views point into the bytes given to decode_process and are valid only
/// as long as those are (for a ring record: during the decode callback).
struct ProcessRecord {
  Kind kind = Kind::kExec;
  needle_task_ctx task{};  // exec/exit: the task; fork: the child; snapshot: the iterated leader
  uint64_t boot_ns = 0;

  // exec, fork, snapshot
  std::string_view exe;  // empty when the task has no executable (a kernel thread)
  uint64_t exe_ino = 0;
  uint64_t exe_dev = 0;  // kernel s_dev encoding
  bool exe_truncated = false;
  bool exe_memfd = false;
  bool exe_deleted = false;
  bool fileless() const { return exe_memfd || exe_deleted; }

  // exec, snapshot
  std::string_view script;  // empty when no interpreter ran (or not known on the rung)
  bool script_truncated = false;
  bool script_from_user = false;  // the execve filename string, possibly relative to cwd
  std::optional<std::string_view> cwd;
  bool cwd_truncated = false;
  std::optional<ArgList> args;  // absent when not captured (rung, config, kernel thread)
  bool args_truncated = false;

  // exit: exactly one of the two is set
  std::optional<uint8_t> exit_code;
  std::optional<uint8_t> exit_signal;
  bool core_dumped = false;
};

/// Decodes one record (header included). Fails, without reading past `raw`, for a record shorter
/// than its layout, a header size past the buffer, lengths that do not add up to the record's
/// size, another layout version or an unknown kind. Bytes past hdr.size are ignored.
Result<ProcessRecord> decode_process(std::span<const std::byte> raw);

/// The script as an absolute path when it is a relative execve filename and the cwd is known:
/// cwd + "/" + script, leading "./" dropped (no other normalisation: ".." may cross a symlink).
/// Returns `script` itself otherwise. The result may live in `buf`.
std::string_view absolute_script(const ProcessRecord& rec, std::string& buf);

}  // namespace needle::process

#endif  // NEEDLE_PLUGINS_SOURCES_PROCESS_DECODE_H
