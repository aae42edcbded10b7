// Unit tests of the process decoder on hand-built records (no kernel, no root).
#include "decode.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "process_record.h"

namespace needle::process {
namespace {

using Bytes = std::vector<std::byte>;

needle_record_header header(uint16_t kind, uint32_t size) {
  needle_record_header hdr{};
  hdr.kind = kind;
  hdr.version = PROCESS_RECORD_VERSION;
  hdr.size = size;
  hdr.boot_ns = 123456789;
  hdr.task.tgid = 4242;
  hdr.task.pid = 4243;
  hdr.task.ppid = 1;
  hdr.task.uid = 1000;
  hdr.task.start_ns = 987654321;
  std::memcpy(hdr.task.comm, "bash", 5);
  return hdr;
}

template <typename T>
void append(Bytes& out, const T& value) {
  const auto* p = reinterpret_cast<const std::byte*>(&value);
  out.insert(out.end(), p, p + sizeof value);
}

void append(Bytes& out, std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  out.insert(out.end(), p, p + s.size());
}

struct ExecParts {
  uint16_t kind = PROCESS_KIND_EXEC;
  std::string_view exe = "/usr/bin/python3.11";
  std::string_view script;
  std::string_view cwd = "/home/user";
  std::string_view args = std::string_view("python3\0-c\0print(1)\0", 20);
  uint32_t flags = PROCESS_F_ARGS_PRESENT | PROCESS_F_CWD_PRESENT;
};

Bytes exec_record(const ExecParts& parts) {
  process_exec_record rec{};
  const auto variable =
      parts.exe.size() + parts.script.size() + parts.cwd.size() + parts.args.size();
  rec.hdr = header(parts.kind, static_cast<uint32_t>(sizeof rec + variable));
  rec.exe_ino = 77;
  rec.exe_dev = (8u << 20) | 1u;
  rec.flags = parts.flags;
  rec.exe_len = static_cast<uint32_t>(parts.exe.size());
  rec.script_len = static_cast<uint32_t>(parts.script.size());
  rec.cwd_len = static_cast<uint32_t>(parts.cwd.size());
  rec.args_len = static_cast<uint32_t>(parts.args.size());
  Bytes out;
  append(out, rec);
  append(out, parts.exe);
  append(out, parts.script);
  append(out, parts.cwd);
  append(out, parts.args);
  return out;
}

Bytes fork_record(std::string_view exe, uint32_t flags = 0) {
  process_fork_record rec{};
  rec.hdr = header(PROCESS_KIND_FORK, static_cast<uint32_t>(sizeof rec + exe.size()));
  rec.exe_ino = 5;
  rec.exe_dev = 6;
  rec.flags = flags;
  rec.exe_len = static_cast<uint32_t>(exe.size());
  Bytes out;
  append(out, rec);
  append(out, exe);
  return out;
}

Bytes exit_record(uint32_t status) {
  process_exit_record rec{};
  rec.hdr = header(PROCESS_KIND_EXIT, sizeof rec);
  rec.status = status;
  Bytes out;
  append(out, rec);
  return out;
}

std::vector<std::string> collect(const ArgList& args) {
  std::vector<std::string> out;
  for (std::string_view arg : args) {
    out.emplace_back(arg);
  }
  return out;
}

void set_u32(Bytes& raw, std::size_t offset, uint32_t value) {
  std::memcpy(raw.data() + offset, &value, sizeof value);
}

TEST(ProcessDecode, ExecRecordYieldsExeCwdArgsAndTaskContext) {
  const Bytes raw = exec_record({});
  auto rec = decode_process(raw);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_EQ(rec->kind, Kind::kExec);
  EXPECT_EQ(event_type(rec->kind), "process.exec");
  EXPECT_EQ(rec->task.tgid, 4242u);
  EXPECT_EQ(rec->task.pid, 4243u);
  EXPECT_EQ(rec->task.start_ns, 987654321u);
  EXPECT_EQ(rec->boot_ns, 123456789u);
  EXPECT_EQ(rec->exe, "/usr/bin/python3.11");
  EXPECT_EQ(rec->exe_ino, 77u);
  EXPECT_EQ(rec->exe_dev, (8u << 20) | 1u);
  ASSERT_TRUE(rec->cwd.has_value());
  EXPECT_EQ(*rec->cwd, "/home/user");
  EXPECT_TRUE(rec->script.empty());
  ASSERT_TRUE(rec->args.has_value());
  EXPECT_EQ(collect(*rec->args), (std::vector<std::string>{"python3", "-c", "print(1)"}));
  EXPECT_FALSE(rec->exe_truncated);
  EXPECT_FALSE(rec->args_truncated);
  EXPECT_FALSE(rec->cwd_truncated);
  EXPECT_FALSE(rec->fileless());
  EXPECT_FALSE(rec->exit_code.has_value());
  EXPECT_FALSE(rec->exit_signal.has_value());
}

TEST(ProcessDecode, SnapshotRecordCarriesTheExecFields) {
  ExecParts parts;
  parts.kind = PROCESS_KIND_SNAPSHOT;
  const Bytes raw_rec = exec_record(parts);
  auto rec = decode_process(raw_rec);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_EQ(rec->kind, Kind::kSnapshot);
  EXPECT_EQ(event_type(rec->kind), "process.snapshot");
  EXPECT_EQ(rec->exe, "/usr/bin/python3.11");
  EXPECT_EQ(collect(*rec->args).size(), 3u);
}

TEST(ProcessDecode, SnapshotWithoutArgumentsLeavesArgsAbsentNotEmpty) {
  ExecParts parts;
  parts.kind = PROCESS_KIND_SNAPSHOT;
  parts.args = {};
  parts.flags = PROCESS_F_CWD_PRESENT;  // the iter rung cannot read other tasks' memory
  const Bytes raw_rec = exec_record(parts);
  auto rec = decode_process(raw_rec);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_FALSE(rec->args.has_value());
}

TEST(ProcessDecode, KernelThreadHasNoExeNoArgsAndNoCwdWhenNotPresent) {
  ExecParts parts;
  parts.kind = PROCESS_KIND_SNAPSHOT;
  parts.exe = {};
  parts.cwd = {};
  parts.args = {};
  parts.flags = 0;
  const Bytes raw_rec = exec_record(parts);
  auto rec = decode_process(raw_rec);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_TRUE(rec->exe.empty());
  EXPECT_FALSE(rec->cwd.has_value());
  EXPECT_FALSE(rec->args.has_value());
}

TEST(ProcessDecode, ExecWithEmptyArgvGivesAnEmptyArgumentList) {
  ExecParts parts;
  parts.args = {};
  const Bytes raw_rec = exec_record(parts);
  auto rec = decode_process(raw_rec);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  ASSERT_TRUE(rec->args.has_value());
  EXPECT_TRUE(collect(*rec->args).empty());
}

TEST(ProcessDecode, ArgvSplitsOnNulAndKeepsEmptyArguments) {
  ExecParts parts;
  parts.args = std::string_view("a\0\0c d\0\0", 8);
  const Bytes raw_rec = exec_record(parts);
  auto rec = decode_process(raw_rec);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_EQ(collect(*rec->args), (std::vector<std::string>{"a", "", "c d", ""}));
  EXPECT_EQ(rec->args->count(), 4u);
}

TEST(ProcessDecode, LastArgumentCutWithoutNulIsStillAnArgument) {
  ExecParts parts;
  parts.args = std::string_view("ls\0--colo", 9);
  parts.flags |= PROCESS_F_ARGS_TRUNCATED;
  const Bytes raw_rec = exec_record(parts);
  auto rec = decode_process(raw_rec);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_EQ(collect(*rec->args), (std::vector<std::string>{"ls", "--colo"}));
  EXPECT_TRUE(rec->args_truncated);
}

TEST(ProcessDecode, TruncationFlagsMarkEachCutField) {
  ExecParts parts;
  parts.script = "bin/script.sh";
  parts.flags |= PROCESS_F_EXE_TRUNCATED | PROCESS_F_SCRIPT_TRUNCATED | PROCESS_F_CWD_TRUNCATED |
                 PROCESS_F_ARGS_TRUNCATED;
  const Bytes raw_rec = exec_record(parts);
  auto rec = decode_process(raw_rec);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_TRUE(rec->exe_truncated);
  EXPECT_TRUE(rec->script_truncated);
  EXPECT_TRUE(rec->cwd_truncated);
  EXPECT_TRUE(rec->args_truncated);
}

TEST(ProcessDecode, MemfdAndDeletedExecutablesAreFileless) {
  ExecParts memfd;
  memfd.exe = "/memfd:payload";
  memfd.flags |= PROCESS_F_EXE_MEMFD;
  const Bytes raw_a = exec_record(memfd);
  auto a = decode_process(raw_a);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_TRUE(a->exe_memfd);
  EXPECT_TRUE(a->fileless());

  ExecParts deleted;
  deleted.flags |= PROCESS_F_EXE_DELETED;
  const Bytes raw_b = exec_record(deleted);
  auto b = decode_process(raw_b);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_TRUE(b->exe_deleted);
  EXPECT_TRUE(b->fileless());
}

TEST(ProcessDecode, KernelResolvedScriptIsKeptAsIs) {
  ExecParts parts;
  parts.script = "/opt/tools/run.py";
  const Bytes raw_rec = exec_record(parts);
  auto rec = decode_process(raw_rec);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_EQ(rec->script, "/opt/tools/run.py");
  EXPECT_FALSE(rec->script_from_user);
  std::string buf;
  EXPECT_EQ(absolute_script(*rec, buf), "/opt/tools/run.py");
}

TEST(ProcessDecode, RelativeScriptFromExecFilenameIsJoinedWithCwd) {
  ExecParts parts;
  parts.script = "./t.sh";
  parts.flags |= PROCESS_F_SCRIPT_FROM_USER;
  const Bytes raw_rec = exec_record(parts);
  auto rec = decode_process(raw_rec);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_TRUE(rec->script_from_user);
  std::string buf;
  EXPECT_EQ(absolute_script(*rec, buf), "/home/user/t.sh");
}

TEST(ProcessDecode, RelativeScriptStaysRelativeWhenCwdIsTruncated) {
  ExecParts parts;
  parts.script = "t.sh";
  parts.cwd = "deep/dir";
  parts.flags |= PROCESS_F_SCRIPT_FROM_USER | PROCESS_F_CWD_TRUNCATED;
  const Bytes raw_rec = exec_record(parts);
  auto rec = decode_process(raw_rec);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  std::string buf;
  EXPECT_EQ(absolute_script(*rec, buf), "t.sh");
}

TEST(ProcessDecode, ScriptAtRootCwdGetsASingleSlash) {
  ExecParts parts;
  parts.script = "t.sh";
  parts.cwd = "/";
  parts.flags |= PROCESS_F_SCRIPT_FROM_USER;
  const Bytes raw_rec = exec_record(parts);
  auto rec = decode_process(raw_rec);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  std::string buf;
  EXPECT_EQ(absolute_script(*rec, buf), "/t.sh");
}

TEST(ProcessDecode, ForkRecordDescribesTheChildWithItsExe) {
  const Bytes raw_rec = fork_record("/usr/bin/bash");
  auto rec = decode_process(raw_rec);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_EQ(rec->kind, Kind::kFork);
  EXPECT_EQ(event_type(rec->kind), "process.fork");
  EXPECT_EQ(rec->task.tgid, 4242u);
  EXPECT_EQ(rec->exe, "/usr/bin/bash");
  EXPECT_EQ(rec->exe_ino, 5u);
  EXPECT_FALSE(rec->args.has_value());
  EXPECT_FALSE(rec->cwd.has_value());
}

TEST(ProcessDecode, ForkOfAFilelessProcessIsFileless) {
  const Bytes raw_rec = fork_record("/memfd:x", PROCESS_F_EXE_MEMFD);
  auto rec = decode_process(raw_rec);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_TRUE(rec->fileless());
}

TEST(ProcessDecode, NormalExitReportsExitCodeOnly) {
  const Bytes raw_rec = exit_record(3u << 8);
  auto rec = decode_process(raw_rec);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_EQ(rec->kind, Kind::kExit);
  EXPECT_EQ(event_type(rec->kind), "process.exit");
  ASSERT_TRUE(rec->exit_code.has_value());
  EXPECT_EQ(*rec->exit_code, 3);
  EXPECT_FALSE(rec->exit_signal.has_value());
}

TEST(ProcessDecode, ExitCodeZeroIsReported) {
  const Bytes raw_rec = exit_record(0);
  auto rec = decode_process(raw_rec);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  ASSERT_TRUE(rec->exit_code.has_value());
  EXPECT_EQ(*rec->exit_code, 0);
}

TEST(ProcessDecode, ExitCode255IsReportedWhole) {
  const Bytes raw_rec = exit_record(255u << 8);
  auto rec = decode_process(raw_rec);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_EQ(*rec->exit_code, 255);
}

TEST(ProcessDecode, KillBySignalReportsExitSignalOnly) {
  const Bytes raw_rec = exit_record(9);
  auto rec = decode_process(raw_rec);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  ASSERT_TRUE(rec->exit_signal.has_value());
  EXPECT_EQ(*rec->exit_signal, 9);
  EXPECT_FALSE(rec->exit_code.has_value());
  EXPECT_FALSE(rec->core_dumped);
}

TEST(ProcessDecode, CoreDumpBitIsNotPartOfTheSignal) {
  const Bytes raw_rec = exit_record(0x80 | 11);
  auto rec = decode_process(raw_rec);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_EQ(*rec->exit_signal, 11);
  EXPECT_TRUE(rec->core_dumped);
}

TEST(ProcessDecode, BufferShorterThanTheHeaderIsRejected) {
  const Bytes raw = exec_record({});
  for (std::size_t n :
       {std::size_t{0}, std::size_t{1}, std::size_t{NEEDLE_RECORD_HEADER_SIZE - 1}}) {
    auto rec = decode_process(std::span<const std::byte>(raw.data(), n));
    EXPECT_FALSE(rec.ok()) << n;
  }
}

TEST(ProcessDecode, HeaderSizePastTheBufferIsRejected) {
  Bytes raw = exec_record({});
  auto rec = decode_process(std::span<const std::byte>(raw.data(), raw.size() - 1));
  ASSERT_FALSE(rec.ok());
  EXPECT_NE(rec.error().message.find("claims"), std::string::npos);
}

TEST(ProcessDecode, HeaderSizeSmallerThanTheHeaderIsRejected) {
  Bytes raw = exec_record({});
  set_u32(raw, offsetof(needle_record_header, size), 8);
  EXPECT_FALSE(decode_process(raw).ok());
}

TEST(ProcessDecode, ExecShorterThanItsFixedPartIsRejected) {
  Bytes raw = exec_record({});
  raw.resize(sizeof(process_exec_record) - 4);
  set_u32(raw, offsetof(needle_record_header, size), static_cast<uint32_t>(raw.size()));
  EXPECT_FALSE(decode_process(raw).ok());
}

TEST(ProcessDecode, LengthsPastTheEndAreRejected) {
  Bytes raw = exec_record({});
  set_u32(raw, offsetof(process_exec_record, args_len), 1000);
  auto rec = decode_process(raw);
  ASSERT_FALSE(rec.ok());
  EXPECT_NE(rec.error().message.find("do not match"), std::string::npos);
}

TEST(ProcessDecode, LengthsShortOfTheRecordSizeAreRejected) {
  Bytes raw = exec_record({});
  set_u32(raw, offsetof(process_exec_record, cwd_len), 2);
  EXPECT_FALSE(decode_process(raw).ok());
}

TEST(ProcessDecode, LengthsThatWouldWrap32BitsAreRejected) {
  Bytes raw = exec_record({});
  // exe_len + script_len == 2^32 + the real exe length: a 32-bit sum would match the size.
  const auto real = static_cast<uint32_t>(std::string_view("/usr/bin/python3.11").size());
  set_u32(raw, offsetof(process_exec_record, exe_len), 0xffffffffu);
  set_u32(raw, offsetof(process_exec_record, script_len), real + 1);
  EXPECT_FALSE(decode_process(raw).ok());
}

TEST(ProcessDecode, ForkExeLengthPastTheEndIsRejected) {
  Bytes raw = fork_record("/bin/sh");
  set_u32(raw, offsetof(process_fork_record, exe_len), 8);
  EXPECT_FALSE(decode_process(raw).ok());
}

TEST(ProcessDecode, ExitRecordOfAnotherSizeIsRejected) {
  Bytes raw = exit_record(0);
  raw.resize(raw.size() + 8);
  set_u32(raw, offsetof(needle_record_header, size), static_cast<uint32_t>(raw.size()));
  EXPECT_FALSE(decode_process(raw).ok());
}

TEST(ProcessDecode, WrongLayoutVersionIsRejected) {
  Bytes raw = exec_record({});
  const uint16_t version = PROCESS_RECORD_VERSION + 1;
  std::memcpy(raw.data() + offsetof(needle_record_header, version), &version, sizeof version);
  auto rec = decode_process(raw);
  ASSERT_FALSE(rec.ok());
  EXPECT_NE(rec.error().message.find("version"), std::string::npos);
}

TEST(ProcessDecode, UnknownKindIsRejected) {
  Bytes raw = exit_record(0);
  const uint16_t kind = 99;
  std::memcpy(raw.data() + offsetof(needle_record_header, kind), &kind, sizeof kind);
  auto rec = decode_process(raw);
  ASSERT_FALSE(rec.ok());
  EXPECT_NE(rec.error().message.find("kind"), std::string::npos);
}

TEST(ProcessDecode, BytesPastHeaderSizeAreIgnored) {
  Bytes raw = fork_record("/bin/sh");
  raw.resize(raw.size() + 16, std::byte{0x41});
  auto rec = decode_process(raw);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_EQ(rec->exe, "/bin/sh");
}

}  // namespace
}  // namespace needle::process
