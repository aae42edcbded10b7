// source/file on the real kernel: every route to each file operation (sibling syscalls, the ia32
// compat ABI, io_uring) is reported with the path the kernel resolved, on every rung of the shared
// syscall dispatcher. Each test works in its own folder and selects events by that folder's
// paths (and its helper's pid): the host is shared.
#include <fcntl.h>
#include <liburing.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <set>
#include <thread>

#include "harness.h"

namespace needle::test {
namespace {

namespace fs = std::filesystem;

std::string file_config(const TempDir& d, const std::string& source_extra = "") {
  return needle_section() + "[[source]]\nplugin = \"file\"\npaths = [\"" + d.path() + "\"]\n" +
         source_extra + "\n[[sink]]\nplugin = \"file\"\npath = \"" + d.file("events.jsonl") +
         "\"\n";
}

std::string helper(bool compat) {
  return build_dir() + (compat ? "/tests/file_routes32" : "/tests/file_routes");
}

/// Runs the route helper; fails the test when the operation itself failed.
void route(bool compat, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {helper(compat)};
  argv.insert(argv.end(), args.begin(), args.end());
  Result r = run(argv);
  ASSERT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
}

void touch(const std::string& path) {
  write_file(path, "x");
}

/// The events of `type` whose file.path is `path`.
std::vector<nlohmann::json> find(const std::vector<nlohmann::json>& evs, const std::string& type,
                                 const std::string& path) {
  std::vector<nlohmann::json> out;
  for (auto& e : evs) {
    if (str_field(e, "type") == type && str_field(e, "file.path") == path) {
      out.push_back(e);
    }
  }
  return out;
}

/// Exactly one event of `type` for `path` through `route`; returns it (or an empty object).
nlohmann::json expect_one(const std::vector<nlohmann::json>& evs, const std::string& type,
                          const std::string& path, const std::string& via) {
  std::vector<nlohmann::json> hits;
  for (auto& e : find(evs, type, path)) {
    if (str_field(e, "file.route") == via) {
      hits.push_back(e);
    }
  }
  EXPECT_EQ(hits.size(), 1u) << type << " " << path << " via " << via;
  return hits.empty() ? nlohmann::json::object() : hits.front();
}

bool bool_field(const nlohmann::json& ev, const std::string& dotted) {
  const nlohmann::json* f = field(ev, dotted);
  return f != nullptr && f->is_boolean() && f->get<bool>();
}

// The syscall routes of one ABI, each on its own names; `prefix` is "" or "ia32:". `rung` pins
// the syscall hooks' rung ("": needle's choice, the typed one where the kernel has it).
void run_and_check_syscall_routes(bool compat, const std::string& rung = "") {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, file_config(d, rung.empty() ? "" : "rung = \"" + rung + "\"\n"));
  const std::string& dir = d.path();
  const std::string p = compat ? "ia32:" : "";
  // opens (creations)
  route(compat, {"open", d.file("open")});
  route(compat, {"creat", d.file("creat")});
  route(compat, {"openat", dir, "openat"});
  route(compat, {"openat2", dir, "openat2"});
  // renames
  touch(d.file("r1"));
  touch(d.file("r2"));
  touch(d.file("r3"));
  route(compat, {"rename", d.file("r1"), d.file("r1.new")});
  route(compat, {"renameat", dir, "r2", "r2.new"});
  route(compat, {"renameat2", dir, "r3", "r3.new"});
  // chmod, chown
  touch(d.file("m"));
  route(compat, {"chmod", d.file("m")});
  route(compat, {"fchmod", d.file("m")});
  route(compat, {"fchmodat", dir, "m"});
  route(compat, {"fchmodat2", dir, "m"});
  route(compat, {"chown", d.file("m")});
  route(compat, {"fchown", d.file("m")});
  route(compat, {"lchown", d.file("m")});
  route(compat, {"fchownat", dir, "m"});
  if (compat) {
    route(compat, {"chown32", d.file("m")});
  }
  // links
  route(compat, {"link", d.file("m"), d.file("hard1")});
  route(compat, {"linkat", dir, "m", "hard2"});
  route(compat, {"symlink", "m", d.file("soft1")});
  route(compat, {"symlinkat", "../target", dir, "soft2"});
  // unlinks
  route(compat, {"unlink", d.file("hard1")});
  route(compat, {"unlinkat", dir, "hard2"});
  fs::create_directory(d.file("sub"));
  route(compat, {"rmdir", d.file("sub")});
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));

  for (const char* name : {"open", "creat", "openat", "openat2"}) {
    auto e = expect_one(evs, "file.create", d.file(name), p + name);
    EXPECT_FALSE(bool_field(e, "file.path_from_user"))
        << name << ": an open's path is the kernel's";
    struct stat st {};
    ASSERT_EQ(stat(d.file(name).c_str(), &st), 0);
    EXPECT_EQ(int_field(e, "file.inode"), static_cast<int64_t>(st.st_ino)) << name;
    EXPECT_EQ(int_field(e, "file.dev"), static_cast<int64_t>(st.st_dev)) << name;
  }
  auto e = expect_one(evs, "file.create", d.file("openat2"), p + "openat2");
  EXPECT_EQ(e["file"]["flags"], (nlohmann::json{"O_WRONLY", "O_CREAT", "O_TRUNC", "O_CLOEXEC"}));

  e = expect_one(evs, "file.rename", d.file("r1"), p + "rename");
  EXPECT_EQ(str_field(e, "file.new_path"), d.file("r1.new"));
  EXPECT_TRUE(bool_field(e, "file.path_from_user"));
  e = expect_one(evs, "file.rename", d.file("r2"), p + "renameat");
  EXPECT_EQ(str_field(e, "file.new_path"), d.file("r2.new"));
  e = expect_one(evs, "file.rename", d.file("r3"), p + "renameat2");
  EXPECT_EQ(str_field(e, "file.new_path"), d.file("r3.new"));
  EXPECT_EQ(e["file"]["flags"], (nlohmann::json{"RENAME_NOREPLACE"}));

  EXPECT_EQ(str_field(expect_one(evs, "file.chmod", d.file("m"), p + "chmod"), "file.mode"),
            "0604");
  e = expect_one(evs, "file.chmod", d.file("m"), p + "fchmod");
  EXPECT_EQ(str_field(e, "file.mode"), "0605");
  EXPECT_FALSE(bool_field(e, "file.path_from_user")) << "fchmod's path is its fd's file";
  EXPECT_EQ(str_field(expect_one(evs, "file.chmod", d.file("m"), p + "fchmodat"), "file.mode"),
            "0606");
  EXPECT_EQ(str_field(expect_one(evs, "file.chmod", d.file("m"), p + "fchmodat2"), "file.mode"),
            "0607");

  const std::string chown = compat ? "chown16" : "chown";
  e = expect_one(evs, "file.chown", d.file("m"), p + chown);
  EXPECT_EQ(int_field(e, "file.uid"), 1);
  EXPECT_EQ(int_field(e, "file.gid"), 2);
  e = expect_one(evs, "file.chown", d.file("m"), p + (compat ? "fchown16" : "fchown"));
  EXPECT_EQ(int_field(e, "file.uid"), 3);
  EXPECT_EQ(field(e, "file.gid"), nullptr) << "-1 leaves the group unchanged";
  e = expect_one(evs, "file.chown", d.file("m"), p + (compat ? "lchown16" : "lchown"));
  EXPECT_EQ(field(e, "file.uid"), nullptr);
  EXPECT_EQ(int_field(e, "file.gid"), 4);
  e = expect_one(evs, "file.chown", d.file("m"), p + "fchownat");
  EXPECT_EQ(int_field(e, "file.uid"), 7);
  if (compat) {
    e = expect_one(evs, "file.chown", d.file("m"), "ia32:chown");
    EXPECT_EQ(int_field(e, "file.uid"), 5);
  }

  EXPECT_EQ(str_field(expect_one(evs, "file.link", d.file("m"), p + "link"), "file.new_path"),
            d.file("hard1"));
  EXPECT_EQ(str_field(expect_one(evs, "file.link", d.file("m"), p + "linkat"), "file.new_path"),
            d.file("hard2"));
  EXPECT_EQ(str_field(expect_one(evs, "file.symlink", "m", p + "symlink"), "file.new_path"),
            d.file("soft1"));
  EXPECT_EQ(
      str_field(expect_one(evs, "file.symlink", "../target", p + "symlinkat"), "file.new_path"),
      d.file("soft2"));

  expect_one(evs, "file.unlink", d.file("hard1"), p + "unlink");
  expect_one(evs, "file.unlink", d.file("hard2"), p + "unlinkat");
  e = expect_one(evs, "file.unlink", d.file("sub"), p + "rmdir");
  EXPECT_EQ(e["file"]["flags"], (nlohmann::json{"AT_REMOVEDIR"}));
}

TEST(FileSource, EveryNativeSyscallRouteReportsItsOperation) {
  run_and_check_syscall_routes(false);
}

TEST(FileSource, EveryIa32CompatRouteReportsItsOperation) {
  if (access(helper(true).c_str(), X_OK) != 0) {
    GTEST_SKIP() << "no 32-bit helper: gcc -m32 (gcc-multilib) was not available at build time";
  }
  run_and_check_syscall_routes(true);
}

// The plain rung (what kernels before 6.2 run): every route and field as on the typed one.
TEST(FileSource, EveryNativeSyscallRouteReportsItsOperationOnThePlainRung) {
  run_and_check_syscall_routes(false, "tp_btf");
}

TEST(FileSource, IoUringRoutesThatBypassSyscallsAreReported) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, file_config(d));
  touch(d.file("ur-old"));
  touch(d.file("ur-gone"));
  io_uring ring{};
  ASSERT_EQ(io_uring_queue_init(8, &ring, 0), 0);
  auto submit_one = [&](auto prep) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    prep(sqe);
    EXPECT_EQ(io_uring_submit(&ring), 1);
    io_uring_cqe* cqe = nullptr;
    EXPECT_EQ(io_uring_wait_cqe(&ring, &cqe), 0);
    int res = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
    return res;
  };
  const std::string opened = d.file("ur-open");
  const std::string old_path = d.file("ur-old"), new_path = d.file("ur-new");
  const std::string gone = d.file("ur-gone"), hard = d.file("ur-hard"), soft = d.file("ur-soft");
  int fd = submit_one([&](io_uring_sqe* s) {
    io_uring_prep_openat(s, AT_FDCWD, opened.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  });
  EXPECT_GE(fd, 0);
  EXPECT_EQ(submit_one([&](io_uring_sqe* s) {
              io_uring_prep_renameat(s, AT_FDCWD, old_path.c_str(), AT_FDCWD, new_path.c_str(), 0);
            }),
            0);
  EXPECT_EQ(submit_one([&](io_uring_sqe* s) {
              io_uring_prep_linkat(s, AT_FDCWD, new_path.c_str(), AT_FDCWD, hard.c_str(), 0);
            }),
            0);
  EXPECT_EQ(submit_one([&](io_uring_sqe* s) {
              io_uring_prep_symlinkat(s, "ur-new", AT_FDCWD, soft.c_str());
            }),
            0);
  EXPECT_EQ(
      submit_one([&](io_uring_sqe* s) { io_uring_prep_unlinkat(s, AT_FDCWD, gone.c_str(), 0); }),
      0);
  // A failed operation is not reported.
  EXPECT_LT(submit_one([&](io_uring_sqe* s) {
              io_uring_prep_unlinkat(s, AT_FDCWD, d.file("ur-missing").c_str(), 0);
            }),
            0);
  io_uring_queue_exit(&ring);
  struct stat st {};
  ASSERT_EQ(fstat(fd, &st), 0);
  close(fd);
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));
  auto e = expect_one(evs, "file.create", opened, "io_uring:openat");
  EXPECT_EQ(int_field(e, "file.inode"), static_cast<int64_t>(st.st_ino));
  EXPECT_EQ(int_field(e, "process.pid"), getpid());
  e = expect_one(evs, "file.rename", old_path, "io_uring:renameat");
  EXPECT_EQ(str_field(e, "file.new_path"), new_path);
  EXPECT_EQ(str_field(expect_one(evs, "file.link", new_path, "io_uring:linkat"), "file.new_path"),
            hard);
  EXPECT_EQ(
      str_field(expect_one(evs, "file.symlink", "ur-new", "io_uring:symlinkat"), "file.new_path"),
      soft);
  expect_one(evs, "file.unlink", gone, "io_uring:unlinkat");
  EXPECT_TRUE(find(evs, "file.unlink", d.file("ur-missing")).empty());
}

TEST(FileSource, RewrittenPathBufferReportsTheFileActuallyOpened) {
  TempDir d;
  const std::string real = d.file("real"), fake = d.file("fake");
  touch(real);
  touch(fake);
  struct stat rs {
  }, fs_{};
  ASSERT_EQ(stat(real.c_str(), &rs), 0);
  ASSERT_EQ(stat(fake.c_str(), &fs_), 0);
  Needle n(d);
  NEEDLE_START_BPF(n, file_config(d));
  // Both names have the same length: a thread flips the buffer between them while opens run.
  std::string buf = real;
  std::atomic<bool> stop{false};
  std::thread flipper([&] {
    const size_t at = buf.size() - 4;
    auto spin = [] {
      for (int k = 0; k < 500; ++k) {
        asm volatile("" ::: "memory");  // keeps the delay loop
      }
    };
    while (!stop.load(std::memory_order_relaxed)) {
      std::memcpy(buf.data() + at, "fake", 4);
      spin();
      std::memcpy(buf.data() + at, "real", 4);
      spin();
    }
  });
  // At least 300 opens, and on until both names were hit (bounded: a loaded machine may
  // schedule the flipper rarely).
  std::set<ino_t> opened;
  int opens = 0;
  for (int i = 0; i < 20000 && (i < 300 || opened.size() < 2); ++i) {
    ++opens;
    int fd = open(buf.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      struct stat st {};
      fstat(fd, &st);
      opened.insert(st.st_ino);
      close(fd);
    }
  }
  stop = true;
  flipper.join();
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));
  int checked = 0;
  for (auto& e : evs) {
    if (str_field(e, "type") != "file.open" || int_field(e, "process.pid") != getpid()) {
      continue;
    }
    const std::string path = str_field(e, "file.path");
    ASSERT_TRUE(path == real || path == fake) << path;
    const auto want = static_cast<int64_t>(path == real ? rs.st_ino : fs_.st_ino);
    EXPECT_EQ(int_field(e, "file.inode"), want) << "path " << path << " names another inode";
    EXPECT_FALSE(bool_field(e, "file.path_from_user"));
    ++checked;
  }
  EXPECT_EQ(checked, opens);
  EXPECT_EQ(opened.size(), 2u) << "the flipping thread should have hit both names";
}

TEST(FileSource, ReadOnlyOpensAreReportedOnlyWithReadOnly) {
  for (bool read_only : {false, true}) {
    TempDir d;
    touch(d.file("ro"));
    touch(d.file("rw"));
    Needle n(d);
    NEEDLE_START_BPF(n, file_config(d, read_only ? "read_only = true\n" : ""));
    route(false, {"open_rdonly", d.file("ro")});
    route(false, {"fchmod", d.file("rw")});  // opens O_RDONLY too, then a write-class chmod
    int fd = open(d.file("rw").c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    close(fd);
    ASSERT_EQ(n.stop(), 0) << n.err();
    auto evs = read_events(d.file("events.jsonl"));
    EXPECT_EQ(find(evs, "file.open", d.file("ro")).size(), read_only ? 1u : 0u) << read_only;
    EXPECT_FALSE(find(evs, "file.open", d.file("rw")).empty()) << "a write open is always reported";
  }
}

TEST(FileSource, PathsAndExcludePathsFilterWholeComponentsInTheKernel) {
  TempDir d;
  fs::create_directories(d.file("in/skip"));
  fs::create_directories(d.file("inside"));
  Needle n(d);
  const std::string config = needle_section() + "[[source]]\nplugin = \"file\"\npaths = [\"" +
                             d.file("in") + "/\"]\nexclude_paths = [\"" + d.file("in/skip") +
                             "\"]\n\n[[sink]]\nplugin = \"file\"\n" + "path = \"" +
                             d.file("events.jsonl") + "\"\n";
  NEEDLE_START_BPF(n, config);
  for (const char* name : {"in/a", "in/skip/b", "inside/c", "d"}) {
    route(false, {"creat", d.file(name)});
  }
  touch(d.file("out-old"));
  route(false, {"rename", d.file("out-old"), d.file("in/moved-in")});
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));
  EXPECT_EQ(find(evs, "file.create", d.file("in/a")).size(), 1u);
  EXPECT_TRUE(find(evs, "file.create", d.file("in/skip/b")).empty()) << "excluded";
  EXPECT_TRUE(find(evs, "file.create", d.file("inside/c")).empty()) << "prefix of a component";
  EXPECT_TRUE(find(evs, "file.create", d.file("d")).empty()) << "outside paths";
  EXPECT_EQ(find(evs, "file.rename", d.file("out-old")).size(), 1u)
      << "a rename into a watched folder is reported";
}

// Each dispatcher rung, plain ("tp_btf": every field of the file, inode and path walk read with
// bpf_probe_read_kernel) and typed ("tp_btf+typed": read directly through bpf_rdonly_cast): the
// same events, with the inode, paths through a directory fd and the cwd, and paths that cross a
// bind mount and a tmpfs.
class FileSourceRung : public ::testing::TestWithParam<std::string> {};

TEST_P(FileSourceRung, PinnedRungReportsOpenRenameFchmodAndUnlink) {
  const std::string rung = GetParam();
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, file_config(d, "rung = \"" + rung + "\"\n"));
  EXPECT_NE(n.err().find("the syscall dispatcher runs on rung " + rung.substr(0, rung.find('+'))),
            std::string::npos)
      << n.err();
  for (const char* hook : {"open", "unlink", "rename", "chmod", "chown", "link", "symlink"}) {
    EXPECT_NE(n.err().find("hook " + std::string(hook) + " runs on rung " + rung + "\n"),
              std::string::npos)
        << hook << "\n"
        << n.err();
  }
  route(false, {"openat", d.path(), "f"});
  route(false, {"rename", d.file("f"), d.file("g")});
  route(false, {"fchmod", d.file("g")});
  route(false, {"unlink", d.file("g")});
  // Through a bind mount and a tmpfs: the path walk crosses from each mount's root into the
  // mount it sits on (the mountpoint's dentry, then the parent mount's).
  fs::create_directories(d.file("src/deep"));
  fs::create_directories(d.file("bound"));
  fs::create_directories(d.file("tmpfs"));
  struct Unmount {   // also when an assertion below returns early
    std::string at;
    ~Unmount() {
      if (!at.empty()) {
        umount2(at.c_str(), MNT_DETACH);
      }
    }
  } bound, tmpfs;
  ASSERT_EQ(mount(d.file("src").c_str(), d.file("bound").c_str(), nullptr, MS_BIND, nullptr), 0)
      << std::strerror(errno);
  bound.at = d.file("bound");
  ASSERT_EQ(mount("needle-test", d.file("tmpfs").c_str(), "tmpfs", 0, nullptr), 0)
      << std::strerror(errno);
  tmpfs.at = d.file("tmpfs");
  fs::create_directories(d.file("tmpfs/sub"));
  route(false, {"openat", d.file("bound/deep"), "b"});
  route(false, {"openat", d.file("tmpfs/sub"), "t"});
  // Names on both sides of the kernel's inline name length (DNAME_INLINE_LEN, 40): the typed
  // walk copies a name of up to 39 bytes from the dentry as whole words, a longer one through a
  // helper; a rename's new path is written right after the old one, over those words' slack.
  const std::string names =
      std::string(39, 'a') + "/" + std::string(40, 'b') + "/s/" + std::string(255, 'c') + "/x";
  fs::create_directories(d.file(names));
  route(false, {"openat", d.file(names), "y"});
  route(false, {"renameat", d.file(names), "y", "z"});
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));
  expect_one(evs, "file.create", d.file("bound/deep/b"), "openat");
  expect_one(evs, "file.create", d.file("tmpfs/sub/t"), "openat");
  expect_one(evs, "file.create", d.file(names + "/y"), "openat");
  EXPECT_EQ(str_field(expect_one(evs, "file.rename", d.file(names + "/y"), "renameat"),
                      "file.new_path"),
            d.file(names + "/z"));
  auto created = expect_one(evs, "file.create", d.file("f"), "openat");
  EXPECT_GT(int_field(created, "file.inode"), 0) << created.dump();
  EXPECT_EQ(str_field(expect_one(evs, "file.rename", d.file("f"), "rename"), "file.new_path"),
            d.file("g"));
  auto chmod = expect_one(evs, "file.chmod", d.file("g"), "fchmod");
  EXPECT_EQ(int_field(chmod, "file.inode"), int_field(created, "file.inode")) << chmod.dump();
  expect_one(evs, "file.unlink", d.file("g"), "unlink");
}

INSTANTIATE_TEST_SUITE_P(Rungs, FileSourceRung,
                         ::testing::Values("tp_btf", "raw_tp", "tp", "tp_btf+typed",
                                           "raw_tp+typed", "tp+typed"),
                         [](const auto& info) {
                           std::string name = info.param;
                           if (size_t plus = name.find('+'); plus != std::string::npos) {
                             name = name.substr(0, plus) + "_typed";
                           }
                           return name;
                         });

TEST(FileSource, HooksRunOnTheTypedRungWhereTheKernelHasIt) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, file_config(d, ""));
  // Linux 6.2 and later have bpf_rdonly_cast; before, each hook logs why it fell back.
  const bool typed = n.err().find("hook open runs on rung tp_btf+typed\n") != std::string::npos;
  const bool fell_back = n.err().find("cannot use rung tp_btf+typed") != std::string::npos;
  EXPECT_TRUE(typed || fell_back) << n.err();
  route(false, {"openat", d.path(), "f"});
  ASSERT_EQ(n.stop(), 0) << n.err();
  expect_one(read_events(d.file("events.jsonl")), "file.create", d.file("f"), "openat");
}

TEST(FileSource, TwoSourcesClaimingOneSyscallIsAStartupErrorNamingBoth) {
  TempDir d;
  Needle n(d);
  const std::string config = needle_section() +
                             "[[source]]\nplugin = \"file\"\nid = \"files-a\"\n\n"
                             "[[source]]\nplugin = \"file\"\nid = \"files-b\"\n\n"
                             "[[sink]]\nplugin = \"stdout\"\n";
  if (geteuid() != 0) {
    GTEST_SKIP() << "loading BPF needs root";
  }
  ASSERT_FALSE(n.start(config));
  EXPECT_EQ(n.exit_code(), 2) << n.err();
  EXPECT_NE(n.err().find("'files-a'"), std::string::npos) << n.err();
  EXPECT_NE(n.err().find("'files-b'"), std::string::npos) << n.err();
  EXPECT_NE(n.err().find("one owner"), std::string::npos) << n.err();
}

TEST(FileSource, RelativeOrTooManyPathsAreConfigErrorsNamingTheKey) {
  TempDir d;
  const std::string cfg = d.file("needle.toml");
  write_file(cfg, needle_section() +
                      "[[source]]\nplugin = \"file\"\npaths = [\"etc\"]\n\n"
                      "[[sink]]\nplugin = \"stdout\"\n");
  Result r = run({needle_bin(), "check", "-c", cfg});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("paths"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("'etc' is not an absolute path"), std::string::npos) << r.err;
  write_file(cfg, needle_section() +
                      "[[source]]\nplugin = \"file\"\nexclude_paths = [\"/\"]\n\n"
                      "[[sink]]\nplugin = \"stdout\"\n");
  r = run({needle_bin(), "check", "-c", cfg});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("exclude_paths"), std::string::npos) << r.err;
  std::string many;
  for (int i = 0; i < 9; ++i) {
    many += (i ? ", " : "") + std::string("\"/p") + std::to_string(i) + "\"";
  }
  write_file(cfg, needle_section() + "[[source]]\nplugin = \"file\"\npaths = [" + many +
                      "]\n\n[[sink]]\nplugin = \"stdout\"\n");
  r = run({needle_bin(), "check", "-c", cfg});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("at most 8"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace needle::test
