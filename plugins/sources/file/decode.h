// Decoding of the `file` source's ring records (bpf/include/file_record.h). Pure: bytes in, a
// FileRecord out; no host, no kernel.
#ifndef NEEDLE_PLUGINS_SOURCES_FILE_DECODE_H
#define NEEDLE_PLUGINS_SOURCES_FILE_DECODE_H

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "needle/bpf/record.h"
#include "needle/result.h"

namespace needle::file {

enum class Kind : uint16_t {
  kOpen = 1,
  kUnlink = 2,
  kRename = 3,
  kChmod = 4,
  kChown = 5,
  kLink = 6,
  kSymlink = 7,
  kCalibration = 8,
};

/// One decoded record. The views point into the bytes given to decode_file and are valid only as
/// long as those are (for a ring record: during the decode callback).
struct FileRecord {
  Kind kind = Kind::kOpen;
  needle_task_ctx task{};
  uint64_t boot_ns = 0;
  uint32_t flags = 0;     // FILE_F_*
  uint32_t op_flags = 0;  // see file_record.op_flags
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint16_t syscall = 0;
  uint8_t abi = 0;
  uint8_t route = 0;
  uint64_t ino = 0;
  uint64_t dev = 0;  // kernel encoding
  std::string_view path;
  std::string_view new_path;

  bool created() const;
  bool path_from_user() const;
  bool has_inode() const;
};

/// Decodes one record (header included). Fails, without reading past `raw`, for a record shorter
/// than its fixed part, a header size past the buffer, path lengths that do not add up to the
/// size, another layout version or an unknown kind.
Result<FileRecord> decode_file(std::span<const std::byte> raw);

/// "file.open", "file.create", "file.unlink", ... ("" for the calibration record).
std::string_view event_type(const FileRecord& rec);

/// Names of a flag word, without allocation: views of static strings (and of `unknown`).
struct FlagNames {
  std::array<std::string_view, 24> names;
  std::size_t count = 0;
  char unknown[16] = {};
};

/// The names of open(2) flags, access mode first ("O_WRONLY", "O_CREAT", ...); bits without a
/// name as one "0x..." entry.
void open_flag_names(uint32_t flags, FlagNames& out);

/// The names of a record's op_flags as its kind reads them: open flags (open), AT_REMOVEDIR
/// (unlink), RENAME_* (rename), AT_* (chmod, chown, link). Empty for 0 (open: never empty).
void op_flag_names(const FileRecord& rec, FlagNames& out);

using RouteBuf = std::array<char, 48>;

/// The route: the syscall's name ("openat"), "ia32:" before a compat one, "io_uring:" before an
/// io_uring opcode ("io_uring:openat"); "syscall:<n>" / "io_uring:<n>" when unknown. The view
/// lives in `buf`.
std::string_view route_name(uint8_t route, uint8_t abi, uint16_t syscall, RouteBuf& buf);

/// A kernel s_dev (major << 20 | minor) in user space's st_dev encoding (glibc makedev).
uint64_t user_dev(uint64_t kernel_dev);

/// Permission bits as four octal digits ("0644", "4755").
std::string octal_mode(uint32_t mode);

/// A `paths` / `exclude_paths` entry as the kernel side compares it: absolute, no trailing slash
/// ("/" stays "/"), at most 255 bytes, no NUL. Errors name the value.
Result<std::string> normalize_prefix(std::string_view value);

}  // namespace needle::file

#endif  // NEEDLE_PLUGINS_SOURCES_FILE_DECODE_H
