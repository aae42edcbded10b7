// Buffered writes of encoded events to a file descriptor, shared by the stdout and file sinks.
// JSON events are framed as lines; msgpack events are self-delimiting and written as they are.
#ifndef NEEDLE_SINKS_FD_WRITER_H
#define NEEDLE_SINKS_FD_WRITER_H

#include <span>
#include <string>
#include <string_view>

#include "needle/result.h"

namespace needle::sinks {

enum class Framing { kJsonLines, kMsgpack };

Result<Framing> parse_format(const std::string& format);

class FdWriter {
 public:
  FdWriter() = default;
  ~FdWriter();
  FdWriter(const FdWriter&) = delete;
  FdWriter& operator=(const FdWriter&) = delete;

  /// Takes ownership of `fd` unless `owned` is false (stdout).
  void reset(int fd, bool owned);
  int fd() const { return fd_; }
  /// Appends each event (and a newline for JSON) and writes when the buffer is large.
  Result<void> write(std::span<const std::string_view> items, Framing framing);
  /// Writes everything buffered.
  Result<void> flush();
  /// flush() then fdatasync().
  Result<void> sync();

 private:
  int fd_ = -1;
  bool owned_ = false;
  std::string buf_;
};

}  // namespace needle::sinks

#endif  // NEEDLE_SINKS_FD_WRITER_H
