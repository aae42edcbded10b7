#include "file_hasher.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <thread>

namespace needle::hash {

namespace {

constexpr size_t kChunk = 256 * 1024;

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

std::string to_hex(const unsigned char* d, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kHex[d[i] >> 4];
    out[2 * i + 1] = kHex[d[i] & 0xf];
  }
  return out;
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
};

}  // namespace

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) {
    return {};
  }
  return to_hex(md, len);
}

RateLimiter::RateLimiter(uint64_t bytes_per_s)
    : rate_(static_cast<double>(bytes_per_s)), tokens_(rate_), last_(Clock::now()) {}

bool RateLimiter::acquire(uint64_t bytes, const std::atomic<bool>& stop) {
  const double need = std::min(static_cast<double>(bytes), rate_);
  while (true) {
    auto now = Clock::now();
    tokens_ = std::min(rate_, tokens_ + rate_ * std::chrono::duration<double>(now - last_).count());
    last_ = now;
    if (tokens_ >= need) {
      tokens_ -= static_cast<double>(bytes);
      return true;
    }
    if (stop.load(std::memory_order_relaxed)) {
      return false;
    }
    auto wait = std::chrono::duration<double>((need - tokens_) / rate_);
    std::this_thread::sleep_for(
        std::min<std::chrono::duration<double>>(wait, std::chrono::milliseconds(20)));
  }
}

FileHasher::FileHasher(uint64_t max_file_bytes, uint64_t bytes_per_s, size_t cache_entries,
                       std::string proc_root)
    : max_file_bytes_(max_file_bytes),
      limiter_(bytes_per_s),
      cache_(cache_entries),
      proc_(std::move(proc_root)),
      buf_(kChunk) {}

int FileHasher::open_exe(uint32_t pid, std::string_view exe) const {
  if (pid != 0) {
    // /proc/<pid>/exe is the file the process runs, whatever its path names now. Use it only
    // when it is still the program of the event (the process may have exec'd again).
    std::string link = proc_ + "/" + std::to_string(pid) + "/exe";
    char target[4096];
    ssize_t n = ::readlink(link.c_str(), target, sizeof target);
    if (n > 0 && static_cast<size_t>(n) < sizeof target) {
      std::string_view t(target, static_cast<size_t>(n));
      if (t.ends_with(" (deleted)")) {
        t.remove_suffix(10);
      }
      if (t == exe) {
        int fd = ::open(link.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
          return fd;
        }
      }
    }
  }
  if (exe.empty() || exe.front() != '/') {
    return -1;  // a memfd or a relative (truncated) path: nothing to open by name
  }
  std::string path(exe);
  return ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
}

HashResult FileHasher::hash_fd(int fd, const std::atomic<bool>& stop) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return {HashStatus::kUnreadable, {}};
  }
  FileKey key{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
              static_cast<int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec};
  if (const std::string* cached = cache_.find(key)) {
    ++cache_hits_;
    return {HashStatus::kOk, *cached};
  }
  if (static_cast<uint64_t>(st.st_size) > max_file_bytes_) {
    return {HashStatus::kTooLarge, {}};
  }
  MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return {HashStatus::kUnreadable, {}};
  }
  uint64_t total = 0;
  off_t off = 0;
  while (true) {
    // Charge what this read will take: the rest of the file, at most a chunk.
    const uint64_t left = static_cast<uint64_t>(st.st_size) > static_cast<uint64_t>(off)
                              ? static_cast<uint64_t>(st.st_size) - static_cast<uint64_t>(off)
                              : 1;
    if (!limiter_.acquire(std::min<uint64_t>(kChunk, left), stop)) {
      return {HashStatus::kStopped, {}};
    }
    ssize_t n = ::pread(fd, buf_.data(), buf_.size(), off);
    if (n < 0) {
      return {HashStatus::kUnreadable, {}};
    }
    if (n == 0) {
      break;
    }
    total += static_cast<uint64_t>(n);
    off += n;
    if (total > max_file_bytes_) {
      return {HashStatus::kTooLarge, {}};  // it grew while we read
    }
    if (EVP_DigestUpdate(ctx.get(), buf_.data(), static_cast<size_t>(n)) != 1) {
      return {HashStatus::kUnreadable, {}};
    }
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), md, &len) != 1) {
    return {HashStatus::kUnreadable, {}};
  }
  ++files_hashed_;
  bytes_hashed_ += total;
  std::string hex = to_hex(md, len);
  cache_.put(key, hex);
  return {HashStatus::kOk, std::move(hex)};
}

HashResult FileHasher::hash_exe(uint32_t pid, std::string_view exe, const std::atomic<bool>& stop) {
  Fd f{open_exe(pid, exe)};
  if (f.fd < 0) {
    return {HashStatus::kUnreadable, {}};
  }
  return hash_fd(f.fd, stop);
}

}  // namespace needle::hash
