// Unit tests of the file decoder on hand-built records (no kernel, no root).
#include "decode.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "file_record.h"

namespace needle::file {
namespace {

using Bytes = std::vector<std::byte>;

Bytes record(uint16_t kind, std::string_view path, std::string_view new_path = {},
             uint32_t flags = 0, uint32_t op_flags = 0) {
  file_record rec{};
  rec.hdr.kind = kind;
  rec.hdr.version = FILE_RECORD_VERSION;
  rec.hdr.size = static_cast<uint32_t>(sizeof rec + path.size() + new_path.size());
  rec.hdr.task.tgid = 4242;
  std::memcpy(rec.hdr.task.comm, "cat", 4);
  rec.flags = flags;
  rec.op_flags = op_flags;
  rec.path_len = static_cast<uint16_t>(path.size());
  rec.new_path_len = static_cast<uint16_t>(new_path.size());
  rec.syscall = FILE_NR64_OPENAT;
  Bytes out(sizeof rec);
  std::memcpy(out.data(), &rec, sizeof rec);
  for (std::string_view s : {path, new_path}) {
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    out.insert(out.end(), p, p + s.size());
  }
  return out;
}

TEST(FileDecode, RenameCarriesBothPaths) {
  auto raw = record(FILE_KIND_RENAME, "/tmp/a", "/tmp/b", FILE_F_PATH_FROM_USER);
  auto rec = decode_file(raw);
  ASSERT_TRUE(rec) << rec.error().message;
  EXPECT_EQ(rec->path, "/tmp/a");
  EXPECT_EQ(rec->new_path, "/tmp/b");
  EXPECT_TRUE(rec->path_from_user());
  EXPECT_EQ(event_type(*rec), "file.rename");
  EXPECT_EQ(rec->task.tgid, 4242u);
}

TEST(FileDecode, OpenWithCreatedFlagIsFileCreate) {
  auto raw = record(FILE_KIND_OPEN, "/etc/x", {}, FILE_F_CREATED);
  auto rec = decode_file(raw);
  ASSERT_TRUE(rec);
  EXPECT_EQ(event_type(*rec), "file.create");
  const auto plain_raw = record(FILE_KIND_OPEN, "/etc/x");
  auto plain = decode_file(plain_raw);
  ASSERT_TRUE(plain);
  EXPECT_EQ(event_type(*plain), "file.open");
}

TEST(FileDecode, RejectsShortRecordWithoutReadingPastIt) {
  auto raw = record(FILE_KIND_OPEN, "/etc/passwd");
  raw.resize(FILE_RECORD_FIXED_SIZE - 1);
  EXPECT_FALSE(decode_file(raw));
}

TEST(FileDecode, RejectsHeaderSizePastTheBuffer) {
  auto raw = record(FILE_KIND_OPEN, "/etc/passwd");
  raw.resize(raw.size() - 3);  // the header still claims the full size
  auto rec = decode_file(raw);
  ASSERT_FALSE(rec);
  EXPECT_NE(rec.error().message.find("claims"), std::string::npos);
}

TEST(FileDecode, RejectsPathLengthsThatDoNotAddUp) {
  auto raw = record(FILE_KIND_OPEN, "/etc/passwd");
  file_record rec;
  std::memcpy(&rec, raw.data(), sizeof rec);
  rec.path_len = 200;
  std::memcpy(raw.data(), &rec, sizeof rec);
  EXPECT_FALSE(decode_file(raw));
}

TEST(FileDecode, RejectsUnknownKindAndVersion) {
  EXPECT_FALSE(decode_file(record(99, "/x")));
  auto raw = record(FILE_KIND_OPEN, "/x");
  file_record rec;
  std::memcpy(&rec, raw.data(), sizeof rec);
  rec.hdr.version = FILE_RECORD_VERSION + 1;
  std::memcpy(raw.data(), &rec, sizeof rec);
  EXPECT_FALSE(decode_file(raw));
}

TEST(FileDecode, OpenFlagsAreNamedAccessModeFirst) {
  FlagNames names;
  open_flag_names(01 | 0100 | 01000 | 02000000, names);
  std::vector<std::string_view> got(names.names.begin(), names.names.begin() + names.count);
  EXPECT_EQ(got, (std::vector<std::string_view>{"O_WRONLY", "O_CREAT", "O_TRUNC", "O_CLOEXEC"}));
  open_flag_names(020200000, names);  // O_TMPFILE includes O_DIRECTORY
  got.assign(names.names.begin(), names.names.begin() + names.count);
  EXPECT_EQ(got, (std::vector<std::string_view>{"O_RDONLY", "O_TMPFILE"}));
  open_flag_names(0x80000000u, names);  // unnamed bits
  ASSERT_EQ(names.count, 2u);
  EXPECT_EQ(names.names[1], "0x80000000");
  // Repeated words (the names of the last one are reused) give the same names, unnamed bits
  // included, into a FlagNames of their own.
  for (uint32_t flags : {02000000u, 02000000u, 0x80000001u, 0x80000001u, 02000000u, 0u, 0u}) {
    FlagNames first;
    FlagNames again;
    open_flag_names(flags, first);
    open_flag_names(flags, again);
    ASSERT_EQ(first.count, again.count) << flags;
    for (size_t i = 0; i < first.count; ++i) {
      EXPECT_EQ(first.names[i], again.names[i]) << flags;
    }
    EXPECT_EQ(again.names[0], (flags & 3) == 1 ? "O_WRONLY" : "O_RDONLY");
    if ((flags & 0x80000000u) != 0) {
      EXPECT_EQ(again.names[again.count - 1], "0x80000000");
      EXPECT_EQ(again.names[again.count - 1].data(), again.unknown);
    }
  }
}

TEST(FileDecode, RenameAndAtFlagsAreNamedByKind) {
  FlagNames names;
  // Decoded records view their raw bytes, which must outlive them.
  const auto rename_raw = record(FILE_KIND_RENAME, "/a", "/b", 0, 1);
  auto rename = decode_file(rename_raw);
  ASSERT_TRUE(rename);
  op_flag_names(*rename, names);
  ASSERT_EQ(names.count, 1u);
  EXPECT_EQ(names.names[0], "RENAME_NOREPLACE");
  const auto unlink_raw = record(FILE_KIND_UNLINK, "/a", {}, 0, 0x200);
  auto unlink = decode_file(unlink_raw);
  ASSERT_TRUE(unlink);
  op_flag_names(*unlink, names);
  ASSERT_EQ(names.count, 1u);
  EXPECT_EQ(names.names[0], "AT_REMOVEDIR");
}

TEST(FileDecode, RoutesNameSyscallAbiAndIoUring) {
  RouteBuf buf;
  EXPECT_EQ(route_name(FILE_ROUTE_SYSCALL, 0, FILE_NR64_OPENAT, buf), "openat");
  EXPECT_EQ(route_name(FILE_ROUTE_SYSCALL, 1, FILE_NR32_OPENAT, buf), "ia32:openat");
  EXPECT_EQ(route_name(FILE_ROUTE_SYSCALL, 1, FILE_NR32_CHOWN16, buf), "ia32:chown16");
  EXPECT_EQ(route_name(FILE_ROUTE_IO_URING, 0, FILE_IORING_OP_RENAMEAT, buf), "io_uring:renameat");
  EXPECT_EQ(route_name(FILE_ROUTE_SYSCALL, 0, 999, buf), "syscall:999");
  EXPECT_EQ(route_name(FILE_ROUTE_SYSCALL, 1, 999, buf), "ia32:syscall:999");
  EXPECT_EQ(route_name(FILE_ROUTE_SYSCALL, 0, 0xffff, buf), "syscall:65535");
  EXPECT_EQ(route_name(FILE_ROUTE_SYSCALL, 0, FILE_NR64_SYMLINKAT, buf), "symlinkat");
  EXPECT_EQ(route_name(FILE_ROUTE_SYSCALL, 0, FILE_NR64_OPEN, buf), "open");
}

TEST(FileDecode, KernelDevBecomesUserDev) {
  // 8:1 (sda1) in the kernel's encoding is makedev(8, 1) = 0x801 in user space.
  EXPECT_EQ(user_dev((8ull << 20) | 1), 0x801u);
  EXPECT_EQ(octal_mode(0100644), "0644");
  EXPECT_EQ(octal_mode(04755), "4755");
}

TEST(FileDecode, PrefixesAreNormalizedAndBadOnesNamed) {
  EXPECT_EQ(*normalize_prefix("/etc/"), "/etc");
  EXPECT_EQ(*normalize_prefix("/"), "/");
  auto relative = normalize_prefix("etc");
  ASSERT_FALSE(relative);
  EXPECT_NE(relative.error().message.find("'etc'"), std::string::npos);
  EXPECT_FALSE(normalize_prefix(""));
  EXPECT_FALSE(normalize_prefix("/" + std::string(300, 'a')));
}

}  // namespace
}  // namespace needle::file
