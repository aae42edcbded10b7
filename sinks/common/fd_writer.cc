#include "fd_writer.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace needle::sinks {

namespace {
constexpr size_t kFlushAt = 1 << 16;
}

Result<Framing> parse_format(const std::string& format) {
  if (format == "json") {
    return Framing::kJsonLines;
  }
  if (format == "msgpack") {
    return Framing::kMsgpack;
  }
  return make_error("format must be json or msgpack, not '" + format + "'", "format");
}

FdWriter::~FdWriter() {
  (void)flush();
  if (owned_ && fd_ >= 0) {
    close(fd_);
  }
}

void FdWriter::reset(int fd, bool owned) {
  if (owned_ && fd_ >= 0) {
    close(fd_);
  }
  fd_ = fd;
  owned_ = owned;
}

Result<void> FdWriter::write(std::span<const std::string_view> items, Framing framing) {
  for (auto item : items) {
    buf_.append(item);
    if (framing == Framing::kJsonLines) {
      buf_.push_back('\n');
    }
    if (buf_.size() >= kFlushAt) {
      auto r = flush();
      if (!r) {
        return r;
      }
    }
  }
  return {};
}

Result<void> FdWriter::flush() {
  size_t off = 0;
  while (off < buf_.size()) {
    ssize_t n = ::write(fd_, buf_.data() + off, buf_.size() - off);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      std::string err = std::strerror(errno);
      buf_.erase(0, off);
      return make_error("write failed: " + err);
    }
    off += static_cast<size_t>(n);
  }
  buf_.clear();
  return {};
}

Result<void> FdWriter::sync() {
  auto r = flush();
  if (!r) {
    return r;
  }
  if (fd_ >= 0 && fdatasync(fd_) != 0 && errno != EINVAL && errno != EROFS) {
    return make_error(std::string("fdatasync failed: ") + std::strerror(errno));
  }
  return {};
}

}  // namespace needle::sinks
