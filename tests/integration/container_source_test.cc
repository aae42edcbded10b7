// source/container on the real kernel, with real containers: podman (runc, cgroupfs driver)
// running a busybox image built locally by tests/peers/oci-image-build.sh. Each test names its
// own container and selects events by its id; a guard removes that container even on failure
// (never all of the fixture's containers: tests of this file may run in parallel).
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "harness.h"

namespace needle::test {
namespace {

namespace fs = std::filesystem;

std::string podman_script() {
  return source_dir() + "/tests/peers/podman.sh";
}

bool have_podman() {
  for (const char* dir : {"/usr/bin/podman", "/usr/local/bin/podman"}) {
    if (access(dir, X_OK) == 0) {
      return true;
    }
  }
  return false;
}

/// Removes the container when the test ends, however it ends.
class ContainerGuard {
 public:
  explicit ContainerGuard(std::string name) : name_(std::move(name)) {}
  ~ContainerGuard() { run({podman_script(), "rm", name_}, 60); }
  ContainerGuard(const ContainerGuard&) = delete;
  ContainerGuard& operator=(const ContainerGuard&) = delete;

 private:
  std::string name_;
};

class ContainerSource : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0 || !have_podman()) {
      return;
    }
    Result r = run({podman_script(), "up"}, 120);
    ready_ = r.exit_code == 0;
    up_error_ = r.err;
  }
  void SetUp() override {
    if (geteuid() != 0) {
      NEEDLE_SKIP_OR_FAIL("containers and BPF need root");
    }
    if (!have_podman()) {
      NEEDLE_SKIP_OR_FAIL("podman is not installed (scripts/setup.sh test installs it)");
    }
    ASSERT_TRUE(ready_) << "tests/peers/podman.sh up failed:\n" << up_error_;
  }

  std::string config(const TempDir& d) {
    return needle_section() +
           "[[source]]\nplugin = \"container\"\n\n[[source]]\nplugin = \"process\"\n\n"
           "[[sink]]\nplugin = \"file\"\npath = \"" +
           d.file("events.jsonl") + "\"\n";
  }
  /// Starts a container and returns its id ("" on failure, with the reason added).
  std::string start(const std::string& name, const std::vector<std::string>& entry = {}) {
    std::vector<std::string> argv{podman_script(), "run", name};
    argv.insert(argv.end(), entry.begin(), entry.end());
    Result r = run(argv, 120);
    std::string id = r.out.substr(0, r.out.find('\n'));
    if (r.exit_code != 0 || id.size() != 64) {
      ADD_FAILURE() << "podman run failed (" << r.exit_code << "): " << r.err << r.out;
      return {};
    }
    return id;
  }
  static std::string unique(const std::string& what) {
    return "needle-" + what + "-" + std::to_string(getpid());
  }

  static inline bool ready_ = false;
  static inline std::string up_error_;
};

std::vector<nlohmann::json> of_container(const std::vector<nlohmann::json>& evs,
                                         const std::string& type, const std::string& id) {
  std::vector<nlohmann::json> out;
  for (auto& e : evs) {
    if (str_field(e, "type") == type && str_field(e, "container.id") == id) {
      out.push_back(e);
    }
  }
  return out;
}

std::vector<nlohmann::json> in_cgroup(const std::vector<nlohmann::json>& evs,
                                      const std::string& type, int64_t cgroup_id) {
  std::vector<nlohmann::json> out;
  for (auto& e : evs) {
    if (str_field(e, "type") == type && int_field(e, "process.cgroup_id") == cgroup_id) {
      out.push_back(e);
    }
  }
  return out;
}

TEST_F(ContainerSource, PodmanContainerCreateProcessesAndExitCarryItsId) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, config(d));
  const std::string name = unique("sleep");
  ContainerGuard guard(name);
  std::string id = start(name);
  ASSERT_FALSE(id.empty());
  // Let the container's entrypoint exec, then remove it (busybox sleep as PID 1 ignores TERM).
  ASSERT_TRUE(eventually(
      [&] {
        for (auto& e : read_events(d.file("events.jsonl"))) {
          if (str_field(e, "type") == "process.exec" &&
              str_field(e, "process.exe") == "/bin/busybox" && int_field(e, "process.vpid") == 1) {
            return true;
          }
        }
        return false;
      },
      std::chrono::seconds(15)));
  Result rm = run({podman_script(), "rm", id}, 60);
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  ASSERT_EQ(n.stop(), 0) << n.err();
  auto evs = read_events(d.file("events.jsonl"));

  auto creates = of_container(evs, "container.create", id);
  ASSERT_EQ(creates.size(), 1u);  // once, although runc made a cgroup in every hierarchy
  const auto& c = creates[0];
  EXPECT_EQ(str_field(c, "container.runtime"), "podman");
  EXPECT_EQ(str_field(c, "cgroup.path"), "/libpod_parent/libpod-" + id);
  EXPECT_EQ(int_field(c, "cgroup.hierarchy"), 0);
  EXPECT_EQ(str_field(c, "process.comm"), "runc");  // the runtime made it
  // The cgroup id is the one the container's processes carry: the cgroup2 folder's inode.
  int64_t cgid = int_field(c, "cgroup.id");
  ASSERT_GT(cgid, 1);

  auto execs = in_cgroup(evs, "process.exec", cgid);
  ASSERT_FALSE(execs.empty());
  bool entrypoint = false;
  for (auto& e : execs) {
    const nlohmann::json* args = field(e, "process.args");
    if (str_field(e, "process.exe") == "/bin/busybox" && args && args->size() == 2 &&
        (*args)[0] == "/bin/sleep" && (*args)[1] == "inf" && int_field(e, "process.vpid") == 1) {
      entrypoint = true;
    }
  }
  EXPECT_TRUE(entrypoint) << "no exec of the entrypoint in cgroup " << cgid;

  auto exits = of_container(evs, "container.exit", id);
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(str_field(exits[0], "container.runtime"), "podman");
  EXPECT_EQ(int_field(exits[0], "cgroup.id"), cgid);
  // Reported when its last task left: that task was the container's PID 1.
  EXPECT_EQ(int_field(exits[0], "process.cgroup_id"), cgid);
  EXPECT_EQ(int_field(exits[0], "process.vpid"), 1);
  EXPECT_GT(str_field(exits[0], "time"), str_field(c, "time"));
  for (auto& e : evs) {
    EXPECT_NE(str_field(e, "type"), "needle.gap") << e.dump();
  }
}

TEST_F(ContainerSource, ContainerExitingByItselfIsReportedWhenItsLastProcessEnds) {
  TempDir d;
  Needle n(d);
  NEEDLE_START_BPF(n, config(d));
  const std::string name = unique("exit7");
  ContainerGuard guard(name);
  std::string id = start(name, {"/bin/sh", "-c", "sleep 0.3; exit 7"});
  ASSERT_FALSE(id.empty());
  // No removal here: the exit must come from the container's own end, not from cleanup.
  bool exited = eventually(
      [&] {
        return !of_container(read_events(d.file("events.jsonl")), "container.exit", id).empty();
      },
      std::chrono::seconds(15));
  ASSERT_EQ(n.stop(), 0) << n.err();
  ASSERT_TRUE(exited);
  auto evs = read_events(d.file("events.jsonl"));
  auto creates = of_container(evs, "container.create", id);
  auto exits = of_container(evs, "container.exit", id);
  ASSERT_EQ(creates.size(), 1u);
  ASSERT_EQ(exits.size(), 1u);
  int64_t cgid = int_field(creates[0], "cgroup.id");
  // The shell's exit code reaches the process source; the container.exit is its last task's.
  bool shell_exit = false;
  for (auto& e : in_cgroup(evs, "process.exit", cgid)) {
    shell_exit =
        shell_exit || (int_field(e, "process.vpid") == 1 && int_field(e, "process.exit_code") == 7);
  }
  EXPECT_TRUE(shell_exit);
  EXPECT_EQ(int_field(exits[0], "process.vpid"), 1);
}

TEST(ContainerSourceConfig, BadKeysAreRejectedNamingTheKey) {
  TempDir d;
  struct Case {
    std::string line;
    std::string key;
  } cases[] = {
      {"containerd_namespaces = [\"a/b\"]", "containerd_namespaces"},
      {"containerd_namespaces = [\"\"]", "containerd_namespaces"},
      {"max_containers = 3", "max_containers"},
  };
  for (const Case& c : cases) {
    write_file(d.file("bad.toml"), needle_section() + "[[source]]\nplugin = \"container\"\n" +
                                       c.line + "\n\n[[sink]]\nplugin = \"stdout\"\n");
    Result r = run({needle_bin(), "check", "-c", d.file("bad.toml")});
    EXPECT_EQ(r.exit_code, 2) << c.line << "\n" << r.err;
    EXPECT_NE(r.err.find(c.key), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace needle::test
