#include "spill.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace needle::core {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kSegmentBytes = 4ull << 20;
constexpr size_t kRecordHeader = 8;

uint32_t crc(std::string_view s) {
  return static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
}

bool write_all(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = ::write(fd, c, n);
    if (w < 0 && errno == EINTR) {
      continue;
    }
    if (w <= 0) {
      return false;
    }
    c += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool append_record(int fd, std::string_view data) {
  uint32_t hdr[2] = {static_cast<uint32_t>(data.size()), crc(data)};
  return write_all(fd, hdr, sizeof hdr) && write_all(fd, data.data(), data.size());
}

}  // namespace

Result<DiskSpill*> DiskSpill::open(const std::string& dir, uint64_t max_bytes) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return make_error("cannot create spill folder " + dir + ": " + ec.message());
  }
  auto* s = new DiskSpill(dir, max_bytes);
  if (!s->load()) {
    delete s;
    return make_error("cannot read spill folder " + dir);
  }
  return s;
}

DiskSpill::~DiskSpill() {
  if (tail_fd_ >= 0) {
    fdatasync(tail_fd_);
    close(tail_fd_);
  }
}

std::string DiskSpill::seg_path(uint64_t seq) const {
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.seg", static_cast<unsigned long long>(seq));
  return dir_ + "/" + name;
}

bool DiskSpill::load() {
  std::error_code ec;
  for (auto& de : fs::directory_iterator(dir_, ec)) {
    std::string name = de.path().filename().string();
    if (name.size() == 24 && name.substr(20) == ".seg") {
      segs_.push_back(Segment{std::stoull(name.substr(0, 20)), de.file_size(ec)});
    }
  }
  if (ec) {
    return false;
  }
  std::sort(segs_.begin(), segs_.end(),
            [](const Segment& a, const Segment& b) { return a.seq < b.seq; });
  std::ifstream cur(dir_ + "/cursor");
  uint64_t cseq = 0;
  uint64_t coff = 0;
  if (cur >> cseq >> coff) {
    while (!segs_.empty() && segs_.front().seq < cseq) {
      fs::remove(seg_path(segs_.front().seq), ec);   // fully delivered before the restart
      segs_.pop_front();
    }
    if (!segs_.empty() && segs_.front().seq == cseq && coff <= segs_.front().size) {
      head_off_ = coff;
    }
  }
  // Count what is left (and stop each segment at its first bad record).
  for (size_t i = 0; i < segs_.size(); ++i) {
    uint64_t off = i == 0 ? head_off_ : 0;
    std::string rec;
    while (read_at(i, off, rec)) {
      ++count_;
      bytes_ += rec.size() + kRecordHeader;
    }
    segs_[i].size = off;   // a torn tail is cut off here
  }
  if (count_ > 0) {
    spdlog::info("spill {}: {} events ({} bytes) left by an earlier run will be delivered first",
                 dir_, count_, bytes_);
  }
  return true;
}

bool DiskSpill::open_tail() {
  if (tail_fd_ >= 0 && !segs_.empty() && segs_.back().size < kSegmentBytes) {
    return true;
  }
  if (tail_fd_ >= 0) {
    close(tail_fd_);
    tail_fd_ = -1;
  }
  uint64_t seq = segs_.empty() ? 1000000000ull : segs_.back().seq + 1;
  if (!segs_.empty() && segs_.back().size < kSegmentBytes) {
    seq = segs_.back().seq;   // keep appending to the last segment of an earlier run
  } else {
    segs_.push_back(Segment{seq, 0});
  }
  tail_fd_ = ::open(seg_path(seq).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (tail_fd_ < 0) {
    spdlog::error("spill {}: cannot open segment: {}", dir_, std::strerror(errno));
    return false;
  }
  if (ftruncate(tail_fd_, static_cast<off_t>(segs_.back().size)) != 0) {
    spdlog::warn("spill {}: cannot trim a torn segment: {}", dir_, std::strerror(errno));
  }
  return true;
}

bool DiskSpill::append(std::string_view data) {
  uint64_t need = data.size() + kRecordHeader;
  if (bytes_ + need > max_) {
    return false;
  }
  if (!open_tail() || !append_record(tail_fd_, data)) {
    static int warned = 0;
    if (warned++ < 10) {
      spdlog::error("spill {}: write failed: {}", dir_, std::strerror(errno));
    }
    return false;
  }
  segs_.back().size += need;
  bytes_ += need;
  ++count_;
  return true;
}

size_t DiskSpill::prepend(const std::vector<const std::string*>& items) {
  if (items.empty()) {
    return 0;
  }
  if (!segs_.empty() && head_off_ > 0) {
    // The head segment is partly delivered: keep only its unread part, so that the new
    // segment can go in front of it with the order exact.
    std::string path = seg_path(segs_.front().seq);
    std::string rest;
    {
      std::ifstream in(path, std::ios::binary);
      in.seekg(static_cast<std::streamoff>(head_off_));
      rest.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    if (segs_.size() == 1 && tail_fd_ >= 0) {
      close(tail_fd_);
      tail_fd_ = -1;
    }
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << rest;
    segs_.front().size = rest.size();
    head_off_ = 0;
  }
  uint64_t seq = segs_.empty() ? 1000000000ull : segs_.front().seq - 1;
  int fd = ::open(seg_path(seq).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    spdlog::error("spill {}: cannot write: {}", dir_, std::strerror(errno));
    return 0;
  }
  uint64_t size = 0;
  size_t n = 0;
  for (const std::string* item : items) {
    uint64_t need = item->size() + kRecordHeader;
    if (bytes_ + need > max_ || !append_record(fd, *item)) {
      break;   // over the bound (or the disk refused): the caller counts the rest as dropped
    }
    size += need;
    bytes_ += need;
    ++count_;
    ++n;
  }
  fdatasync(fd);
  close(fd);
  segs_.push_front(Segment{seq, size});
  save_cursor();
  return n;
}

bool DiskSpill::read_at(size_t seg_index, uint64_t& off, std::string& out) {
  const Segment& seg = segs_[seg_index];
  if (off + kRecordHeader > seg.size && seg_index + 1 < segs_.size()) {
    return false;
  }
  int fd = ::open(seg_path(seg.seq).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  uint32_t hdr[2];
  bool ok = pread(fd, hdr, sizeof hdr, static_cast<off_t>(off)) == sizeof hdr;
  if (ok) {
    out.resize(hdr[0]);
    ok = hdr[0] <= (64u << 20) &&
         pread(fd, out.data(), hdr[0], static_cast<off_t>(off + kRecordHeader)) ==
             static_cast<ssize_t>(hdr[0]) &&
         crc(out) == hdr[1];
    if (!ok) {
      ++corrupt_;
      spdlog::warn("spill {}: torn or corrupt record at {}:{}; the rest of that segment is "
                   "skipped",
                   dir_, seg_path(seg.seq), off);
    }
  }
  close(fd);
  if (ok) {
    off += kRecordHeader + hdr[0];
  }
  return ok;
}

size_t DiskSpill::peek(std::vector<std::string>& out, size_t offset, size_t max) {
  peeked_.clear();
  size_t n = 0;
  size_t seg = 0;
  uint64_t off = head_off_;
  if (out.size() < offset + max) {
    out.resize(offset + max);
  }
  while (n < max && seg < segs_.size()) {
    if (off >= segs_[seg].size) {
      ++seg;
      off = 0;
      continue;
    }
    uint64_t before = off;
    if (!read_at(seg, off, out[offset + n])) {
      // Corrupt: treat the rest of this segment as gone.
      uint64_t lost = segs_[seg].size - before;
      segs_[seg].size = before;
      bytes_ = bytes_ > lost ? bytes_ - lost : 0;
      continue;
    }
    ++n;
    peeked_.emplace_back(seg, off);
  }
  return n;
}

void DiskSpill::commit(size_t n) {
  if (n == 0 || peeked_.empty()) {
    return;
  }
  n = std::min(n, peeked_.size());
  auto [seg, off] = peeked_[n - 1];
  uint64_t consumed = 0;
  // Bytes between the old head and the new position.
  for (size_t i = 0; i <= seg && i < segs_.size(); ++i) {
    uint64_t from = i == 0 ? head_off_ : 0;
    uint64_t to = i == seg ? off : segs_[i].size;
    consumed += to - from;
  }
  for (size_t i = 0; i < seg; ++i) {
    drop_head_segment();
  }
  head_off_ = off;
  bytes_ = bytes_ > consumed ? bytes_ - consumed : 0;
  count_ = count_ > n ? count_ - n : 0;
  if (!segs_.empty() && head_off_ >= segs_.front().size &&
      (segs_.size() > 1 || count_ == 0)) {
    drop_head_segment();
    head_off_ = 0;
  }
  peeked_.clear();
  save_cursor();
}

void DiskSpill::drop_head_segment() {
  if (segs_.empty()) {
    return;
  }
  if (segs_.size() == 1 && tail_fd_ >= 0) {
    close(tail_fd_);
    tail_fd_ = -1;
  }
  std::error_code ec;
  fs::remove(seg_path(segs_.front().seq), ec);
  segs_.pop_front();
}

void DiskSpill::save_cursor() {
  std::string tmp = dir_ + "/cursor.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << (segs_.empty() ? 0 : segs_.front().seq) << " " << head_off_ << "\n";
  }
  std::error_code ec;
  fs::rename(tmp, dir_ + "/cursor", ec);
}

}  // namespace needle::core
