// SHA-256 of executables, off the event path: opens the file a process runs (through
// /proc/<pid>/exe while the process lives, so a path swapped after exec does not fool it),
// caches digests by (device, inode, change time), refuses files over a size bound and paces its
// reads to a byte rate. Used by one worker thread; not thread-safe.
#ifndef NEEDLE_ENRICHERS_HASH_FILE_HASHER_H
#define NEEDLE_ENRICHERS_HASH_FILE_HASHER_H

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lru_cache.h"

namespace needle::hash {

/// How one lookup ended.
enum class HashStatus : uint8_t {
  kOk,
  kTooLarge,    // over max_file_bytes: not hashed
  kUnreadable,  // neither /proc/<pid>/exe nor the path could be opened and read
  kStopped,     // the plugin is stopping
};

struct HashResult {
  HashStatus status = HashStatus::kUnreadable;
  std::string sha256;  // 64 lower-case hex digits when kOk
};

/// A file's identity: same device, inode and change time means same content.
struct FileKey {
  uint64_t dev = 0;
  uint64_t ino = 0;
  int64_t ctime_ns = 0;
  bool operator==(const FileKey&) const = default;
};
struct FileKeyHash {
  size_t operator()(const FileKey& k) const {
    return static_cast<size_t>(k.dev * 0x9e3779b97f4a7c15ull ^ k.ino * 0xc2b2ae3d27d4eb4full ^
                               static_cast<uint64_t>(k.ctime_ns));
  }
};

/// Paces reads to `bytes_per_s` with a one-second burst.
class RateLimiter {
 public:
  explicit RateLimiter(uint64_t bytes_per_s);
  /// Blocks until `bytes` may be read; returns false when `stop` became true while waiting.
  bool acquire(uint64_t bytes, const std::atomic<bool>& stop);

 private:
  using Clock = std::chrono::steady_clock;
  double rate_;
  double tokens_;
  Clock::time_point last_;
};

class FileHasher {
 public:
  FileHasher(uint64_t max_file_bytes, uint64_t bytes_per_s, size_t cache_entries,
             std::string proc_root = "/proc");

  /// The digest of the program `exe` that process `pid` runs (pid 0: the path alone).
  HashResult hash_exe(uint32_t pid, std::string_view exe, const std::atomic<bool>& stop);

  uint64_t files_hashed() const { return files_hashed_; }
  uint64_t bytes_hashed() const { return bytes_hashed_; }
  uint64_t cache_hits() const { return cache_hits_; }

 private:
  int open_exe(uint32_t pid, std::string_view exe) const;
  HashResult hash_fd(int fd, const std::atomic<bool>& stop);

  uint64_t max_file_bytes_;
  RateLimiter limiter_;
  enrich::LruCache<FileKey, std::string, FileKeyHash> cache_;
  std::string proc_;
  std::vector<unsigned char> buf_;
  uint64_t files_hashed_ = 0;
  uint64_t bytes_hashed_ = 0;
  uint64_t cache_hits_ = 0;
};

/// Lower-case hex SHA-256 of a byte string (tests, and the digest helper of hash_fd).
std::string sha256_hex(std::string_view data);

}  // namespace needle::hash

#endif  // NEEDLE_ENRICHERS_HASH_FILE_HASHER_H
