// source/process on the real kernel: every exec, fork and exit of the test's own children
// arrives once, with the fields the kernel resolved. Each test selects its own pids and unique
// paths: the host is shared.
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "harness.h"

namespace needle::test {
namespace {

namespace fs = std::filesystem;

std::string process_config(const TempDir& d, const std::string& source_extra = "",
                           const std::string& needle_extra = "") {
  return needle_section(needle_extra) + "[[source]]\nplugin = \"process\"\n" + source_extra +
         "\n[[sink]]\nplugin = \"file\"\npath = \"" + d.file("events.jsonl") + "\"\n";
}

std::string copy_binary(const TempDir& d, const std::string& from, const std::string& name) {
  std::string to = d.file(name);
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
  fs::permissions(to, fs::perms(0755));
  return to;
}

std::vector<nlohmann::json> of_pid(const std::vector<nlohmann::json>& evs, int64_t pid,
                                        const std::string& type) {
  std::vector<nlohmann::json> out;
  for (auto& e : evs) {
    if (str_field(e, "type") == type && int_field(e, "process.pid") == pid) {
      out.push_back(e);
    }
  }
  return out;
}

std::vector<std::string> args_of(const nlohmann::json& ev) {
  std::vector<std::string> out;
  const nlohmann::json* a = field(ev, "process.args");
  if (a && a->is_array()) {
    for (auto& x : *a) {
      out.push_back(x.get<std::string>());
    }
  }
  return out;
}

// Forks a child that runs /bin/true from a memfd named `name` (fexecve), and waits for it.
pid_t exec_from_memfd(const char* name, int* status) {
  std::string bytes = read_file("/bin/true");
  pid_t child = fork();
  if (child == 0) {
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0 || write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
      _exit(90);
    }
    char* const argv[] = {const_cast<char*>("fileless"), nullptr};
    char* const envp[] = {nullptr};
    fexecve(fd, argv, envp);
    _exit(91);
  }
  waitpid(child, status, 0);
  return child;
}

TEST(ProcessSource, RenamedTrueRun500TimesEveryExecForkAndExitArrives) {
  TempDir d;
  std::string exe = copy_binary(d, "/bin/true", "needle-true-renamed");
  Needle n(d);
  NEEDLE_START_BPF(n, process_config(d));
  constexpr int kRuns = 500;
  std::vector<pid_t> pids;
  for (int i = 0; i < kRuns; ++i) {
    int status = 0;
    pids.push_back(spawn_wait(exe, {"needle-true-renamed", "run-" + std::to_string(i), "x y"},
                              &status));
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));
  int missing = 0;
  for (int i = 0; i < kRuns; ++i) {
    pid_t pid = pids[static_cast<size_t>(i)];
    auto execs = of_pid(evs, pid, "process.exec");
    auto forks = of_pid(evs, pid, "process.fork");
    auto exits = of_pid(evs, pid, "process.exit");
    if (execs.size() != 1 || forks.size() != 1 || exits.size() != 1) {
      ++missing;
      ADD_FAILURE() << "pid " << pid << ": " << execs.size() << " exec, " << forks.size()
                    << " fork, " << exits.size() << " exit";
      continue;
    }
    const auto& ex = execs[0];
    EXPECT_EQ(str_field(ex, "process.exe"), exe);   // the kernel's file, not argv[0]
    EXPECT_EQ(args_of(ex), (std::vector<std::string>{"needle-true-renamed",
                                                     "run-" + std::to_string(i), "x y"}));
    EXPECT_EQ(int_field(ex, "process.ppid"), getpid());
    EXPECT_EQ(int_field(ex, "process.uid"), static_cast<int64_t>(getuid()));
    EXPECT_EQ(str_field(ex, "process.comm"), "needle-true-ren");
    EXPECT_EQ(str_field(ex, "process.cwd"), fs::current_path().string());
    EXPECT_EQ(str_field(ex, "source"), "process");
    EXPECT_FALSE(str_field(ex, "process.entity_id").empty());
    // start_time and entity_id are identical on fork, exec and exit of one process.
    EXPECT_EQ(str_field(ex, "process.start_time"), str_field(forks[0], "process.start_time"));
    EXPECT_EQ(str_field(ex, "process.start_time"), str_field(exits[0], "process.start_time"));
    EXPECT_EQ(str_field(ex, "process.entity_id"), str_field(exits[0], "process.entity_id"));
    EXPECT_EQ(int_field(forks[0], "process.ppid"), getpid());
    EXPECT_EQ(int_field(exits[0], "process.exit_code"), 0);
    EXPECT_EQ(field(exits[0], "process.exit_signal"), nullptr);
    EXPECT_EQ(field(ex, "process.fileless"), nullptr);   // keys that do not apply are omitted
  }
  EXPECT_EQ(missing, 0);
  // Nothing was lost anywhere.
  for (auto& e : evs) {
    EXPECT_NE(str_field(e, "type"), "needle.gap") << e.dump();
  }
}

TEST(ProcessSource, ExitCodesAndSignalsOncePerThreadGroup) {
  TempDir d;
  std::string f = copy_binary(d, "/bin/false", "needle-false");
  std::string sh = copy_binary(d, "/bin/sh", "needle-sh");
  Needle n(d);
  NEEDLE_START_BPF(n, process_config(d));
  int status = 0;
  pid_t p_false = spawn_wait(f, {"needle-false"}, &status);
  pid_t p_seven = spawn_wait(sh, {"needle-sh", "-c", "exit 7"}, &status);
  pid_t p_killed = spawn_wait(sh, {"needle-sh", "-c", "kill -KILL $$"}, &status);
  pid_t p_term = spawn_wait(sh, {"needle-sh", "-c", "kill -TERM $$"}, &status);
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));
  auto one = [&](pid_t pid) {
    auto x = of_pid(evs, pid, "process.exit");
    EXPECT_EQ(x.size(), 1u) << "pid " << pid;
    return x.empty() ? nlohmann::json::object() : x[0];
  };
  EXPECT_EQ(int_field(one(p_false), "process.exit_code"), 1);
  EXPECT_EQ(int_field(one(p_seven), "process.exit_code"), 7);
  auto killed = one(p_killed);
  EXPECT_EQ(int_field(killed, "process.exit_signal"), SIGKILL);
  EXPECT_EQ(field(killed, "process.exit_code"), nullptr);
  EXPECT_EQ(int_field(one(p_term), "process.exit_signal"), SIGTERM);
}

TEST(ProcessSource, MultiThreadedProcessExitsOnce) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, process_config(d));
  pid_t child = fork();
  if (child == 0) {
    std::vector<std::thread> ts;
    for (int i = 0; i < 8; ++i) {
      ts.emplace_back([] { std::this_thread::sleep_for(std::chrono::milliseconds(20)); });
    }
    for (auto& t : ts) {
      t.join();
    }
    _exit(5);
  }
  waitpid(child, nullptr, 0);
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));
  EXPECT_EQ(of_pid(evs, child, "process.fork").size(), 1u);   // threads are not forks
  auto exits = of_pid(evs, child, "process.exit");
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(int_field(exits[0], "process.exit_code"), 5);
}

TEST(ProcessSource, ScriptBehindAnInterpreterIsReported) {
  TempDir d;
  std::string script = d.file("needle-script.sh");
  write_file(script, "#!/bin/sh\nexit 0\n");
  fs::permissions(script, fs::perms(0755));
  Needle n(d);
  NEEDLE_START_BPF(n, process_config(d));
  int status = 0;
  pid_t pid = spawn_wait(script, {script, "arg1"}, &status);
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto execs = of_pid(read_events(d.file("events.jsonl")), pid, "process.exec");
  ASSERT_EQ(execs.size(), 1u);
  EXPECT_EQ(str_field(execs[0], "process.script"), script);
  EXPECT_EQ(str_field(execs[0], "process.exe"), fs::canonical("/bin/sh").string());
}

TEST(ProcessSource, ExecFromMemfdIsFileless) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, process_config(d));
  int status = 0;
  pid_t child = exec_from_memfd("needle-fileless", &status);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto execs = of_pid(read_events(d.file("events.jsonl")), child, "process.exec");
  ASSERT_EQ(execs.size(), 1u);
  const nlohmann::json* fl = field(execs[0], "process.fileless");
  ASSERT_NE(fl, nullptr) << execs[0].dump();
  EXPECT_TRUE(fl->get<bool>());
  EXPECT_NE(str_field(execs[0], "process.exe").find("memfd:needle-fileless"), std::string::npos)
      << execs[0].dump();
}

TEST(ProcessSource, DeletedExecutableIsFileless) {
  TempDir d;
  std::string exe = copy_binary(d, "/bin/sleep", "needle-deleted-sleep");
  Needle n(d);
  NEEDLE_START_BPF(n, process_config(d));
  // A program that deletes itself before exec: run it through a shell that unlinks first.
  std::string sh = copy_binary(d, "/bin/sh", "needle-sh2");
  int status = 0;
  std::string cmd = "exec 3<" + exe + "; rm " + exe + "; exec /proc/self/fd/3 0.01";
  pid_t pid = spawn_wait(sh, {"needle-sh2", "-c", cmd}, &status);
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));
  bool seen = false;
  for (auto& e : of_pid(evs, pid, "process.exec")) {
    if (str_field(e, "process.exe").find("needle-deleted-sleep") != std::string::npos) {
      seen = true;
      const nlohmann::json* fl = field(e, "process.fileless");
      ASSERT_NE(fl, nullptr) << e.dump();
      EXPECT_TRUE(fl->get<bool>());
    }
  }
  EXPECT_TRUE(seen);
}

TEST(ProcessSource, ArgumentsBeyondMaxArgsAreTruncatedAndMarked) {
  TempDir d;
  std::string exe = copy_binary(d, "/bin/true", "needle-true-args");
  Needle n(d);
  NEEDLE_START_BPF(n, process_config(d, "max_args = 3\nmax_arg_bytes = 256\n"));
  int status = 0;
  std::vector<std::string> argv{"needle-true-args"};
  for (int i = 0; i < 10; ++i) {
    argv.push_back("a" + std::to_string(i));
  }
  pid_t many = spawn_wait(exe, argv, &status);
  pid_t longer = spawn_wait(exe, {"needle-true-args", std::string(1000, 'z')}, &status);
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));
  auto e1 = of_pid(evs, many, "process.exec");
  ASSERT_EQ(e1.size(), 1u);
  EXPECT_EQ(args_of(e1[0]), (std::vector<std::string>{"needle-true-args", "a0", "a1"}));
  EXPECT_NE(e1[0].dump().find("\"truncated\":[\"process.args\"]"),
            std::string::npos);
  auto e2 = of_pid(evs, longer, "process.exec");
  ASSERT_EQ(e2.size(), 1u);
  size_t total = 0;
  for (auto& a : args_of(e2[0])) {
    total += a.size() + 1;
  }
  EXPECT_LE(total - 1, 256u);   // the bytes of the argument area, NULs between arguments
  EXPECT_LT(total, 1000u);
  EXPECT_NE(e2[0].dump().find("process.args"), std::string::npos);
}

TEST(ProcessSource, SnapshotReportsProcessesStartedBefore) {
  TempDir d;
  std::string exe = copy_binary(d, "/bin/sleep", "needle-snap-sleep");
  pid_t child = fork();
  if (child == 0) {
    execl(exe.c_str(), "needle-snap-sleep", "30", "1", static_cast<char*>(nullptr));
    _exit(127);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  Needle n(d);
  NEEDLE_START_BPF(n, process_config(d));
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));
  auto snaps = of_pid(evs, child, "process.snapshot");
  ASSERT_EQ(snaps.size(), 1u);
  EXPECT_EQ(str_field(snaps[0], "process.exe"), exe);
  EXPECT_EQ(args_of(snaps[0]),
            (std::vector<std::string>{"needle-snap-sleep", "30", "1"}));
  auto exits = of_pid(evs, child, "process.exit");
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(str_field(snaps[0], "process.entity_id"), str_field(exits[0], "process.entity_id"));
  EXPECT_EQ(int_field(exits[0], "process.exit_signal"), SIGKILL);
}

class RungTest : public ::testing::TestWithParam<std::string> {};

// Every field the kernel side reads, on each rung: the "+typed" rungs read the task, its files
// and the path walks with direct loads, the plain ones with bpf_probe_read_kernel, and both must
// give the same answers (exe, script, cwd, args, ids, comm, fileless, exit status).
TEST_P(RungTest, PinnedRungCarriesEvents) {
  const std::string rung = GetParam();
  TempDir d;
  std::string sh = copy_binary(d, "/bin/sh", "needle-sh-rung");
  std::string script = d.file("needle-rung.sh");
  write_file(script, "#!" + sh + "\nexit 3\n");
  fs::permissions(script, fs::perms(0755));
  Needle n(d);
  NEEDLE_START_BPF(n, process_config(d, "rung = \"" + rung + "\"\n"));
  // exit has no "+typed" rung (it reads the current task directly on every rung): a pin of one
  // leaves it on its best rung.
  const std::string exit_rung = rung.find('+') == std::string::npos ? rung : "tp_btf";
  for (const char* hook : {"exec", "fork", "exit"}) {
    const std::string want = std::string(hook) == "exit" ? exit_rung : rung;
    EXPECT_NE(n.err().find("hook " + std::string(hook) + " runs on rung " + want + "\n"),
              std::string::npos)
        << n.err();
  }
  int status = 0;
  pid_t pid = spawn_wait(sh, {"needle-sh-rung", "-c", "exit 5", rung}, &status);
  pid_t by_script = spawn_wait(script, {script, "arg1"}, &status);
  pid_t fileless = exec_from_memfd("needle-rung", &status);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));

  auto execs = of_pid(evs, pid, "process.exec");
  ASSERT_EQ(execs.size(), 1u);
  EXPECT_EQ(str_field(execs[0], "process.exe"), sh);
  EXPECT_EQ(args_of(execs[0]), (std::vector<std::string>{"needle-sh-rung", "-c", "exit 5", rung}));
  EXPECT_EQ(int_field(execs[0], "process.ppid"), getpid());
  EXPECT_EQ(int_field(execs[0], "process.uid"), static_cast<int64_t>(getuid()));
  EXPECT_EQ(str_field(execs[0], "process.comm"), "needle-sh-rung");
  EXPECT_EQ(str_field(execs[0], "process.cwd"), fs::current_path().string());
  EXPECT_EQ(field(execs[0], "process.fileless"), nullptr);
  // The fork's task context is the child's; its executable is still the parent's (this test).
  auto forks = of_pid(evs, pid, "process.fork");
  ASSERT_EQ(forks.size(), 1u);
  EXPECT_EQ(int_field(forks[0], "process.ppid"), getpid());
  EXPECT_EQ(str_field(forks[0], "process.exe"), fs::read_symlink("/proc/self/exe").string());
  EXPECT_EQ(str_field(forks[0], "process.start_time"), str_field(execs[0], "process.start_time"));
  auto exits = of_pid(evs, pid, "process.exit");
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(int_field(exits[0], "process.exit_code"), 5);
  EXPECT_EQ(int_field(exits[0], "process.ppid"), getpid());
  EXPECT_EQ(str_field(exits[0], "process.comm"), "needle-sh-rung");

  auto scripted = of_pid(evs, by_script, "process.exec");
  ASSERT_EQ(scripted.size(), 1u);
  if (rung != "tp") {   // the tp rung has no access to the exec's bprm
    EXPECT_EQ(str_field(scripted[0], "process.script"), script);
  }
  EXPECT_EQ(str_field(scripted[0], "process.exe"), sh);
  auto script_exit = of_pid(evs, by_script, "process.exit");
  ASSERT_EQ(script_exit.size(), 1u);
  EXPECT_EQ(int_field(script_exit[0], "process.exit_code"), 3);

  auto memfd = of_pid(evs, fileless, "process.exec");
  ASSERT_EQ(memfd.size(), 1u);
  const nlohmann::json* fl = field(memfd[0], "process.fileless");
  ASSERT_NE(fl, nullptr) << memfd[0].dump();
  EXPECT_TRUE(fl->get<bool>());
  EXPECT_NE(str_field(memfd[0], "process.exe").find("memfd:needle-rung"), std::string::npos)
      << memfd[0].dump();
}

INSTANTIATE_TEST_SUITE_P(EveryRungHere, RungTest,
                         ::testing::Values("tp_btf+typed", "tp_btf", "raw_tp+typed", "raw_tp",
                                           "tp"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '+', '_');
                           return name;
                         });

TEST(ProcessSource, ExcludedExecutableIsFilteredInTheKernel) {
  TempDir d;
  std::string quiet = copy_binary(d, "/bin/true", "needle-true-quiet");
  std::string loud = copy_binary(d, "/bin/true", "needle-true-loud");
  Needle n(d);
  NEEDLE_START_BPF(n, process_config(d, "", "exclude_exe = [\"" + quiet + "\"]"));
  int status = 0;
  pid_t q = spawn_wait(quiet, {"needle-true-quiet"}, &status);
  pid_t l = spawn_wait(loud, {"needle-true-loud"}, &status);
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));
  EXPECT_EQ(of_pid(evs, l, "process.exec").size(), 1u);
  // The exec event itself is emitted after the new image is in place, so it is filtered too;
  // so is the exit.
  EXPECT_EQ(of_pid(evs, q, "process.exec").size(), 0u);
  EXPECT_EQ(of_pid(evs, q, "process.exit").size(), 0u);
}

TEST(ProcessSource, NeedleDoesNotReportItself) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, process_config(d));
  pid_t self = n.pid();
  int status = 0;
  spawn_wait("/bin/true", {"true"}, &status);
  ASSERT_EQ(n.stop(), 0) << n.err();
  for (auto& e : read_events(d.file("events.jsonl"))) {
    if (str_field(e, "type") != "process.snapshot") {
      EXPECT_NE(int_field(e, "process.pid"), self) << e.dump();
    }
  }
}

}  // namespace
}  // namespace needle::test
