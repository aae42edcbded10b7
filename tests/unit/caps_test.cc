// core/caps: the drop reaches every thread, not only the caller (capset is per thread).
// Each TEST runs in its own process (gtest_discover_tests), so dropping here is harmless. As root
// the sets really shrink; without capabilities the drop has nothing to give up and still passes.
#include "caps.h"

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace needle::core {
namespace {

struct ProcCaps {
  CapMask prm = 0;
  CapMask eff = 0;
  CapMask bnd = 0;
};

ProcCaps caps_of(const std::string& status_path) {
  ProcCaps c;
  std::ifstream in(status_path);
  std::string line;
  while (std::getline(in, line)) {
    auto value = [&](size_t n) { return std::strtoull(line.c_str() + n, nullptr, 16); };
    if (line.rfind("CapPrm:", 0) == 0) {
      c.prm = value(7);
    } else if (line.rfind("CapEff:", 0) == 0) {
      c.eff = value(7);
    } else if (line.rfind("CapBnd:", 0) == 0) {
      c.bnd = value(7);
    }
  }
  return c;
}

// Threads that wait until told to stop; `spawn_child` makes one of them start another thread
// after the drop, which must inherit the reduced sets.
class Workers {
 public:
  explicit Workers(int n) {
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this] {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_; });
      });
    }
  }
  ~Workers() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) {
      t.join();
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

TEST(Caps, DropLeavesOnlyTheKeptSetInEveryThread) {
  const CapMask keep = cap_bit(CAP_DAC_READ_SEARCH) | cap_bit(CAP_SYS_PTRACE);
  const ProcCaps before = caps_of("/proc/self/status");
  Workers workers(4);
  CapDrop d = drop_capabilities(keep);
  ASSERT_TRUE(d.error.empty()) << d.error;
  EXPECT_EQ(d.kept, before.prm & keep);
  EXPECT_EQ(d.dropped, before.prm & ~keep);
  EXPECT_GE(d.threads, 5u);
  // Every thread, read from /proc the way an operator would.
  size_t seen = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    ProcCaps c = caps_of(task.path().string() + "/status");
    EXPECT_EQ(c.prm, before.prm & keep) << "thread " << task.path().filename();
    EXPECT_EQ(c.eff, before.prm & keep) << "thread " << task.path().filename();
    ++seen;
  }
  EXPECT_GE(seen, 5u);
  // A thread started afterwards inherits the reduced sets.
  ProcCaps late;
  std::thread([&late] { late = caps_of("/proc/thread-self/status"); }).join();
  EXPECT_EQ(late.prm, before.prm & keep);
}

TEST(Caps, DropAsRootAlsoShrinksTheBoundingSet) {
  const ProcCaps before = caps_of("/proc/self/status");
  if ((before.eff & cap_bit(CAP_SETPCAP)) == 0) {
    GTEST_SKIP() << "needs CAP_SETPCAP (root) to change the bounding set";
  }
  const CapMask keep = cap_bit(CAP_SYS_PTRACE);
  Workers workers(2);
  CapDrop d = drop_capabilities(keep);
  ASSERT_TRUE(d.error.empty()) << d.error;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    EXPECT_EQ(caps_of(task.path().string() + "/status").bnd, before.bnd & keep)
        << "thread " << task.path().filename();
  }
}

TEST(Caps, ThreadThatBlocksSignalsIsNamedNotSilentlySkipped) {
  const ProcCaps before = caps_of("/proc/self/status");
  if ((before.prm & ~cap_bit(CAP_SYS_PTRACE)) == 0) {
    GTEST_SKIP() << "needs capabilities to give up (run as root)";
  }
  std::atomic<bool> ready{false};
  std::atomic<bool> stop{false};
  ProcCaps late;
  std::thread blocker([&] {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    ready = true;
    while (!stop) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    // Unblocking runs the pending handler: the late thread still gives its capabilities up.
    pthread_sigmask(SIG_UNBLOCK, &all, nullptr);
    late = caps_of("/proc/thread-self/status");
  });
  while (!ready) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CapDrop d = drop_capabilities(cap_bit(CAP_SYS_PTRACE));
  stop = true;
  blocker.join();
  EXPECT_NE(d.error.find("kept capabilities"), std::string::npos) << d.error;
  EXPECT_EQ(late.prm & ~cap_bit(CAP_SYS_PTRACE), 0u);
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    EXPECT_EQ(caps_of(task.path().string() + "/status").prm & ~cap_bit(CAP_SYS_PTRACE), 0u);
  }
}

TEST(Caps, NamesComeFromTheKernelList) {
  EXPECT_EQ(cap_names(cap_bit(CAP_DAC_READ_SEARCH) | cap_bit(CAP_SYS_PTRACE)),
            "cap_dac_read_search,cap_sys_ptrace");
  EXPECT_EQ(cap_names(cap_bit(CAP_BPF) | cap_bit(CAP_PERFMON)), "cap_perfmon,cap_bpf");
  EXPECT_EQ(cap_names(cap_bit(62)), "cap_62");
  EXPECT_EQ(cap_names(0), "none");
}

TEST(Caps, KeptSetAlwaysHoldsTheProcReadCapabilities) {
  CapMask keep = caps_kept_after_attach();
  EXPECT_NE(keep & cap_bit(CAP_SYS_PTRACE), 0u);
  EXPECT_NE(keep & cap_bit(CAP_DAC_READ_SEARCH), 0u);
  EXPECT_EQ(keep & cap_bit(CAP_SYS_ADMIN), 0u);
  EXPECT_EQ(keep & cap_bit(CAP_PERFMON), 0u);
}

}  // namespace
}  // namespace needle::core
