#include "decode.h"

#include <cstring>
#include <string>

#include "process_record.h"

static_assert(sizeof(process_exec_record) == 128, "process_exec_record layout");
static_assert(offsetof(process_exec_record, exe_ino) == NEEDLE_RECORD_HEADER_SIZE,
              "process_exec_record layout");
static_assert(offsetof(process_exec_record, flags) == 104, "process_exec_record layout");
static_assert(offsetof(process_exec_record, args_len) == 120, "process_exec_record layout");
static_assert(sizeof(process_fork_record) == 112, "process_fork_record layout");
static_assert(offsetof(process_fork_record, exe_len) == 108, "process_fork_record layout");
static_assert(sizeof(process_exit_record) == 96, "process_exit_record layout");
static_assert(offsetof(process_exit_record, status) == NEEDLE_RECORD_HEADER_SIZE,
              "process_exit_record layout");

namespace needle::process {
namespace {

std::string_view view(std::span<const std::byte> bytes, std::size_t offset, std::size_t len) {
  return std::string_view(reinterpret_cast<const char*>(bytes.data()) + offset, len);
}

void fill_exe_flags(uint32_t flags, ProcessRecord& out) {
  out.exe_truncated = (flags & PROCESS_F_EXE_TRUNCATED) != 0;
  out.exe_memfd = (flags & PROCESS_F_EXE_MEMFD) != 0;
  out.exe_deleted = (flags & PROCESS_F_EXE_DELETED) != 0;
}

Result<ProcessRecord> decode_exec(std::span<const std::byte> rec, ProcessRecord out) {
  process_exec_record fixed;
  if (rec.size() < sizeof fixed) {
    return make_error("process exec record of " + std::to_string(rec.size()) +
                      " bytes is shorter than its fixed part (" + std::to_string(sizeof fixed) +
                      ")");
  }
  std::memcpy(&fixed, rec.data(), sizeof fixed);
  // 64-bit sum: four 32-bit lengths cannot wrap it.
  const uint64_t variable =
      uint64_t{fixed.exe_len} + fixed.script_len + fixed.cwd_len + fixed.args_len;
  if (variable != rec.size() - sizeof fixed) {
    return make_error("process exec record lengths (exe " + std::to_string(fixed.exe_len) +
                      ", script " + std::to_string(fixed.script_len) + ", cwd " +
                      std::to_string(fixed.cwd_len) + ", args " + std::to_string(fixed.args_len) +
                      ") do not match its size (" + std::to_string(rec.size()) + ")");
  }
  std::size_t pos = sizeof fixed;
  out.exe_ino = fixed.exe_ino;
  out.exe_dev = fixed.exe_dev;
  fill_exe_flags(fixed.flags, out);
  out.exe = view(rec, pos, fixed.exe_len);
  pos += fixed.exe_len;
  out.script = view(rec, pos, fixed.script_len);
  out.script_truncated = (fixed.flags & PROCESS_F_SCRIPT_TRUNCATED) != 0;
  out.script_from_user = (fixed.flags & PROCESS_F_SCRIPT_FROM_USER) != 0;
  pos += fixed.script_len;
  if ((fixed.flags & PROCESS_F_CWD_PRESENT) != 0) {
    out.cwd = view(rec, pos, fixed.cwd_len);
    out.cwd_truncated = (fixed.flags & PROCESS_F_CWD_TRUNCATED) != 0;
  }
  pos += fixed.cwd_len;
  if ((fixed.flags & PROCESS_F_ARGS_PRESENT) != 0) {
    out.args = ArgList(view(rec, pos, fixed.args_len));
    out.args_truncated = (fixed.flags & PROCESS_F_ARGS_TRUNCATED) != 0;
  }
  return out;
}

Result<ProcessRecord> decode_fork(std::span<const std::byte> rec, ProcessRecord out) {
  process_fork_record fixed;
  if (rec.size() < sizeof fixed) {
    return make_error("process fork record of " + std::to_string(rec.size()) +
                      " bytes is shorter than its fixed part (" + std::to_string(sizeof fixed) +
                      ")");
  }
  std::memcpy(&fixed, rec.data(), sizeof fixed);
  if (fixed.exe_len != rec.size() - sizeof fixed) {
    return make_error("process fork record exe length " + std::to_string(fixed.exe_len) +
                      " does not match its size (" + std::to_string(rec.size()) + ")");
  }
  out.exe_ino = fixed.exe_ino;
  out.exe_dev = fixed.exe_dev;
  fill_exe_flags(fixed.flags, out);
  out.exe = view(rec, sizeof fixed, fixed.exe_len);
  return out;
}

Result<ProcessRecord> decode_exit(std::span<const std::byte> rec, ProcessRecord out) {
  process_exit_record fixed;
  if (rec.size() != sizeof fixed) {
    return make_error("process exit record of " + std::to_string(rec.size()) + " bytes, expected " +
                      std::to_string(sizeof fixed));
  }
  std::memcpy(&fixed, rec.data(), sizeof fixed);
  // wait(2) status: the low 7 bits are the terminating signal (0: a normal exit whose code is
  // the second byte), bit 7 says a core was dumped.
  const uint32_t signal = fixed.status & 0x7f;
  if (signal != 0) {
    out.exit_signal = static_cast<uint8_t>(signal);
    out.core_dumped = (fixed.status & 0x80) != 0;
  } else {
    out.exit_code = static_cast<uint8_t>((fixed.status >> 8) & 0xff);
  }
  return out;
}

}  // namespace

std::string_view event_type(Kind kind) {
  switch (kind) {
    case Kind::kExec:
      return "process.exec";
    case Kind::kFork:
      return "process.fork";
    case Kind::kExit:
      return "process.exit";
    case Kind::kSnapshot:
      return "process.snapshot";
  }
  return "process.unknown";
}

void ArgList::Iterator::load() {
  if (pos_ >= block_.size()) {
    pos_ = block_.size();
    next_ = pos_;
    current_ = {};
    return;
  }
  const std::size_t nul = block_.find('\0', pos_);
  if (nul == std::string_view::npos) {
    current_ = block_.substr(pos_);
    next_ = block_.size();
  } else {
    current_ = block_.substr(pos_, nul - pos_);
    next_ = nul + 1;
  }
}

std::size_t ArgList::count() const {
  return static_cast<std::size_t>(std::distance(begin(), end()));
}

Result<ProcessRecord> decode_process(std::span<const std::byte> raw) {
  needle_record_header hdr;
  if (raw.size() < sizeof hdr) {
    return make_error("process record of " + std::to_string(raw.size()) +
                      " bytes is shorter than the record header (" + std::to_string(sizeof hdr) +
                      ")");
  }
  std::memcpy(&hdr, raw.data(), sizeof hdr);
  if (hdr.size > raw.size() || hdr.size < sizeof hdr) {
    return make_error("process record header claims " + std::to_string(hdr.size) + " bytes, " +
                      std::to_string(raw.size()) + " available");
  }
  if (hdr.version != PROCESS_RECORD_VERSION) {
    return make_error("process record version " + std::to_string(hdr.version) +
                      " is not supported (expected " + std::to_string(PROCESS_RECORD_VERSION) +
                      ")");
  }
  const std::span<const std::byte> rec = raw.first(hdr.size);
  ProcessRecord out;
  out.task = hdr.task;
  out.boot_ns = hdr.boot_ns;
  switch (hdr.kind) {
    case PROCESS_KIND_EXEC:
    case PROCESS_KIND_SNAPSHOT:
      out.kind = hdr.kind == PROCESS_KIND_EXEC ? Kind::kExec : Kind::kSnapshot;
      return decode_exec(rec, out);
    case PROCESS_KIND_FORK:
      out.kind = Kind::kFork;
      return decode_fork(rec, out);
    case PROCESS_KIND_EXIT:
      out.kind = Kind::kExit;
      return decode_exit(rec, out);
    default:
      return make_error("unknown process record kind " + std::to_string(hdr.kind));
  }
}

std::string_view absolute_script(const ProcessRecord& rec, std::string& buf) {
  std::string_view script = rec.script;
  if (script.empty() || script.front() == '/' || !rec.script_from_user || !rec.cwd ||
      rec.cwd_truncated || rec.cwd->empty() || rec.cwd->front() != '/') {
    return script;
  }
  while (script.starts_with("./")) {
    script.remove_prefix(2);
  }
  buf.assign(*rec.cwd);
  if (buf.back() != '/') {
    buf.push_back('/');
  }
  buf.append(script);
  return buf;
}

}  // namespace needle::process
