#include "file_source.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>

#include "file_record.h"
#include "needle/bpf_object.h"
#include "needle/record.h"

NEEDLE_BPF_OBJECT(file)

static_assert(needle::file::FileOptions::kMaxPrefixes == FILE_PREFIX_MAX,
              "prefix limit shared with the kernel side");

namespace needle::file {
namespace {

// Each hook's rungs, best first (program names as in bpf/file.bpf.c). The syscall hooks run on
// the shared dispatcher's rung, typed (bpf_rdonly_cast, Linux 6.2+: the file, its inode and the
// path walk load directly) before plain; io_uring is optional (a kernel may be built without it).
constexpr needle_bpf_program kPrograms[] = {
    NEEDLE_SYSCALL_HOOK_TYPED("file_open_exit", "open"),
    NEEDLE_SYSCALL_HOOK_TYPED("file_unlink_exit", "unlink"),
    NEEDLE_SYSCALL_HOOK_TYPED("file_rename_exit", "rename"),
    NEEDLE_SYSCALL_HOOK_TYPED("file_chmod_exit", "chmod"),
    NEEDLE_SYSCALL_HOOK_TYPED("file_chown_exit", "chown"),
    NEEDLE_SYSCALL_HOOK_TYPED("file_link_exit", "link"),
    NEEDLE_SYSCALL_HOOK_TYPED("file_symlink_exit", "symlink"),
    hook_program("file_uring_submit_tp_btf", "io_uring", "tp_btf", 0, 0),
    hook_program("file_uring_complete_tp_btf", "io_uring", "tp_btf", 0, 0),
    hook_program("file_uring_submit_raw_tp", "io_uring", "raw_tp", 0, 0),
    hook_program("file_uring_complete_raw_tp", "io_uring", "raw_tp", 0, 0),
    hook_program("file_uring_submit_tp", "io_uring", "tp", 0, 0),
    hook_program("file_uring_complete_tp", "io_uring", "tp", 0, 0),
};

// Every syscall route to each operation, in both ABIs.
constexpr needle_syscall kSyscalls[] = {
    native_syscall(FILE_NR64_OPEN, "open"),
    native_syscall(FILE_NR64_CREAT, "open"),
    native_syscall(FILE_NR64_OPENAT, "open"),
    native_syscall(FILE_NR64_OPENAT2, "open"),
    native_syscall(FILE_NR64_OPEN_BY_HANDLE_AT, "open"),
    native_syscall(FILE_NR64_UNLINK, "unlink"),
    native_syscall(FILE_NR64_UNLINKAT, "unlink"),
    native_syscall(FILE_NR64_RMDIR, "unlink"),
    native_syscall(FILE_NR64_RENAME, "rename"),
    native_syscall(FILE_NR64_RENAMEAT, "rename"),
    native_syscall(FILE_NR64_RENAMEAT2, "rename"),
    native_syscall(FILE_NR64_CHMOD, "chmod"),
    native_syscall(FILE_NR64_FCHMOD, "chmod"),
    native_syscall(FILE_NR64_FCHMODAT, "chmod"),
    native_syscall(FILE_NR64_FCHMODAT2, "chmod"),
    native_syscall(FILE_NR64_CHOWN, "chown"),
    native_syscall(FILE_NR64_FCHOWN, "chown"),
    native_syscall(FILE_NR64_LCHOWN, "chown"),
    native_syscall(FILE_NR64_FCHOWNAT, "chown"),
    native_syscall(FILE_NR64_LINK, "link"),
    native_syscall(FILE_NR64_LINKAT, "link"),
    native_syscall(FILE_NR64_SYMLINK, "symlink"),
    native_syscall(FILE_NR64_SYMLINKAT, "symlink"),
    compat_syscall(FILE_NR32_OPEN, "open"),
    compat_syscall(FILE_NR32_CREAT, "open"),
    compat_syscall(FILE_NR32_OPENAT, "open"),
    compat_syscall(FILE_NR32_OPENAT2, "open"),
    compat_syscall(FILE_NR32_OPEN_BY_HANDLE_AT, "open"),
    compat_syscall(FILE_NR32_UNLINK, "unlink"),
    compat_syscall(FILE_NR32_UNLINKAT, "unlink"),
    compat_syscall(FILE_NR32_RMDIR, "unlink"),
    compat_syscall(FILE_NR32_RENAME, "rename"),
    compat_syscall(FILE_NR32_RENAMEAT, "rename"),
    compat_syscall(FILE_NR32_RENAMEAT2, "rename"),
    compat_syscall(FILE_NR32_CHMOD, "chmod"),
    compat_syscall(FILE_NR32_FCHMOD, "chmod"),
    compat_syscall(FILE_NR32_FCHMODAT, "chmod"),
    compat_syscall(FILE_NR32_FCHMODAT2, "chmod"),
    compat_syscall(FILE_NR32_CHOWN16, "chown"),
    compat_syscall(FILE_NR32_FCHOWN16, "chown"),
    compat_syscall(FILE_NR32_LCHOWN16, "chown"),
    compat_syscall(FILE_NR32_CHOWN, "chown"),
    compat_syscall(FILE_NR32_FCHOWN, "chown"),
    compat_syscall(FILE_NR32_LCHOWN, "chown"),
    compat_syscall(FILE_NR32_FCHOWNAT, "chown"),
    compat_syscall(FILE_NR32_LINK, "link"),
    compat_syscall(FILE_NR32_LINKAT, "link"),
    compat_syscall(FILE_NR32_SYMLINK, "symlink"),
    compat_syscall(FILE_NR32_SYMLINKAT, "symlink"),
};

using Prefix = std::array<char, FILE_PREFIX_LEN>;

Result<void> set_prefixes(Bpf& bpf, const char* kind, const std::vector<std::string>& list) {
  std::array<uint32_t, FILE_PREFIX_MAX> lens{};
  for (std::size_t i = 0; i < FILE_PREFIX_MAX; ++i) {
    Prefix value{};
    if (i < list.size()) {
      std::memcpy(value.data(), list[i].data(), list[i].size());
      lens[i] = static_cast<uint32_t>(list[i].size());
    }
    std::string name = std::string(kind) + "_" + std::to_string(i);
    if (auto r = bpf.set_global(name.c_str(), value); !r) {
      return r;
    }
  }
  std::string len_name = std::string(kind) + "_len";
  if (auto r = bpf.set_global(len_name.c_str(), lens); !r) {
    return r;
  }
  std::string count_name = std::string(kind) + "_count";
  return bpf.set_global(count_name.c_str(), static_cast<uint32_t>(list.size()));
}

}  // namespace

FileSource::FileSource(Host host, FileOptions options)
    : Source(host),
      options_(std::move(options)),
      malformed_counter_(
          host.counter("malformed_records", "Ring records the file decoder rejected")) {}

needle_bpf_spec FileSource::bpf_spec() {
  return object_spec(needle_bpf_file_bytes(), kPrograms, kSyscalls);
}

Result<void> FileSource::bpf_configure(Bpf& bpf) {
  if (auto r = bpf.set_global("read_only", static_cast<uint32_t>(options_.read_only)); !r) {
    return r;
  }
  if (auto r = set_prefixes(bpf, "include", options_.paths); !r) {
    return r;
  }
  return set_prefixes(bpf, "exclude", options_.exclude_paths);
}

Result<void> FileSource::start() {
  // The kernel side learns FMODE_CREATED from these two opens (see bpf/file.bpf.c).
  char dir[] = "/tmp/needle-fmode-XXXXXX";
  if (mkdtemp(dir) == nullptr) {
    host().warn(std::string("cannot calibrate FMODE_CREATED (mkdtemp: ") + std::strerror(errno) +
                "): file.create is reported as file.open");
    return {};
  }
  const std::string path = std::string(dir) + "/.needle-fmode-calibration";
  int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  if (fd >= 0) {
    close(fd);
    fd = open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd >= 0) {
      close(fd);
    }
  }
  if (fd < 0) {
    host().warn("cannot calibrate FMODE_CREATED (" + path + ": " + std::strerror(errno) +
                "): file.create is reported as file.open");
  }
  unlink(path.c_str());
  rmdir(dir);
  return {};
}

needle_rc FileSource::decode(std::span<const std::byte> raw, Event& ev) {
  auto rec = decode_file(raw);
  if (!rec) {
    host().add(malformed_counter_);
    host().set_error(rec.error().message);
    return NEEDLE_ERROR;
  }
  if (rec->kind == Kind::kCalibration) {
    char buf[160];
    if ((rec->flags & FILE_F_CALIBRATION_FAILED) != 0) {
      std::snprintf(buf, sizeof buf,
                    "FMODE_CREATED calibration found no single bit (f_mode 0x%x created, 0x%x "
                    "existing): file.create is reported as file.open",
                    rec->mode, rec->uid);
      host().warn(buf);
    } else {
      std::snprintf(buf, sizeof buf, "FMODE_CREATED calibrated: 0x%x", rec->op_flags);
      host().info(buf);
    }
    return NEEDLE_SKIP;
  }
  if ((rec->flags & FILE_F_CREATE_UNKNOWN) != 0 && !create_warned_) {
    create_warned_ = true;
    host().warn(
        "an open arrived before FMODE_CREATED was calibrated: it is reported as "
        "file.open even if it created the file");
  }
  fill_event(api(), *rec, ev, &contexts_, &flag_arrays_);
  return NEEDLE_OK;
}

namespace {

// The fields of a file event, resolved once.
struct FileFields {
  explicit FileFields(const needle_host_api* api)
      : type(api, "type"), file(api, "file"), path(api, "path"),
        path_from_user(api, "path_from_user"), new_path(api, "new_path"), flags(api, "flags"),
        mode(api, "mode"), uid(api, "uid"), gid(api, "gid"), inode(api, "inode"),
        dev(api, "dev"), route(api, "route") {}
  Field type, file, path, path_from_user, new_path, flags, mode, uid, gid, inode, dev, route;
};

}  // namespace

void fill_event(const needle_host_api* api, const FileRecord& rec, Event& ev,
                ProcessContexts* contexts, FieldTemplates* flag_arrays) {
  static const FileFields k(api);
  ev.set(k.type, event_type(rec));
  fill_process(api, ev, rec.task, contexts);
  Event f = ev.object(k.file);
  f.set(k.path, rec.path);
  if ((rec.flags & FILE_F_PATH_TRUNCATED) != 0) {
    ev.mark_truncated("file.path");
  }
  if ((rec.flags & (FILE_F_PATH_FROM_USER | FILE_F_NEW_PATH_FROM_USER)) != 0) {
    f.set(k.path_from_user, true);
  }
  if (rec.kind == Kind::kRename || rec.kind == Kind::kLink || rec.kind == Kind::kSymlink) {
    f.set(k.new_path, rec.new_path);
    if ((rec.flags & FILE_F_NEW_PATH_TRUNCATED) != 0) {
      ev.mark_truncated("file.new_path");
    }
  }
  // The names depend only on the kind and the flag word.
  const auto flags = [&rec](Event obj, const Field& field) {
    FlagNames names;
    op_flag_names(rec, names);
    if (names.count > 0) {
      Event arr = obj.array(field);
      for (std::size_t i = 0; i < names.count; ++i) {
        arr.push(names.names[i]);
      }
    }
  };
  if (flag_arrays != nullptr) {
    flag_arrays->set(f, k.flags, uint64_t{static_cast<uint16_t>(rec.kind)} << 32 | rec.op_flags,
                     flags);
  } else {
    flags(f, k.flags);
  }
  if (rec.kind == Kind::kChmod || (rec.kind == Kind::kOpen && rec.has_inode())) {
    f.set(k.mode, octal_mode(rec.mode));
  }
  if (rec.kind == Kind::kChown) {
    if ((rec.flags & FILE_F_UID) != 0) {
      f.set(k.uid, rec.uid);
    }
    if ((rec.flags & FILE_F_GID) != 0) {
      f.set(k.gid, rec.gid);
    }
  }
  if (rec.has_inode()) {
    f.set(k.inode, rec.ino);
    f.set(k.dev, user_dev(rec.dev));
  }
  RouteBuf buf;
  f.set(k.route, route_name(rec.route, rec.abi, rec.syscall, buf));
}

}  // namespace needle::file
