// The disk spill of a sink queue (on_full = "spill"): an append-only log of encoded events in
// segment files under <state_dir>/spill/<sink id>/, bounded by buffer_max_mib, read back in
// order and kept across restarts. Not thread-safe: the owning SinkQueue serialises every call.
//
// Layout: NNNNNNNNNNNNNNNNNNNN.seg files (the number orders them); each record is a 4-byte
// little-endian length, a 4-byte CRC-32 of the bytes, then the bytes. `cursor` holds
// "<segment> <offset>" of the first record not yet acknowledged. A torn or corrupt record ends
// its segment (counted); nothing after it in that segment is trusted.
#ifndef NEEDLE_CORE_SPILL_H
#define NEEDLE_CORE_SPILL_H

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "needle/result.h"

namespace needle::core {

class DiskSpill {
 public:
  /// Opens (creating) `dir`; finds segments left by an earlier run.
  static Result<DiskSpill*> open(const std::string& dir, uint64_t max_bytes);
  ~DiskSpill();
  DiskSpill(const DiskSpill&) = delete;
  DiskSpill& operator=(const DiskSpill&) = delete;

  /// Appends one event at the tail. False when the spill is full (the caller counts a drop)
  /// or the disk refused (logged).
  bool append(std::string_view data);
  /// Writes `items` as a new segment before every other one (they are older than what the
  /// spill holds: the memory queue at shutdown). Returns how many fit under the bound.
  size_t prepend(const std::vector<const std::string*>& items);
  /// Reads up to `max` events from the head into `out` (reusing its strings), without removing
  /// them; returns the count.
  size_t peek(std::vector<std::string>& out, size_t offset, size_t max);
  /// Removes the first `n` events (after they were delivered) and persists the cursor.
  void commit(size_t n);
  bool empty() const { return count_ == 0; }
  uint64_t bytes() const { return bytes_; }
  uint64_t count() const { return count_; }
  uint64_t corrupt() const { return corrupt_; }

 private:
  DiskSpill(std::string dir, uint64_t max_bytes) : dir_(std::move(dir)), max_(max_bytes) {}
  struct Segment {
    uint64_t seq;
    uint64_t size;   // bytes in the file
  };
  std::string seg_path(uint64_t seq) const;
  bool load();
  bool open_tail();
  /// Reads the record at (head, head_off_) into `out`; false at the end of the data.
  bool read_at(size_t seg_index, uint64_t& off, std::string& out);
  void save_cursor();
  void drop_head_segment();

  std::string dir_;
  uint64_t max_;
  std::deque<Segment> segs_;
  uint64_t head_off_ = 0;     // offset of the first unacknowledged record in segs_.front()
  int tail_fd_ = -1;
  uint64_t bytes_ = 0;        // unacknowledged bytes
  uint64_t count_ = 0;        // unacknowledged records
  uint64_t corrupt_ = 0;
  // Read position after peek (segment index, offset) so that commit need not re-read.
  std::vector<std::pair<size_t, uint64_t>> peeked_;
};

}  // namespace needle::core

#endif  // NEEDLE_CORE_SPILL_H
