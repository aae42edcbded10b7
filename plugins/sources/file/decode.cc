#include "decode.h"

#include <sys/sysmacros.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <utility>

#include "file_record.h"

static_assert(sizeof(file_record) == FILE_RECORD_FIXED_SIZE, "file_record layout");
static_assert(offsetof(file_record, flags) == NEEDLE_RECORD_HEADER_SIZE, "file_record layout");
static_assert(offsetof(file_record, path_len) == 108, "file_record layout");
static_assert(offsetof(file_record, syscall) == 112, "file_record layout");
static_assert(offsetof(file_record, ino) == 120, "file_record layout");

namespace needle::file {
namespace {

std::string_view view(std::span<const std::byte> bytes, std::size_t offset, std::size_t len) {
  return std::string_view(reinterpret_cast<const char*>(bytes.data()) + offset, len);
}

struct FlagName {
  uint32_t bits;
  const char* name;
};

// x86/generic uapi values (include/uapi/asm-generic/fcntl.h), as the kernel reports them.
constexpr FlagName kOpenFlags[] = {
    {00000100, "O_CREAT"},     {00000200, "O_EXCL"},     {00000400, "O_NOCTTY"},
    {00001000, "O_TRUNC"},     {00002000, "O_APPEND"},   {00004000, "O_NONBLOCK"},
    {04010000, "O_SYNC"},  // __O_SYNC | O_DSYNC: before O_DSYNC
    {00010000, "O_DSYNC"},     {00020000, "O_ASYNC"},    {00040000, "O_DIRECT"},
    {00100000, "O_LARGEFILE"}, {020200000, "O_TMPFILE"},  // __O_TMPFILE | O_DIRECTORY: before
                                                          // O_DIRECTORY
    {00200000, "O_DIRECTORY"}, {00400000, "O_NOFOLLOW"}, {01000000, "O_NOATIME"},
    {02000000, "O_CLOEXEC"},   {010000000, "O_PATH"},
};

struct SyscallName {
  uint16_t nr64;
  uint16_t nr32;
  const char* name;
};

constexpr uint16_t kNone = 0xffff;
constexpr SyscallName kSyscalls[] = {
    {FILE_NR64_OPEN, FILE_NR32_OPEN, "open"},
    {FILE_NR64_CREAT, FILE_NR32_CREAT, "creat"},
    {FILE_NR64_OPENAT, FILE_NR32_OPENAT, "openat"},
    {FILE_NR64_OPENAT2, FILE_NR32_OPENAT2, "openat2"},
    {FILE_NR64_OPEN_BY_HANDLE_AT, FILE_NR32_OPEN_BY_HANDLE_AT, "open_by_handle_at"},
    {FILE_NR64_RENAME, FILE_NR32_RENAME, "rename"},
    {FILE_NR64_RENAMEAT, FILE_NR32_RENAMEAT, "renameat"},
    {FILE_NR64_RENAMEAT2, FILE_NR32_RENAMEAT2, "renameat2"},
    {FILE_NR64_UNLINK, FILE_NR32_UNLINK, "unlink"},
    {FILE_NR64_UNLINKAT, FILE_NR32_UNLINKAT, "unlinkat"},
    {FILE_NR64_RMDIR, FILE_NR32_RMDIR, "rmdir"},
    {FILE_NR64_CHMOD, FILE_NR32_CHMOD, "chmod"},
    {FILE_NR64_FCHMOD, FILE_NR32_FCHMOD, "fchmod"},
    {FILE_NR64_FCHMODAT, FILE_NR32_FCHMODAT, "fchmodat"},
    {FILE_NR64_FCHMODAT2, FILE_NR32_FCHMODAT2, "fchmodat2"},
    {FILE_NR64_CHOWN, FILE_NR32_CHOWN, "chown"},
    {FILE_NR64_FCHOWN, FILE_NR32_FCHOWN, "fchown"},
    {FILE_NR64_LCHOWN, FILE_NR32_LCHOWN, "lchown"},
    {kNone, FILE_NR32_CHOWN16, "chown16"},
    {kNone, FILE_NR32_FCHOWN16, "fchown16"},
    {kNone, FILE_NR32_LCHOWN16, "lchown16"},
    {FILE_NR64_FCHOWNAT, FILE_NR32_FCHOWNAT, "fchownat"},
    {FILE_NR64_LINK, FILE_NR32_LINK, "link"},
    {FILE_NR64_LINKAT, FILE_NR32_LINKAT, "linkat"},
    {FILE_NR64_SYMLINK, FILE_NR32_SYMLINK, "symlink"},
    {FILE_NR64_SYMLINKAT, FILE_NR32_SYMLINKAT, "symlinkat"},
};

constexpr std::pair<uint16_t, const char*> kUringOps[] = {
    {FILE_IORING_OP_OPENAT, "openat"},       {FILE_IORING_OP_OPENAT2, "openat2"},
    {FILE_IORING_OP_RENAMEAT, "renameat"},   {FILE_IORING_OP_UNLINKAT, "unlinkat"},
    {FILE_IORING_OP_SYMLINKAT, "symlinkat"}, {FILE_IORING_OP_LINKAT, "linkat"},
};

}  // namespace

bool FileRecord::created() const {
  return (flags & FILE_F_CREATED) != 0;
}
bool FileRecord::path_from_user() const {
  return (flags & FILE_F_PATH_FROM_USER) != 0;
}
bool FileRecord::has_inode() const {
  return (flags & FILE_F_HAS_INODE) != 0;
}

Result<FileRecord> decode_file(std::span<const std::byte> raw) {
  file_record fixed;
  if (raw.size() < sizeof fixed) {
    return make_error("file record of " + std::to_string(raw.size()) +
                      " bytes is shorter than its fixed part (" + std::to_string(sizeof fixed) +
                      ")");
  }
  std::memcpy(&fixed, raw.data(), sizeof fixed);
  if (fixed.hdr.size > raw.size() || fixed.hdr.size < sizeof fixed) {
    return make_error("file record claims " + std::to_string(fixed.hdr.size) + " bytes but " +
                      std::to_string(raw.size()) + " arrived");
  }
  if (fixed.hdr.version != FILE_RECORD_VERSION) {
    return make_error("file record layout version " + std::to_string(fixed.hdr.version) +
                      " (this plugin reads " + std::to_string(FILE_RECORD_VERSION) + ")");
  }
  if (fixed.hdr.kind < FILE_KIND_OPEN || fixed.hdr.kind > FILE_KIND_CALIBRATION) {
    return make_error("unknown file record kind " + std::to_string(fixed.hdr.kind));
  }
  const std::span<const std::byte> rec = raw.first(fixed.hdr.size);
  if (uint64_t{fixed.path_len} + fixed.new_path_len != rec.size() - sizeof fixed) {
    return make_error("file record path lengths (" + std::to_string(fixed.path_len) + " and " +
                      std::to_string(fixed.new_path_len) + ") do not match its size (" +
                      std::to_string(rec.size()) + ")");
  }
  FileRecord out;
  out.kind = static_cast<Kind>(fixed.hdr.kind);
  out.task = fixed.hdr.task;
  out.boot_ns = fixed.hdr.boot_ns;
  out.flags = fixed.flags;
  out.op_flags = fixed.op_flags;
  out.mode = fixed.mode;
  out.uid = fixed.uid;
  out.gid = fixed.gid;
  out.syscall = fixed.syscall;
  out.abi = fixed.abi;
  out.route = fixed.route;
  out.ino = fixed.ino;
  out.dev = fixed.dev;
  out.path = view(rec, sizeof fixed, fixed.path_len);
  out.new_path = view(rec, sizeof fixed + fixed.path_len, fixed.new_path_len);
  return out;
}

std::string_view event_type(const FileRecord& rec) {
  switch (rec.kind) {
    case Kind::kOpen:
      return rec.created() ? "file.create" : "file.open";
    case Kind::kUnlink:
      return "file.unlink";
    case Kind::kRename:
      return "file.rename";
    case Kind::kChmod:
      return "file.chmod";
    case Kind::kChown:
      return "file.chown";
    case Kind::kLink:
      return "file.link";
    case Kind::kSymlink:
      return "file.symlink";
    case Kind::kCalibration:
      break;
  }
  return "";
}

void open_flag_names(uint32_t flags, FlagNames& out) {
  out.count = 0;
  auto add = [&out](std::string_view name) {
    if (out.count < out.names.size()) {
      out.names[out.count++] = name;
    }
  };
  static constexpr std::string_view kAccess[] = {"O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"};
  add(kAccess[flags & 3]);
  uint32_t rest = flags & ~3u;
  for (const auto& f : kOpenFlags) {
    if ((rest & f.bits) == f.bits) {
      add(f.name);
      rest &= ~f.bits;
    }
  }
  if (rest != 0) {
    int n = std::snprintf(out.unknown, sizeof out.unknown, "0x%x", rest);
    add(std::string_view(out.unknown, static_cast<size_t>(n)));
  }
}

void op_flag_names(const FileRecord& rec, FlagNames& out) {
  if (rec.kind == Kind::kOpen) {
    open_flag_names(rec.op_flags, out);
    return;
  }
  static constexpr FlagName kRename[] = {
      {1, "RENAME_NOREPLACE"}, {2, "RENAME_EXCHANGE"}, {4, "RENAME_WHITEOUT"}};
  static constexpr FlagName kAt[] = {{0x100, "AT_SYMLINK_NOFOLLOW"},
                                     {0x200, "AT_REMOVEDIR"},
                                     {0x400, "AT_SYMLINK_FOLLOW"},
                                     {0x800, "AT_NO_AUTOMOUNT"},
                                     {0x1000, "AT_EMPTY_PATH"}};
  out.count = 0;
  std::span<const FlagName> table = rec.kind == Kind::kRename ? std::span<const FlagName>(kRename)
                                                              : std::span<const FlagName>(kAt);
  uint32_t rest = rec.op_flags;
  for (const auto& f : table) {
    if ((rest & f.bits) == f.bits && out.count < out.names.size()) {
      out.names[out.count++] = f.name;
      rest &= ~f.bits;
    }
  }
  if (rest != 0 && out.count < out.names.size()) {
    int n = std::snprintf(out.unknown, sizeof out.unknown, "0x%x", rest);
    out.names[out.count++] = std::string_view(out.unknown, static_cast<size_t>(n));
  }
}

std::string_view route_name(uint8_t route, uint8_t abi, uint16_t syscall, RouteBuf& buf) {
  int n = 0;
  if (route == FILE_ROUTE_IO_URING) {
    const char* name = nullptr;
    for (const auto& [op, op_name] : kUringOps) {
      if (op == syscall) {
        name = op_name;
      }
    }
    n = name ? std::snprintf(buf.data(), buf.size(), "io_uring:%s", name)
             : std::snprintf(buf.data(), buf.size(), "io_uring:%u", unsigned{syscall});
  } else {
    const bool compat = abi == 1;
    // Each ABI's numbers to names, made once (the table's last entry for a number wins).
    struct ByNumber {
      std::array<const char*, 1024> nr64{};
      std::array<const char*, 1024> nr32{};
      ByNumber() {
        for (const auto& s : kSyscalls) {
          if (s.nr64 < nr64.size()) {
            nr64[s.nr64] = s.name;
          }
          if (s.nr32 < nr32.size()) {
            nr32[s.nr32] = s.name;
          }
        }
      }
    };
    static const ByNumber by_number;
    const auto& names = compat ? by_number.nr32 : by_number.nr64;
    const char* name = syscall < names.size() ? names[syscall] : nullptr;
    if (name != nullptr && !compat) {
      return name;   // the common case, named without a copy
    }
    n = name ? std::snprintf(buf.data(), buf.size(), "ia32:%s", name)
             : std::snprintf(buf.data(), buf.size(), "%ssyscall:%u", compat ? "ia32:" : "",
                             unsigned{syscall});
  }
  return std::string_view(buf.data(), n > 0 ? static_cast<size_t>(n) : 0);
}

uint64_t user_dev(uint64_t kernel_dev) {
  return makedev(static_cast<unsigned int>(kernel_dev >> 20),
                 static_cast<unsigned int>(kernel_dev & 0xfffff));
}

std::string octal_mode(uint32_t mode) {
  // "%04o" of the permission bits, written by hand: it runs for every file event.
  std::string out(4, '0');
  for (size_t i = 4; i-- > 0; mode >>= 3) {
    out[i] = static_cast<char>('0' + (mode & 7));
  }
  return out;
}

Result<std::string> normalize_prefix(std::string_view value) {
  if (value.empty() || value.front() != '/') {
    return make_error("'" + std::string(value) + "' is not an absolute path");
  }
  if (value.find('\0') != std::string_view::npos) {
    return make_error("a path prefix contains a NUL byte");
  }
  while (value.size() > 1 && value.back() == '/') {
    value.remove_suffix(1);
  }
  if (value.size() >= FILE_PREFIX_LEN) {
    return make_error("'" + std::string(value) + "' is longer than " +
                      std::to_string(FILE_PREFIX_LEN - 1) + " bytes");
  }
  return std::string(value);
}

}  // namespace needle::file
