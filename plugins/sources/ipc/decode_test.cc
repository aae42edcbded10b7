// Unit tests of the ipc decoder on hand-built records (no kernel, no root).
#include "decode.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "ipc_record.h"

namespace needle::ipc {
namespace {

std::vector<std::byte> record(uint16_t kind, uint64_t arg, std::string_view name = {}) {
  ipc_record rec{};
  rec.hdr.kind = kind;
  rec.hdr.version = IPC_RECORD_VERSION;
  rec.hdr.size = sizeof rec;
  rec.hdr.task.tgid = 77;
  rec.flags = IPC_F_TARGET;
  rec.target_pid = 1234;
  rec.arg = arg;
  rec.syscall = IPC_NR64_KILL;
  rec.name_len = static_cast<uint32_t>(name.size());
  if (!name.empty()) std::memcpy(rec.name, name.data(), name.size());
  std::vector<std::byte> out(sizeof rec);
  std::memcpy(out.data(), &rec, sizeof rec);
  return out;
}

TEST(IpcDecode, SignalRecordCarriesTargetAndSignal) {
  // The decoded record views the raw bytes, so they must outlive it.
  const auto raw = record(IPC_KIND_SIGNAL, 15);
  auto rec = decode_ipc(raw);
  ASSERT_TRUE(rec) << rec.error().message;
  EXPECT_EQ(rec->kind, Kind::kSignal);
  EXPECT_EQ(rec->target_pid, 1234);
  EXPECT_TRUE(rec->has_target());
  EXPECT_EQ(event_type(rec->kind), "ipc.signal");
  EXPECT_EQ(kind_name(rec->kind), "signal");
  NameBuf buf;
  EXPECT_EQ(signal_name(rec->arg, buf), "SIGTERM");
  EXPECT_EQ(route_name(0, rec->syscall, buf), "kill");
  EXPECT_EQ(route_name(1, IPC_NR32_KILL, buf), "ia32:kill");
}

TEST(IpcDecode, MemfdNameLosesTheKernelPrefix) {
  const auto raw = record(IPC_KIND_MEMFD_CREATE, 1, "memfd:payload");
  auto rec = decode_ipc(raw);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->name, "payload");
  FlagNames names;
  memfd_flag_names(0x1 | 0x2 | 0x100, names);
  ASSERT_EQ(names.count, 3u);
  EXPECT_EQ(names.names[0], "MFD_CLOEXEC");
  EXPECT_EQ(names.names[1], "MFD_ALLOW_SEALING");
  EXPECT_EQ(names.names[2], "0x100");
}

TEST(IpcDecode, NamesPtraceRequestsAndSignalsIncludingUnknownOnes) {
  NameBuf buf;
  EXPECT_EQ(ptrace_request_name(16, buf), "PTRACE_ATTACH");
  EXPECT_EQ(ptrace_request_name(0x4206, buf), "PTRACE_SEIZE");
  EXPECT_EQ(ptrace_request_name(999, buf), "PTRACE_999");
  EXPECT_EQ(signal_name(9, buf), "SIGKILL");
  EXPECT_EQ(signal_name(35, buf), "SIGRTMIN+3");
  EXPECT_EQ(signal_name(200, buf), "SIG200");
}

TEST(IpcDecode, RejectsShortWrongSizeVersionKindAndNameLength) {
  auto raw = record(IPC_KIND_PTRACE, 16);
  EXPECT_FALSE(decode_ipc(std::span(raw).first(raw.size() - 1)));
  ipc_record rec;
  auto tweak = [&](auto change) {
    auto copy = raw;
    std::memcpy(&rec, copy.data(), sizeof rec);
    change(rec);
    std::memcpy(copy.data(), &rec, sizeof rec);
    return decode_ipc(copy).ok();
  };
  EXPECT_FALSE(tweak([](ipc_record& r) { r.hdr.size = 100; }));
  EXPECT_FALSE(tweak([](ipc_record& r) { r.hdr.version = 9; }));
  EXPECT_FALSE(tweak([](ipc_record& r) { r.hdr.kind = 5; }));
  EXPECT_FALSE(tweak([](ipc_record& r) { r.name_len = IPC_NAME_MAX; }));
  EXPECT_TRUE(tweak([](ipc_record&) {}));
}

}  // namespace
}  // namespace needle::ipc
