// source/ipc on the real kernel: ptrace of a child, process_vm_writev/readv, an exec from a memfd,
// and signals to another process arrive with their targets; signals within the process do not.
// Every syscall route of both ABIs (x86_64, ia32 compat) is reported under its name. Each test
// selects its own pids: the host is shared.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

#include "harness.h"

namespace needle::test {
namespace {

std::string ipc_config(const TempDir& d, const std::string& more_sources = "",
                       const std::string& source_extra = "") {
  return needle_section() + "[[source]]\nplugin = \"ipc\"\n" + source_extra + "\n" + more_sources +
         "[[sink]]\nplugin = \"file\"\npath = \"" + d.file("events.jsonl") + "\"\n";
}

std::vector<nlohmann::json> of_type(const std::vector<nlohmann::json>& evs, const std::string& type,
                                    int64_t pid) {
  std::vector<nlohmann::json> out;
  for (auto& e : evs) {
    if (str_field(e, "type") == type && int_field(e, "process.pid") == pid) {
      out.push_back(e);
    }
  }
  return out;
}

/// A child that waits until killed; reaped (SIGKILL) by the destructor.
class Sleeper {
 public:
  Sleeper() {
    pid_ = fork();
    if (pid_ == 0) {
      while (true) {
        pause();
      }
    }
  }
  ~Sleeper() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Sleeper(const Sleeper&) = delete;
  Sleeper& operator=(const Sleeper&) = delete;
  pid_t pid() const { return pid_; }
  /// Waits for the child's exit (after a signal the test sent).
  int reap() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
};

TEST(IpcSource, PtraceAttachAndDetachOfAChildAreReportedWithTheTarget) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, ipc_config(d));
  Sleeper child;
  ASSERT_EQ(ptrace(PTRACE_ATTACH, child.pid(), nullptr, nullptr), 0) << std::strerror(errno);
  int status = 0;
  ASSERT_EQ(waitpid(child.pid(), &status, 0), child.pid());
  errno = 0;
  ptrace(PTRACE_PEEKDATA, child.pid(), reinterpret_cast<void*>(&status), nullptr);
  ASSERT_EQ(ptrace(PTRACE_DETACH, child.pid(), nullptr, nullptr), 0);
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = of_type(read_events(d.file("events.jsonl")), "ipc.ptrace", getpid());
  std::vector<std::string> names;
  for (auto& e : evs) {
    EXPECT_EQ(int_field(e, "ipc.target_pid"), child.pid());
    EXPECT_EQ(str_field(e, "ipc.kind"), "ptrace");
    names.push_back(str_field(e, "ipc.request_name"));
  }
  EXPECT_EQ(names, (std::vector<std::string>{"PTRACE_ATTACH", "PTRACE_DETACH"}))
      << "PTRACE_PEEKDATA is left out by default";
}

char g_buffer[64] = "before";

TEST(IpcSource, ProcessVmWritevAndReadvAreReportedWithOpAndTarget) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, ipc_config(d));
  Sleeper child;  // a fork: g_buffer has the same address in the child
  char text[] = "written by process_vm_writev";
  iovec local{text, sizeof text};
  iovec remote{g_buffer, sizeof text};
  ASSERT_EQ(process_vm_writev(child.pid(), &local, 1, &remote, 1, 0),
            static_cast<ssize_t>(sizeof text))
      << std::strerror(errno);
  char back[sizeof text] = {};
  iovec into{back, sizeof back};
  ASSERT_EQ(process_vm_readv(child.pid(), &into, 1, &remote, 1, 0),
            static_cast<ssize_t>(sizeof text));
  EXPECT_STREQ(back, text);
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = of_type(read_events(d.file("events.jsonl")), "ipc.process_vm", getpid());
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_EQ(str_field(evs[0], "ipc.op"), "write");
  EXPECT_EQ(str_field(evs[1], "ipc.op"), "read");
  for (auto& e : evs) {
    EXPECT_EQ(int_field(e, "ipc.target_pid"), child.pid());
    EXPECT_EQ(int_field(e, "ipc.bytes"), static_cast<int64_t>(sizeof text));
  }
}

TEST(IpcSource, ExecFromAMemfdIsReportedAsMemfdCreateAndAFilelessExec) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, ipc_config(d, "[[source]]\nplugin = \"process\"\n\n"));
  const std::string name = "needle-it-" + std::to_string(getpid());
  std::string exe = read_file("/bin/true");
  ASSERT_FALSE(exe.empty());
  pid_t child = fork();
  if (child == 0) {
    int fd = static_cast<int>(syscall(SYS_memfd_create, name.c_str(), MFD_CLOEXEC));
    if (fd < 0 || write(fd, exe.data(), exe.size()) != static_cast<ssize_t>(exe.size())) {
      _exit(90);
    }
    char* argv[] = {const_cast<char*>("memfd-true"), nullptr};
    char* envp[] = {nullptr};
    syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
    _exit(91);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));
  auto memfds = of_type(evs, "ipc.memfd_create", child);
  ASSERT_EQ(memfds.size(), 1u);
  EXPECT_EQ(str_field(memfds[0], "ipc.name"), name);
  EXPECT_EQ(memfds[0]["ipc"]["flags"], (nlohmann::json{"MFD_CLOEXEC"}));
  auto execs = of_type(evs, "process.exec", child);
  ASSERT_EQ(execs.size(), 1u);
  const nlohmann::json* fileless = field(execs[0], "process.fileless");
  ASSERT_NE(fileless, nullptr);
  EXPECT_TRUE(fileless->get<bool>());
  EXPECT_EQ(str_field(execs[0], "process.exe"), "/memfd:" + name);
}

TEST(IpcSource, SignalsToAnotherProcessAreReportedAndSignalsWithinItAreNot) {
  TempDir d;
  Needle n(d);
  // The file source shares the dispatcher: both sources' syscalls are dispatched side by side.
  NEEDLE_START_BPF(
      n, ipc_config(d, "[[source]]\nplugin = \"file\"\npaths = [\"" + d.path() + "\"]\n\n"));
  Sleeper by_kill, by_pidfd;
  const pid_t kill_target = by_kill.pid(), pidfd_target = by_pidfd.pid();
  ASSERT_EQ(kill(by_kill.pid(), SIGTERM), 0);
  by_kill.reap();
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, by_pidfd.pid(), 0));
  ASSERT_GE(pidfd, 0);
  ASSERT_EQ(syscall(SYS_pidfd_send_signal, pidfd, SIGUSR2, nullptr, 0), 0);
  close(pidfd);
  by_pidfd.reap();
  struct sigaction old {};
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  sigaction(SIGUSR1, &ign, &old);
  kill(getpid(), SIGUSR1);                                                          // itself
  syscall(SYS_tgkill, getpid(), static_cast<pid_t>(syscall(SYS_gettid)), SIGUSR1);  // a thread
  kill(getppid(), 0);                                                               // a probe
  sigaction(SIGUSR1, &old, nullptr);
  write_file(d.file("touched"), "x");  // the file source sees this through the same dispatcher
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto all = read_events(d.file("events.jsonl"));
  std::vector<nlohmann::json> evs;
  for (auto& e : of_type(all, "ipc.signal", getpid())) {
    // The harness's SIGTERM to needle is a signal to another process too: not this test's.
    if (int_field(e, "ipc.target_pid") != n.pid()) {
      evs.push_back(e);
    }
  }
  ASSERT_EQ(evs.size(), 2u) << "only the two signals to other processes";
  EXPECT_EQ(str_field(evs[0], "ipc.signal_name"), "SIGTERM");
  EXPECT_EQ(int_field(evs[0], "ipc.signal"), SIGTERM);
  EXPECT_EQ(str_field(evs[0], "ipc.route"), "kill");
  EXPECT_EQ(int_field(evs[0], "ipc.target_pid"), kill_target);
  EXPECT_EQ(str_field(evs[1], "ipc.signal_name"), "SIGUSR2");
  EXPECT_EQ(str_field(evs[1], "ipc.route"), "pidfd_send_signal");
  EXPECT_EQ(int_field(evs[1], "ipc.target_pid"), pidfd_target)
      << "the pidfd's process, from the kernel's struct pid";
  bool file_seen = false;
  for (auto& e : all) {
    file_seen = file_seen || str_field(e, "file.path") == d.file("touched");
  }
  EXPECT_TRUE(file_seen);
}

// Inside a pid namespace a process names itself and others by the namespace's numbers: the
// handler compares the target with the caller's own number at its level (read with CO-RE below
// the root namespace, directly in it), so a self-signal stays unreported and a signal to a
// sibling is reported with the pid as given.
TEST(IpcSource, SignalsInsideAPidNamespaceAreJudgedByItsNumbers) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, ipc_config(d));
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t outer = fork();
  if (outer == 0) {
    close(fds[0]);
    if (unshare(CLONE_NEWPID) != 0) {
      _exit(80);
    }
    pid_t init = fork();   // pid 1 of the new namespace
    if (init == 0) {
      signal(SIGURG, SIG_IGN);
      if (getpid() != 1 || kill(1, SIGURG) != 0) {   // itself, by its namespace number
        _exit(81);
      }
      pid_t sibling = fork();   // pid 2 there
      if (sibling == 0) {
        pause();
        _exit(0);
      }
      if (kill(sibling, SIGTERM) != 0) {
        _exit(82);
      }
      int st = 0;
      waitpid(sibling, &st, 0);
      _exit(sibling == 2 && WIFSIGNALED(st) ? 0 : 83);
    }
    if (write(fds[1], &init, sizeof init) != sizeof init) {
      _exit(84);
    }
    int st = 0;
    waitpid(init, &st, 0);
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 85);
  }
  close(fds[1]);
  pid_t init = 0;
  ASSERT_EQ(read(fds[0], &init, sizeof init), static_cast<ssize_t>(sizeof init));
  close(fds[0]);
  int status = 0;
  waitpid(outer, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = of_type(read_events(d.file("events.jsonl")), "ipc.signal", init);
  ASSERT_EQ(evs.size(), 1u) << "the signal to the sibling only";
  EXPECT_EQ(int_field(evs[0], "ipc.signal"), SIGTERM);
  EXPECT_EQ(int_field(evs[0], "ipc.target_pid"), 2) << "as the caller gave it";
}

std::string helper(bool compat) {
  return build_dir() + (compat ? "/tests/ipc_routes32" : "/tests/ipc_routes");
}

/// Runs the route helper; returns the pids it printed (its own first), or zeros after failing the
/// test when the operation itself failed.
std::vector<pid_t> route(bool compat, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {helper(compat)};
  argv.insert(argv.end(), args.begin(), args.end());
  Result r = run(argv);
  EXPECT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
  std::vector<pid_t> pids;
  std::istringstream in(r.out);
  for (pid_t pid = 0; r.exit_code == 0 && in >> pid;) {
    pids.push_back(pid);
  }
  pids.resize(2);
  return pids;
}

// Every syscall of one ABI through the helper: each signal syscall to its own child of this
// process (which the signal ends), ptrace of a child, process_vm into the helper's own child and
// memfd_create. Every event must name its route and carry the helper's pid and exact arguments.
// `rung` pins the dispatcher's rung ("": needle's choice).
void run_and_check_routes(bool compat, const std::string& rung = "") {
  if (compat && access(helper(true).c_str(), X_OK) != 0) {
    GTEST_SKIP() << "no 32-bit helper: gcc -m32 (gcc-multilib) was not available at build time";
  }
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, ipc_config(d, "", rung.empty() ? "" : "rung = \"" + rung + "\"\n"));
  if (!rung.empty()) {
    EXPECT_NE(n.err().find("the syscall dispatcher runs on rung " + rung), std::string::npos)
        << n.err();
  }
  const std::string p = compat ? "ia32:" : "";
  struct Sent {
    std::string call;
    int sig;
    std::string sig_name;
    pid_t target = 0;
    pid_t by = 0;
  };
  // Signals whose default action ends the child (and that a test runner does not ignore);
  // 35 is the kernel's SIGRTMIN (32) + 3.
  std::vector<Sent> sent = {{"kill", SIGTERM, "SIGTERM"},
                            {"tkill", SIGUSR1, "SIGUSR1"},
                            {"tgkill", SIGUSR2, "SIGUSR2"},
                            {"rt_sigqueueinfo", 35, "SIGRTMIN+3"},
                            {"rt_tgsigqueueinfo", SIGALRM, "SIGALRM"},
                            {"pidfd_send_signal", SIGKILL, "SIGKILL"}};
  for (Sent& s : sent) {
    Sleeper child;
    s.target = child.pid();
    const std::string pid = std::to_string(child.pid()), sig = std::to_string(s.sig);
    const bool to_thread = s.call == "tgkill" || s.call == "rt_tgsigqueueinfo";
    s.by = route(compat, to_thread ? std::vector<std::string>{s.call, pid, pid, sig}
                                   : std::vector<std::string>{s.call, pid, sig})[0];
    if (s.by != 0) {
      const int status = child.reap();
      EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == s.sig) << s.call << ": " << status;
    }
  }
  Sleeper traced;
  const pid_t tracer = route(compat, {"ptrace", std::to_string(traced.pid())})[0];
  const std::string text = "written by process_vm_writev";
  const std::vector<pid_t> vm = route(compat, {"process_vm", text});
  const std::string name = "needle-it-routes-" + std::to_string(getpid());
  const pid_t memfd_by = route(compat, {"memfd_create", name})[0];
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));
  auto by = [&](pid_t pid) {
    std::vector<nlohmann::json> out;
    for (auto& e : evs) {
      if (int_field(e, "process.pid") == pid) {
        out.push_back(e);
      }
    }
    return out;
  };

  for (const Sent& s : sent) {
    auto e = by(s.by);
    ASSERT_EQ(e.size(), 1u) << s.call;
    EXPECT_EQ(str_field(e[0], "type"), "ipc.signal") << s.call;
    EXPECT_EQ(str_field(e[0], "ipc.kind"), "signal") << s.call;
    EXPECT_EQ(str_field(e[0], "ipc.route"), p + s.call);
    EXPECT_EQ(int_field(e[0], "ipc.target_pid"), s.target) << s.call;
    EXPECT_EQ(int_field(e[0], "ipc.signal"), s.sig) << s.call;
    EXPECT_EQ(str_field(e[0], "ipc.signal_name"), s.sig_name) << s.call;
  }

  auto traces = by(tracer);
  ASSERT_EQ(traces.size(), 3u);
  const std::pair<int64_t, std::string> requests[] = {
      {PTRACE_ATTACH, "PTRACE_ATTACH"}, {PTRACE_DETACH, "PTRACE_DETACH"}, {0x4206, "PTRACE_SEIZE"}};
  for (size_t i = 0; i < traces.size(); ++i) {
    EXPECT_EQ(str_field(traces[i], "type"), "ipc.ptrace");
    EXPECT_EQ(str_field(traces[i], "ipc.route"), p + "ptrace");
    EXPECT_EQ(int_field(traces[i], "ipc.target_pid"), traced.pid());
    EXPECT_EQ(int_field(traces[i], "ipc.request"), requests[i].first);
    EXPECT_EQ(str_field(traces[i], "ipc.request_name"), requests[i].second);
  }

  auto moves = by(vm[0]);
  ASSERT_EQ(moves.size(), 2u);
  for (size_t i = 0; i < moves.size(); ++i) {
    const std::string op = i == 0 ? "write" : "read";
    EXPECT_EQ(str_field(moves[i], "type"), "ipc.process_vm");
    EXPECT_EQ(str_field(moves[i], "ipc.op"), op);
    EXPECT_EQ(str_field(moves[i], "ipc.route"), p + "process_vm_" + op + "v");
    EXPECT_EQ(int_field(moves[i], "ipc.target_pid"), vm[1]);
    EXPECT_EQ(int_field(moves[i], "ipc.bytes"), static_cast<int64_t>(text.size() + 1));
  }

  auto memfds = by(memfd_by);
  ASSERT_EQ(memfds.size(), 1u);
  EXPECT_EQ(str_field(memfds[0], "type"), "ipc.memfd_create");
  EXPECT_EQ(str_field(memfds[0], "ipc.route"), p + "memfd_create");
  EXPECT_EQ(str_field(memfds[0], "ipc.name"), name);
  EXPECT_EQ(memfds[0]["ipc"]["flags"], (nlohmann::json{"MFD_CLOEXEC", "MFD_ALLOW_SEALING"}));
  EXPECT_EQ(field(memfds[0], "ipc.target_pid"), nullptr);
}

TEST(IpcSource, EveryNativeSyscallRouteReportsItsEvent) {
  run_and_check_routes(false);
}

TEST(IpcSource, EveryIa32CompatSyscallRouteReportsItsEvent) {
  run_and_check_routes(true);
}

// The ia32 arguments come from other registers on each rung (tp: the tracepoint's record).
class IpcSourceRung : public ::testing::TestWithParam<std::string> {};

TEST_P(IpcSourceRung, PinnedDispatcherRungReportsTheIa32Routes) {
  run_and_check_routes(true, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Rungs, IpcSourceRung, ::testing::Values("tp_btf", "raw_tp", "tp"));

}  // namespace
}  // namespace needle::test
